"""Sample strings for the formats the validators assert, ours (schemas.formats) and standard ones.

A candidate is only used when the validators' own format checker accepts it; for our formats
with check digits, variations of the last digits are tried too.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema

from schemas.validation import format_checker

SAMPLES: dict[str, tuple[str, ...]] = {
    # Vietnamese identifiers (Căn cước công dân 12 số, CMND 9 số, mã số thuế, mã định danh
    # cơ quan, mã đơn vị hành chính cấp xã, số điện thoại) and compact dates.
    "vn-personal-id": ("001099012345", "079203001234", "001200000001", "038185000123"),
    "vn-id-card-9": ("123456789", "012345678", "241234567"),
    "vn-tax-code": ("0100109106", "0301234567", "0100109106-001", "0312345678", "8012345678"),
    "vn-agency-code": ("000.00.00.H29", "000.00.00.G22", "000.00.31.H29", "H29.01", "G22"),
    "vn-commune-code": ("00001", "26734", "00004", "31117"),
    "vn-phone": ("0912345678", "+84912345678", "0241234567", "84912345678", "0381234567"),
    "yyyyMMdd": ("20240131", "19991231", "20000229"),
    "yyyyMMddHHmmss": ("20240131235959", "19991231000000"),
    # Standard formats.
    "date": ("2024-01-31",),
    "date-time": ("2024-01-31T12:00:00Z", "2024-01-31T12:00:00+07:00"),
    "time": ("12:00:00Z", "12:00:00+07:00"),
    "email": ("a@example.com",),
    "idn-email": ("a@example.com",),
    "uuid": ("123e4567-e89b-12d3-a456-426614174000",),
    "uri": ("https://example.com/a",),
    "uri-reference": ("https://example.com/a", "a"),
    "iri": ("https://example.com/a",),
    "hostname": ("example.com",),
    "idn-hostname": ("example.com",),
    "ipv4": ("192.0.2.1",),
    "ipv6": ("2001:db8::1",),
    "duration": ("P1D",),
    "regex": ("^a$",),
    "json-pointer": ("/a",),
}


EXHAUSTIVE_DIGITS = 5


@cache
def checker() -> jsonschema.FormatChecker:
    return format_checker(jsonschema.Draft202012Validator)


def conforms(name: str, value: Any) -> bool:
    try:
        return bool(checker().conforms(value, name))
    except Exception:  # a format function that raises on odd input refuses it
        return False


def samples(name: str) -> Iterator[str]:
    """Strings of format `name` the format checker accepts (nothing when none is found)."""
    yield from _found(name)


@cache
def _found(name: str) -> tuple[str, ...]:
    seeds = SAMPLES.get(name, ())
    found = [seed for seed in seeds if conforms(name, seed)]
    for seed in seeds:
        found.extend(c for c in _near(name, seed) if c not in found)
    if not found:
        found.extend(_exhaust(name, seeds))
    return tuple(found)


def _exhaust(name: str, seeds: tuple[str, ...]) -> Iterator[str]:
    """Short codes from a closed list (communes): try every string of digits of that length."""
    for seed in seeds:
        if seed.isdigit() and len(seed) <= EXHAUSTIVE_DIGITS:
            for number in range(10 ** len(seed)):
                candidate = str(number).zfill(len(seed))
                if conforms(name, candidate):
                    yield candidate
                    return
            return


def _near(name: str, seed: str) -> Iterator[str]:
    """Check digits: vary the last one or two digits of a seed."""
    digits = [i for i, ch in enumerate(seed) if ch.isdigit()]
    for position in digits[-2:][::-1]:
        for digit in "0123456789":
            candidate = seed[:position] + digit + seed[position + 1 :]
            if candidate != seed and conforms(name, candidate):
                yield candidate
                return
