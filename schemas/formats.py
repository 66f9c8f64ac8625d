"""Format checkers for Vietnamese identifiers and the national portal's dates, usable as
`"format": ...` in any schema: both validators assert them (see `schemas.validation`).

Every checker takes a str and answers a bool with a precompiled regex and a few lookups: they
run on the data plane. Only ASCII digits count as digits, and nothing is trimmed or normalised
(no spaces, dots or dashes beyond those a format names). `describe_failure` says why a value is
not of a format, in one sentence for a 422 answer; it is only for the failure path.

vn-personal-id  12 digits PPP G YY NNNNNN: PPP one of the 63 province codes of the scheme,
                G 0-9 (sex and century), G+YY a birth year not after the current year
                (read from the clock, in Asia/Ho_Chi_Minh)
vn-id-card-9    9 digits: the old ID card (CMND) number
vn-tax-code     10 digits whose 10th is the check digit, or a dependent unit's
                `NNNNNNNNNN-NNN` (valid parent, suffix 001-999) written with the dash only
vn-agency-code  `000.00.12.H12`: 3, 2 and 2 digits, a capital letter and 2 digits, dotted
vn-commune-code one of the 38 current commune codes of Lai Châu (merged old codes are not)
vn-phone        mobile 0[35789] + 8 digits; fixed line 02 + 9 digits (area code 02X/02XX);
                either with +84 or 84 in place of the leading 0; digits only
yyyyMMdd        a real calendar date (20250231 is not)
yyyyMMddHHmmss  a real date and time of day, 00:00:00-23:59:59 (no 24:00, no leap second)
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from schemas.vn_codes import (
    COMMUNES,
    MERGED_COMMUNES,
    PERSONAL_ID_PROVINCES,
    current_commune,
    describe_commune_code,
)

__all__ = [
    "FEMALE",
    "FORMATS",
    "MALE",
    "birth_year",
    "current_commune",
    "describe_commune_code",
    "describe_failure",
    "holder_sex",
    "tax_check_digit",
]

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
MALE, FEMALE = 1, 2  # giới tính: 1 nam, 2 nữ

_PERSONAL_ID = re.compile(r"[0-9]{12}")
_ID_CARD_9 = re.compile(r"[0-9]{9}")
_TAX_CODE = re.compile(r"([0-9]{10})(?:-([0-9]{3}))?")
_TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_AGENCY_CODE = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_PHONE = re.compile(r"(?:0|\+?84)(?:[35789][0-9]{8}|2[0-9]{9})")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
_DATE = re.compile(r"[0-9]{8}")
_TIMESTAMP = re.compile(r"[0-9]{14}")
_DIGITS = re.compile(r"[0-9]+")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DMY_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")


def birth_year(number: str) -> int:
    """The birth year digits 4-6 (G YY) of a 12-digit personal number encode: G // 2 counts
    centuries from 1900 (0/1 the 1900s, 2/3 the 2000s, ... 8/9 the 2300s)."""
    return 1900 + 100 * (int(number[3]) // 2) + int(number[4:6])


def holder_sex(number: str) -> int:
    """1 (nam) when digit 4 (G) is even, 2 (nữ) when it is odd."""
    return MALE if int(number[3]) % 2 == 0 else FEMALE


def _this_year() -> int:
    return datetime.now(VIETNAM).year


def is_personal_id(value: str) -> bool:
    return (
        _PERSONAL_ID.fullmatch(value) is not None
        and value[:3] in PERSONAL_ID_PROVINCES
        and birth_year(value) <= _this_year()
    )


def is_id_card_9(value: str) -> bool:
    return _ID_CARD_9.fullmatch(value) is not None


def tax_check_digit(first_nine: str) -> str | None:
    """The 10th digit of a tax code (mã số thuế) starting with these 9 digits: 10 minus the
    weighted sum (31, 29, 23, 19, 17, 13, 7, 5, 3) modulo 11. A remainder of 10 gives 0; a
    remainder of 0 would give 10, so no tax code starts with such digits (None)."""
    remainder = sum(w * int(d) for w, d in zip(_TAX_WEIGHTS, first_nine, strict=True)) % 11
    return None if remainder == 0 else str(10 - remainder)


def is_tax_code(value: str) -> bool:
    """10 digits, or a dependent unit's 13 as `0101234567-001`.

    The 13-digit form is accepted with the dash only, as the tax authority writes it: one
    spelling per unit keeps lookups and joins exact. The serial (digits 3-9) is never 0000000
    and the suffix runs 001-999.
    """
    match = _TAX_CODE.fullmatch(value)
    if match is None:
        return False
    parent, suffix = match.groups()
    return parent[2:9] != "0000000" and suffix != "000" and tax_check_digit(parent[:9]) == parent[9]


def is_agency_code(value: str) -> bool:
    return _AGENCY_CODE.fullmatch(value) is not None


def is_commune_code(value: str) -> bool:
    return value in COMMUNES


def is_phone(value: str) -> bool:
    return _PHONE.fullmatch(value) is not None


def _date_of(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def is_yyyymmdd(value: str) -> bool:
    return _DATE.fullmatch(value) is not None and _date_of(value) is not None


def is_yyyymmddhhmmss(value: str) -> bool:
    return (
        _TIMESTAMP.fullmatch(value) is not None
        and _date_of(value) is not None
        and value[8:10] < "24"
        and value[10:12] < "60"
        and value[12:14] < "60"
    )


FORMATS: dict[str, Callable[[str], bool]] = {
    "vn-personal-id": is_personal_id,
    "vn-id-card-9": is_id_card_9,
    "vn-tax-code": is_tax_code,
    "vn-agency-code": is_agency_code,
    "vn-commune-code": is_commune_code,
    "vn-phone": is_phone,
    "yyyyMMdd": is_yyyymmdd,
    "yyyyMMddHHmmss": is_yyyymmddhhmmss,
}


# Why a value fails: each describer is called only for a value its checker refused, and
# always ends with a general sentence, so `describe_failure` never answers None for a failure.


def _not_digits(value: str, length: int, what: str) -> str | None:
    """A sentence when `value` is not `length` ASCII digits, else None."""
    stray = next((i for i, c in enumerate(value) if not "0" <= c <= "9"), None)
    if stray is not None:
        return f"{what} is {length} digits (0-9): character {stray + 1} ({value[stray]!r}) is not"
    if len(value) != length:
        return f"{what} has {length} digits, not {len(value)}"
    return None


def _describe_personal_id(value: str) -> str:
    what = "a personal identification number (số định danh cá nhân)"
    if _ID_CARD_9.fullmatch(value):
        return f"{what} has 12 digits; 9 digits is an old ID card (CMND) number (vn-id-card-9)"
    shape = _not_digits(value, 12, what)
    if shape:
        return shape
    if value[:3] not in PERSONAL_ID_PROVINCES:
        return (
            f"unknown province {value[:3]} in digits 1-3: the province of the birth registration "
            "is one of the 63 codes from 001 (Hà Nội) to 096 (Cà Mau)"
        )
    year = birth_year(value)
    return (
        f"digits 4-6 ({value[3:6]}: G={value[3]}, YY={value[4:6]}) give birth year {year}, "
        f"which is in the future"
    )


def _describe_id_card_9(value: str) -> str:
    what = "an old ID card (CMND) number"
    if _PERSONAL_ID.fullmatch(value):
        return f"{what} has 9 digits; 12 digits is a personal identification number"
    return _not_digits(value, 9, what) or f"{what} is 9 digits"


def _describe_tax_code(value: str) -> str:
    general = (
        "a tax code (mã số thuế) is 10 digits, or 13 for a dependent unit written with a dash "
        "as 0101234567-001"
    )
    if len(value) == 13 and _DIGITS.fullmatch(value):
        return f"write a dependent unit's tax code with a dash: {value[:10]}-{value[10:]}"
    if len(value) == 12 and _DIGITS.fullmatch(value):
        return f"{general}; 12 digits is a personal number (an individual's since July 2025)"
    match = _TAX_CODE.fullmatch(value)
    if match is None:
        return general
    parent, suffix = match.groups()
    if parent[2:9] == "0000000":
        return "digits 3-9 of a tax code are a serial from 0000001, never 0000000"
    expected = tax_check_digit(parent[:9])
    if expected is None:
        return (
            f"no tax code starts with {parent[:9]}: the weighted sum of these digits leaves "
            "0 modulo 11, so there is no check digit for them"
        )
    if expected != parent[9]:
        return f"the check digit (the 10th digit) should be {expected}, not {parent[9]}"
    if suffix == "000":
        return "a dependent unit's suffix runs from 001 to 999, not 000"
    return general


def _describe_agency_code(value: str) -> str:
    if _AGENCY_CODE.fullmatch(value.upper()):
        return f"the letter of an agency code is a capital: {value.upper()}"
    return (
        "an agency code (mã định danh cơ quan) is written like 000.00.12.H12: 3, 2 and 2 digits, "
        "then a capital letter and 2 digits, separated by dots"
    )


def _describe_commune_code(value: str) -> str:
    if not (len(value) == 5 and _DIGITS.fullmatch(value)):
        return "a commune code is 5 digits, e.g. 03388 (Phường Đoàn Kết)"
    if value in MERGED_COMMUNES:
        return f"{describe_commune_code(value)}: use {current_commune(value)}"
    return f"{value} is not one of the 38 current communes of Lai Châu"


def _describe_phone(value: str) -> str:
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact != value and _PHONE.fullmatch(compact):
        return (
            f"write the number as digits only, without spaces, dots, dashes or brackets: {compact}"
        )
    if len(compact) == 11 and compact.startswith("01") and _DIGITS.fullmatch(compact):
        return (
            "11-digit mobile numbers starting 01 were renumbered in 2018 (e.g. 0162 became 032): "
            "use the 10-digit number"
        )
    if compact.startswith(("+840", "840")):
        return "after the country code 84 leave out the leading 0 (+84912345678, not +840912345678)"
    return (
        "a phone number is a mobile number of 10 digits starting 03, 05, 07, 08 or 09, or a fixed "
        "line of 11 digits starting 02, either of them with +84 or 84 in place of the leading 0"
    )


def _describe_date_part(value: str) -> str | None:
    year, month, day = int(value[:4]), int(value[4:6]), int(value[6:8])
    if year == 0:
        return "year 0000 does not exist"
    if not 1 <= month <= 12:
        return f"month {value[4:6]} does not exist"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return f"{value[:4]}-{value[4:6]} has {days} days: there is no day {value[6:8]}"
    return None


def _describe_yyyymmdd(value: str) -> str:
    if iso := _ISO_DATE.fullmatch(value):
        compact, how = "".join(iso.groups()), "without dashes"
    elif dmy := _DMY_DATE.fullmatch(value):
        compact, how = "".join(reversed(dmy.groups())), "year first"
    else:
        compact = ""
    if compact:
        problem = _describe_date_part(compact)
        return problem or f"write the date as yyyyMMdd, {how}: {compact}"
    return (
        _not_digits(value, 8, "a date as yyyyMMdd (e.g. 20250701)")
        or _describe_date_part(value)
        or "not a calendar date as yyyyMMdd"
    )


def _describe_yyyymmddhhmmss(value: str) -> str:
    problem = _not_digits(value, 14, "a time as yyyyMMddHHmmss (e.g. 20250701083000)")
    problem = problem or _describe_date_part(value)
    if problem:
        return problem
    if value[8:10] >= "24":
        return (
            f"hour {value[8:10]} does not exist: hours run 00-23 (midnight is 00 of the next day)"
        )
    if value[10:12] >= "60":
        return f"minute {value[10:12]} does not exist: minutes run 00-59"
    if value[12:14] >= "60":
        return f"second {value[12:14]} does not exist: seconds run 00-59"
    return "not a time as yyyyMMddHHmmss"


_DESCRIBERS: dict[str, Callable[[str], str]] = {
    "vn-personal-id": _describe_personal_id,
    "vn-id-card-9": _describe_id_card_9,
    "vn-tax-code": _describe_tax_code,
    "vn-agency-code": _describe_agency_code,
    "vn-commune-code": _describe_commune_code,
    "vn-phone": _describe_phone,
    "yyyyMMdd": _describe_yyyymmdd,
    "yyyyMMddHHmmss": _describe_yyyymmddhhmmss,
}


def describe_failure(format_name: str, value: object) -> str | None:
    """Why `value` is not a valid `format_name`, in one sentence for a 422 answer.

    None when the value is valid, when it is not a string (formats only apply to strings) or
    when the format is not one of ours.
    """
    check = FORMATS.get(format_name)
    describe = _DESCRIBERS.get(format_name)
    if check is None or describe is None or not isinstance(value, str) or check(value):
        return None
    return describe(value)
