"""A deterministic population of synthetic citizens and officers (no real personal data)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import TypeVar

from simulators.communes import COMMUNES, PROVINCE_CODE
from simulators.personal_id import FEMALE, MALE, is_valid_personal_id, make_personal_id

__all__ = [
    "Address",
    "Citizen",
    "Officer",
    "citizens",
    "demo_citizen",
    "find",
    "find_officer",
    "is_valid_personal_id",
    "officers",
]

SEED = 20250701
POPULATION = 300
_EARLIEST = date(1940, 1, 1)
_LATEST = date(2024, 12, 31)

# Province of the birth registration (PPP) with its weight: mostly Lai Châu.
_PROVINCES: tuple[tuple[str, int], ...] = (
    ("012", 80),
    ("001", 6),
    ("079", 5),
    ("010", 3),  # Lào Cai
    ("011", 2),  # Điện Biên
    ("014", 2),  # Sơn La
    ("038", 2),  # Thanh Hóa
)

# Ethnic group with its weight, its usual surnames and given names (male, female).
_ETHNIC_GROUPS: dict[str, tuple[int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Kinh": (
        30,
        ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương"),
        ("An", "Bình", "Cường", "Dũng", "Hùng", "Khánh", "Long", "Nam", "Phúc", "Quân", "Sơn"),
        ("Anh", "Hà", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Nhung", "Phương", "Thảo", "Yến"),
    ),
    "Thái": (
        25,
        ("Lò", "Lường", "Tòng", "Cầm", "Quàng", "Lù", "Điêu"),
        ("Ơn", "Xương", "Piếng", "Inh", "Khăm", "Thoại", "Tiến", "Hoan"),
        ("Ánh", "Ọn", "Xuân", "Thơm", "Ngân", "Liên", "Hiền", "Pánh"),
    ),
    "Mông": (
        20,
        ("Giàng", "Vàng", "Sùng", "Thào", "Lý", "Hạng", "Mùa"),
        ("Páo", "Chử", "Dơ", "Sếnh", "Chìa", "Pó", "Tủa", "Lử"),
        ("Mỷ", "Dở", "Sua", "Pà", "Chi", "Mang", "Súa", "Dế"),
    ),
    "Dao": (
        10,
        ("Triệu", "Phàn", "Tẩn", "Lý", "Chảo"),
        ("Vần", "Quẩy", "Kiềm", "Phủ", "Chăn", "Sử"),
        ("Mẩy", "Xiêm", "Chiêu", "Nái", "Mấy", "Liếu"),
    ),
    "Hà Nhì": (
        5,
        ("Chu", "Pờ", "Lò", "Sừng", "Lý"),
        ("Chà", "Xá", "Cà", "Phì", "Hừ"),
        ("Mé", "Xè", "Pú", "Chừ", "Gié"),
    ),
    "Giáy": (
        5,
        ("Hoàng", "Vàng", "Lù", "Lồ", "Sầm"),
        ("Phủ", "Sinh", "Xuân", "Chấn", "Quý"),
        ("Mỷ", "Lìn", "Thèn", "Sím", "Mai"),
    ),
    "Lự": (
        5,
        ("Lò", "Tao", "Chìn", "Lù"),
        ("Khăm", "Pặn", "Xiêng", "Ún"),
        ("Oản", "Ệt", "Xín", "Pẻn"),
    ),
}
T = TypeVar("T")

_MIDDLE_KINH = {MALE: ("Văn", "Đức", "Minh", "Quang", "Hữu"), FEMALE: ("Thị", "Thu", "Thanh")}
_MIDDLE_MONG = {MALE: ("A", "Seo", "Văn"), FEMALE: ("Thị",)}
_MIDDLE_OTHER = {MALE: ("Văn",), FEMALE: ("Thị",)}


@dataclass(frozen=True, slots=True)
class Address:
    """Nơi thường trú: province and commune of permanent residence."""

    ma_tinh: str
    ma_xa: str
    ten_xa: str


@dataclass(frozen=True, slots=True)
class Citizen:
    """One synthetic person as the population database holds them."""

    so_dinh_danh: str
    ho_va_ten: str
    gioi_tinh: int  # 1 nam, 2 nữ
    ngay_sinh: date
    noi_thuong_tru: Address
    dan_toc: str
    quoc_tich: str = "VN"


@dataclass(frozen=True, slots=True)
class Officer:
    """A public officer (cán bộ) who queries the population database on a citizen's behalf."""

    so_dinh_danh: str
    ho_va_ten: str
    gioi_tinh: int
    ngay_sinh: date
    co_quan: str  # agency code of the employer
    co_quyen_dan_cu: bool  # granted access to the population database


_DEMO = Citizen(
    so_dinh_danh="012090001234",
    ho_va_ten="Lò Văn Minh",
    gioi_tinh=MALE,
    ngay_sinh=date(1990, 5, 17),
    noi_thuong_tru=Address(PROVINCE_CODE, "03388", COMMUNES["03388"].full_name),
    dan_toc="Thái",
)

_OFFICERS: tuple[Officer, ...] = (
    Officer("012185000101", "Trần Thị Hoa", FEMALE, date(1985, 3, 2), "000.00.12.H12", True),
    Officer("012082000102", "Lò Văn Thắng", MALE, date(1982, 8, 9), "000.00.12.H12", True),
    Officer("001088000103", "Nguyễn Đức Long", MALE, date(1988, 1, 30), "000.00.12.H12", True),
    # Employed by a commune but never granted access: the "officer without rights" case.
    Officer("012193000104", "Giàng Thị Mỷ", FEMALE, date(1993, 11, 21), "000.00.12.H12", False),
)


def _pick_weighted(rng: random.Random, items: tuple[tuple[T, int], ...]) -> T:
    values = [value for value, _ in items]
    weights = [weight for _, weight in items]
    return rng.choices(values, weights=weights, k=1)[0]


def _name(rng: random.Random, *, ethnic: str, sex: int) -> str:
    _, surnames, male_names, female_names = _ETHNIC_GROUPS[ethnic]
    middles = {"Kinh": _MIDDLE_KINH, "Mông": _MIDDLE_MONG}.get(ethnic, _MIDDLE_OTHER)
    given = male_names if sex == MALE else female_names
    return f"{rng.choice(surnames)} {rng.choice(middles[sex])} {rng.choice(given)}"


def _generate(rng: random.Random, *, taken: set[str]) -> Citizen:
    ethnic = _pick_weighted(rng, tuple((name, row[0]) for name, row in _ETHNIC_GROUPS.items()))
    sex = rng.choice((MALE, FEMALE))
    born = _EARLIEST + timedelta(days=rng.randrange((_LATEST - _EARLIEST).days))
    province = _pick_weighted(rng, _PROVINCES)
    while True:
        number = make_personal_id(
            province=province, sex=sex, birth_year=born.year, serial=rng.randrange(1, 1_000_000)
        )
        if number not in taken:
            taken.add(number)
            break
    home = rng.choice(list(COMMUNES.values()))
    return Citizen(
        so_dinh_danh=number,
        ho_va_ten=_name(rng, ethnic=ethnic, sex=sex),
        gioi_tinh=sex,
        ngay_sinh=born,
        noi_thuong_tru=Address(PROVINCE_CODE, home.code, home.full_name),
        dan_toc=ethnic,
    )


@cache
def _population() -> tuple[tuple[Citizen, ...], dict[str, Citizen]]:
    rng = random.Random(SEED)
    taken = {_DEMO.so_dinh_danh} | {o.so_dinh_danh for o in _OFFICERS}
    people = (_DEMO, *(_generate(rng, taken=taken) for _ in range(POPULATION - 1)))
    return people, {c.so_dinh_danh: c for c in people}


def citizens() -> list[Citizen]:
    """All synthetic citizens, the same list on every run."""
    return list(_population()[0])


def find(so_dinh_danh: str) -> Citizen | None:
    """The citizen with this personal identification number, or None."""
    return _population()[1].get(so_dinh_danh)


def demo_citizen() -> Citizen:
    """A stable citizen for documentation and examples (always the first of `citizens()`)."""
    return _DEMO


def officers() -> list[Officer]:
    """Officers known to the population database; exactly one of them has no rights."""
    return list(_OFFICERS)


def find_officer(so_dinh_danh: str) -> Officer | None:
    """The officer with this personal identification number, or None."""
    return next((o for o in _OFFICERS if o.so_dinh_danh == so_dinh_danh), None)
