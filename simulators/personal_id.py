"""The 12-digit personal identification number (số định danh cá nhân): `PPP G YY NNNNNN`."""

from __future__ import annotations

import re

MALE = 1  # gioi_tinh: 1 nam
FEMALE = 2  # gioi_tinh: 2 nữ

_WELL_FORMED = re.compile(r"[0-9]{12}")
_FIRST_CENTURY = 1900
_LAST_YEAR = 2399  # G runs 0..9 for the 1900s to the 2300s


def is_well_formed(number: str) -> bool:
    """Twelve ASCII digits, nothing else."""
    return _WELL_FORMED.fullmatch(number) is not None


def sex_century_digit(*, sex: int, birth_year: int) -> str:
    """The `G` digit: 1900s male 0 / female 1, 2000s 2 / 3, 2100s 4 / 5, and so on."""
    if sex not in (MALE, FEMALE):
        raise ValueError(f"sex must be {MALE} (nam) or {FEMALE} (nữ), not {sex!r}")
    if not _FIRST_CENTURY <= birth_year <= _LAST_YEAR:
        raise ValueError(f"birth year {birth_year} is outside {_FIRST_CENTURY}-{_LAST_YEAR}")
    century_index = birth_year // 100 - _FIRST_CENTURY // 100
    return str(century_index * 2 + (sex - MALE))


def make_personal_id(*, province: str, sex: int, birth_year: int, serial: int) -> str:
    """Compose a number from its parts; `province` is the 3-digit code of the birth registration."""
    if not re.fullmatch(r"[0-9]{3}", province):
        raise ValueError(f"province must be 3 digits, not {province!r}")
    if not 0 <= serial <= 999_999:
        raise ValueError(f"serial must fit in 6 digits, not {serial}")
    digit = sex_century_digit(sex=sex, birth_year=birth_year)
    return f"{province}{digit}{birth_year % 100:02d}{serial:06d}"


def is_valid_personal_id(number: str, *, sex: int, birth_year: int) -> bool:
    """Whether `number` is well formed and agrees with the holder's sex and birth year."""
    if not is_well_formed(number):
        return False
    try:
        digit = sex_century_digit(sex=sex, birth_year=birth_year)
    except ValueError:
        return False
    return number[3] == digit and number[4:6] == f"{birth_year % 100:02d}"
