"""Our formats as a schema author sees them: asserted by both validators, with a sentence that
says why a value fails."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import formats
from schemas.formats import FORMATS, describe_failure, tax_check_digit
from schemas.validation import compile_validator, reference_validator
from schemas.vn_codes import (
    COMMUNES,
    MERGED_COMMUNES,
    PERSONAL_ID_PROVINCES,
    current_commune,
    describe_commune_code,
)
from simulators import citizens
from simulators import communes as simulator_communes

VALID: dict[str, list[str]] = {
    "vn-personal-id": [
        "012090001234",  # Lai Châu, man born 1990
        "001185000101",  # Hà Nội, woman born 1985
        "079203000123",  # Hồ Chí Minh, man born 2003
        "096300000000",  # Cà Mau, woman born 2000, serial 0
        "012000999999",  # man born 1900
    ],
    "vn-id-card-9": ["012345678", "240123456", "000000001"],
    "vn-tax-code": [
        "0100233488",
        "6200000015",
        "6200000110",  # weighted sum leaves 10 modulo 11: check digit 0
        "6200000015-001",
        "0100233488-999",
    ],
    "vn-agency-code": ["000.00.12.H12", "000.00.00.G10", "000.00.15.H12", "123.45.67.Z99"],
    "vn-commune-code": ["03388", "03390", "03408", "03640"],
    "vn-phone": [
        "0912345678",
        "0321234567",
        "0587654321",
        "0701234567",
        "0812345678",
        "+84912345678",
        "84912345678",
        "02133876543",  # Lai Châu, area code 0213
        "02438256789",  # Hà Nội, area code 024
        "+842133876543",
    ],
    "yyyyMMdd": ["20250701", "20240229", "20000229", "19000101", "99991231"],
    "yyyyMMddHHmmss": ["20250701000000", "20250701235959", "20240229120000"],
}

INVALID: dict[str, list[str]] = {
    "vn-personal-id": [
        "",
        "012090001234 ",
        "01209000123",
        "0120900012345",
        "01209000123A",
        "０１２０９０００１２３４",  # full-width digits
        "099090001234",  # no province 099
        "003090001234",  # 003 is not a province code
        "012290001234",  # born 2090
        "012490001234",  # born 2190
        "012945000001",  # born 2345
        "123456789",  # an old CMND number
    ],
    "vn-id-card-9": ["", "12345678", "0123456789", "01234567a", "012090001234", " 12345678"],
    "vn-tax-code": [
        "",
        "0100233480",  # check digit should be 8
        "6200000030",  # remainder 0: no check digit exists
        "6200000000",  # serial 0000000
        "6200000015001",  # 13 digits without the dash
        "6200000015-000",
        "6200000016-001",  # parent's check digit wrong
        "6200000015-01",
        "6200000015 001",
        "620000001",
        "012090001234",  # a personal number
    ],
    "vn-agency-code": [
        "",
        "000.00.12.h12",
        "000.00.12.H1",
        "000.0.12.H12",
        "000-00-12-H12",
        "000.00.12.H12 ",
        "000.00.12.12H",
        "000.00.12.HH2",
    ],
    "vn-commune-code": ["", "03391", "03999", "3388", "033880", "03388 ", "01234"],
    "vn-phone": [
        "",
        "0412345678",
        "0612345678",
        "091234567",
        "09123456789",
        "0912 345 678",
        "0912.345.678",
        "+840912345678",
        "+84 912345678",
        "0213387654",  # fixed line one digit short
        "01623456789",  # renumbered in 2018
        "912345678",
    ],
    "yyyyMMdd": [
        *("", "20250231", "20230229", "19000229", "20251301", "20250001", "00000101"),
        *("2025-07-01", "01/07/2025", "2025071", "202507011"),
    ],
    "yyyyMMddHHmmss": [
        "",
        "20250701240000",
        "20250701236000",
        "20250701235960",
        "20250231120000",
        "2025070112000",
        "2025-07-01T12:00:00",
    ],
}


def _validators(name: str) -> tuple[Any, Any]:
    schema = {"type": "string", "format": name}
    return compile_validator(schema), reference_validator(schema)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in VALID.items() for v in vs])
def test_valid_values_pass_both_validators(name: str, value: str) -> None:
    compiled, reference = _validators(name)
    assert compiled.is_valid(value)
    assert reference.is_valid(value)
    assert describe_failure(name, value) is None


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_invalid_values_fail_both_validators_with_a_reason(name: str, value: str) -> None:
    compiled, reference = _validators(name)
    assert not compiled.is_valid(value)
    assert not reference.is_valid(value)
    reason = describe_failure(name, value)
    assert reason and "\n" not in reason


def test_every_format_is_tested_both_ways() -> None:
    assert set(VALID) == set(INVALID) == set(FORMATS)


def test_formats_only_apply_to_strings() -> None:
    schema = {"format": "vn-personal-id"}
    assert compile_validator(schema).is_valid(12090001234)
    assert reference_validator(schema).is_valid(12090001234)
    assert describe_failure("vn-personal-id", 12090001234) is None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        (
            "vn-personal-id",
            "099090001234",
            "unknown province 099 in digits 1-3: the province of the birth registration is one "
            "of the 63 codes from 001 (Hà Nội) to 096 (Cà Mau)",
        ),
        (
            "vn-personal-id",
            "012290001234",
            "digits 4-6 (290: G=2, YY=90) give birth year 2090, which is in the future",
        ),
        (
            "vn-personal-id",
            "01209000123",
            "a personal identification number (số định danh cá nhân) has 12 digits, not 11",
        ),
        (
            "vn-personal-id",
            "01209O001234",
            "a personal identification number (số định danh cá nhân) is 12 digits (0-9): "
            "character 6 ('O') is not",
        ),
        (
            "vn-personal-id",
            "123456789",
            "a personal identification number (số định danh cá nhân) has 12 digits; 9 digits is "
            "an old ID card (CMND) number (vn-id-card-9)",
        ),
        ("vn-id-card-9", "12345678", "an old ID card (CMND) number has 9 digits, not 8"),
        (
            "vn-tax-code",
            "0100233480",
            "the check digit (the 10th digit) should be 8, not 0",
        ),
        (
            "vn-tax-code",
            "6200000030",
            "no tax code starts with 620000003: the weighted sum of these digits leaves 0 "
            "modulo 11, so there is no check digit for them",
        ),
        (
            "vn-tax-code",
            "6200000015001",
            "write a dependent unit's tax code with a dash: 6200000015-001",
        ),
        (
            "vn-tax-code",
            "6200000015-000",
            "a dependent unit's suffix runs from 001 to 999, not 000",
        ),
        (
            "vn-tax-code",
            "6200000000",
            "digits 3-9 of a tax code are a serial from 0000001, never 0000000",
        ),
        (
            "vn-agency-code",
            "000.00.12.h12",
            "the letter of an agency code is a capital: 000.00.12.H12",
        ),
        (
            "vn-commune-code",
            "03391",
            "commune 03391 was merged into 03390 (Bình Lư) on 2025-07-01: use 03390",
        ),
        ("vn-commune-code", "03999", "03999 is not one of the 38 current communes of Lai Châu"),
        ("vn-commune-code", "3388", "a commune code is 5 digits, e.g. 03388 (Phường Đoàn Kết)"),
        (
            "vn-phone",
            "0912 345 678",
            "write the number as digits only, without spaces, dots, dashes or brackets: 0912345678",
        ),
        (
            "vn-phone",
            "+840912345678",
            "after the country code 84 leave out the leading 0 (+84912345678, not +840912345678)",
        ),
        ("yyyyMMdd", "20250231", "2025-02 has 28 days: there is no day 31"),
        ("yyyyMMdd", "20251301", "month 13 does not exist"),
        ("yyyyMMdd", "2025-07-01", "write the date as yyyyMMdd, without dashes: 20250701"),
        ("yyyyMMdd", "01/07/2025", "write the date as yyyyMMdd, year first: 20250701"),
        (
            "yyyyMMddHHmmss",
            "20250701240000",
            "hour 24 does not exist: hours run 00-23 (midnight is 00 of the next day)",
        ),
        ("yyyyMMddHHmmss", "20250701235960", "second 60 does not exist: seconds run 00-59"),
    ],
)
def test_describe_failure_says_why(name: str, value: str, reason: str) -> None:
    assert describe_failure(name, value) == reason


def test_describe_failure_is_silent_for_formats_not_ours() -> None:
    assert describe_failure("email", "no-at-sign") is None
    assert describe_failure("vn-unknown", "x") is None


@pytest.mark.parametrize("name", sorted(FORMATS))
@given(
    value=st.text(max_size=20)
    | st.from_regex(r"[0-9]{1,15}", fullmatch=True)
    | st.from_regex(r"\+?[0-9 .\-/]{6,16}", fullmatch=True)
)
def test_a_reason_is_given_exactly_when_a_value_fails(name: str, value: str) -> None:
    assert (describe_failure(name, value) is None) == FORMATS[name](value)


def test_birth_year_may_be_this_year_but_not_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_this_year", lambda: 2031)
    assert FORMATS["vn-personal-id"]("012231000001")
    assert not FORMATS["vn-personal-id"]("012332000001")
    assert describe_failure("vn-personal-id", "012332000001") == (
        "digits 4-6 (332: G=3, YY=32) give birth year 2032, which is in the future"
    )


def test_tax_check_digit_follows_the_weights() -> None:
    # 0*31 + 1*29 + 0*23 + 0*19 + 2*17 + 3*13 + 3*7 + 4*5 + 8*3 = 167; 167 % 11 = 2; 10 - 2 = 8
    assert tax_check_digit("010023348") == "8"
    assert tax_check_digit("620000011") == "0"
    assert tax_check_digit("620000003") is None


def test_the_province_table_is_the_published_one() -> None:
    assert len(PERSONAL_ID_PROVINCES) == 63
    assert PERSONAL_ID_PROVINCES["001"] == "Hà Nội"
    assert PERSONAL_ID_PROVINCES["002"] == "Hà Giang"
    assert PERSONAL_ID_PROVINCES["012"] == "Lai Châu"
    assert PERSONAL_ID_PROVINCES["079"] == "Hồ Chí Minh"
    assert PERSONAL_ID_PROVINCES["096"] == "Cà Mau"
    assert all(len(code) == 3 and "001" <= code <= "096" for code in PERSONAL_ID_PROVINCES)


def test_the_synthetic_population_passes() -> None:
    numbers = [c.so_dinh_danh for c in citizens.citizens()]
    numbers += [o.so_dinh_danh for o in citizens.officers()]
    assert all(FORMATS["vn-personal-id"](n) for n in numbers)


def test_the_commune_list_is_the_simulators_list() -> None:
    ours = {code: (c.name, c.is_ward) for code, c in COMMUNES.items()}
    theirs = {code: (c.name, c.is_ward) for code, c in simulator_communes.COMMUNES.items()}
    assert ours == theirs
    assert len(ours) == 38


def test_merged_communes_lead_to_current_ones() -> None:
    assert MERGED_COMMUNES  # sample data, but present
    for old, merger in MERGED_COMMUNES.items():
        assert old not in COMMUNES
        assert "03385" <= old <= "03640"
        assert merger.new_code in COMMUNES
        assert current_commune(old) == merger.new_code


def test_current_commune() -> None:
    assert current_commune("03390") == "03390"
    assert current_commune("03391") == "03390"
    assert current_commune("03999") is None


def test_describe_commune_code() -> None:
    assert describe_commune_code("03391") == (
        "commune 03391 was merged into 03390 (Bình Lư) on 2025-07-01"
    )
    assert describe_commune_code("03388") == (
        "commune 03388 is Phường Đoàn Kết, one of the 38 communes of Lai Châu"
    )
    assert describe_commune_code("03999") == (
        "03999 is not the code of a commune of Lai Châu, current or merged"
    )
