"""The synthetic population: consistent identifiers, plausible names, valid communes."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from simulators import citizens
from simulators.communes import COMMUNES
from simulators.personal_id import is_valid_personal_id, make_personal_id, sex_century_digit


def test_about_three_hundred_unique_citizens() -> None:
    people = citizens.citizens()
    assert 250 <= len(people) <= 350
    assert len({c.so_dinh_danh for c in people}) == len(people)


def test_every_number_agrees_with_sex_and_birth_year() -> None:
    for person in citizens.citizens():
        assert is_valid_personal_id(
            person.so_dinh_danh, sex=person.gioi_tinh, birth_year=person.ngay_sinh.year
        ), person


def test_mostly_lai_chau_with_some_other_provinces() -> None:
    provinces = [c.so_dinh_danh[:3] for c in citizens.citizens()]
    assert provinces.count("012") > len(provinces) / 2
    assert {"001", "079"} <= set(provinces)


def test_both_centuries_and_sexes_are_present() -> None:
    digits = {c.so_dinh_danh[3] for c in citizens.citizens()}
    assert digits == {"0", "1", "2", "3"}


def test_names_are_vietnamese_with_diacritics_in_nfc() -> None:
    people = citizens.citizens()
    for person in people:
        assert unicodedata.is_normalized("NFC", person.ho_va_ten)
        assert len(person.ho_va_ten.split()) >= 3
    with_marks = [p for p in people if p.ho_va_ten != _strip_marks(p.ho_va_ten)]
    assert len(with_marks) > len(people) * 0.8
    surnames = {p.ho_va_ten.split()[0] for p in people}
    assert {"Nguyễn", "Lò", "Giàng"} & surnames


def test_residence_is_a_commune_of_lai_chau() -> None:
    for person in citizens.citizens():
        home = person.noi_thuong_tru
        assert home.ma_tinh == "12"
        assert home.ma_xa in COMMUNES
        assert home.ten_xa == COMMUNES[home.ma_xa].full_name
        assert person.quoc_tich == "VN"
        assert person.gioi_tinh in (1, 2)


def test_commune_table_has_36_xa_and_2_phuong() -> None:
    assert len(COMMUNES) == 38
    assert sum(c.is_ward for c in COMMUNES.values()) == 2
    assert all(len(code) == 5 and code.isdigit() for code in COMMUNES)


def test_generation_is_deterministic() -> None:
    first = citizens.citizens()
    citizens._population.cache_clear()
    assert citizens.citizens() == first


def test_demo_citizen_is_stable_and_findable() -> None:
    demo = citizens.demo_citizen()
    assert demo == citizens.citizens()[0]
    assert demo.so_dinh_danh == "012090001234"
    assert citizens.find(demo.so_dinh_danh) == demo
    assert citizens.find("012090009999") is None


def test_officers_have_valid_numbers_and_one_lacks_rights() -> None:
    officers = citizens.officers()
    for officer in officers:
        assert is_valid_personal_id(
            officer.so_dinh_danh, sex=officer.gioi_tinh, birth_year=officer.ngay_sinh.year
        )
        assert citizens.find(officer.so_dinh_danh) is None
    assert sum(not o.co_quyen_dan_cu for o in officers) == 1
    assert sum(o.co_quyen_dan_cu for o in officers) >= 2


@pytest.mark.parametrize(
    ("sex", "year", "digit"),
    [
        (1, 1990, "0"),
        (2, 1990, "1"),
        (1, 2005, "2"),
        (2, 2005, "3"),
        (1, 2100, "4"),
        (2, 2101, "5"),
    ],
)
def test_century_digit(sex: int, year: int, digit: str) -> None:
    assert sex_century_digit(sex=sex, birth_year=year) == digit


def test_validity_rejects_disagreement() -> None:
    number = make_personal_id(province="012", sex=2, birth_year=2003, serial=42)
    assert number == "012303000042"
    assert is_valid_personal_id(number, sex=2, birth_year=2003)
    assert not is_valid_personal_id(number, sex=1, birth_year=2003)
    assert not is_valid_personal_id(number, sex=2, birth_year=1903)
    assert not is_valid_personal_id(number, sex=2, birth_year=2004)
    assert not is_valid_personal_id("01230300004", sex=2, birth_year=2003)
    assert not is_valid_personal_id("01230300004x", sex=2, birth_year=2003)
    assert not is_valid_personal_id(number + "\n", sex=2, birth_year=2003)
    assert not is_valid_personal_id("０１２303000042", sex=2, birth_year=2003)


def test_birth_dates_are_plausible() -> None:
    for person in citizens.citizens():
        assert date(1940, 1, 1) <= person.ngay_sinh <= date(2024, 12, 31)


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
