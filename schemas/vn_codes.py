"""Code tables behind the Vietnamese formats: the provinces of the personal identification number,
the 38 communes of Lai Châu since 1 July 2025, and (sample) old commune codes merged into them.

`schemas` is the bottom package, so it keeps its own copy of the commune list rather than
importing `simulators.communes`; both copy DOMAIN.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = [
    "COMMUNES",
    "MERGED_COMMUNES",
    "PERSONAL_ID_PROVINCES",
    "Commune",
    "Merger",
    "current_commune",
    "describe_commune_code",
]

# Mã tỉnh nơi đăng ký khai sinh: digits 1-3 of the số định danh cá nhân, the 63 provinces as
# published with Thông tư 07/2016/TT-BCA (Phụ lục 1). Numbers already issued keep these codes
# after the 2025 merger of provinces.
PERSONAL_ID_PROVINCES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}


@dataclass(frozen=True, slots=True)
class Commune:
    """A commune-level unit of Lai Châu: a xã, or a phường when `is_ward`."""

    code: str
    name: str
    is_ward: bool = False

    @property
    def full_name(self) -> str:
        return f"{'Phường' if self.is_ward else 'Xã'} {self.name}"


_CURRENT: tuple[Commune, ...] = (
    Commune("03388", "Đoàn Kết", is_ward=True),
    Commune("03408", "Tân Phong", is_ward=True),
    Commune("03390", "Bình Lư"),
    Commune("03394", "Sin Suối Hồ"),
    Commune("03405", "Tả Lèng"),
    Commune("03424", "Bản Bo"),
    Commune("03430", "Khun Há"),
    Commune("03433", "Bum Tở"),
    Commune("03434", "Nậm Hàng"),
    Commune("03439", "Thu Lũm"),
    Commune("03442", "Pa Ủ"),
    Commune("03445", "Mường Tè"),
    Commune("03451", "Mù Cả"),
    Commune("03460", "Hua Bum"),
    Commune("03463", "Tà Tổng"),
    Commune("03466", "Bum Nưa"),
    Commune("03472", "Mường Mô"),
    Commune("03478", "Sìn Hồ"),
    Commune("03487", "Lê Lợi"),
    Commune("03503", "Pa Tần"),
    Commune("03508", "Hồng Thu"),
    Commune("03517", "Nậm Tăm"),
    Commune("03529", "Tủa Sín Chải"),
    Commune("03532", "Pu Sam Cáp"),
    Commune("03538", "Nậm Mạ"),
    Commune("03544", "Nậm Cuổi"),
    Commune("03549", "Phong Thổ"),
    Commune("03562", "Sì Lở Lầu"),
    Commune("03571", "Dào San"),
    Commune("03583", "Khổng Lào"),
    Commune("03595", "Than Uyên"),
    Commune("03598", "Tân Uyên"),
    Commune("03601", "Mường Khoa"),
    Commune("03613", "Nậm Sỏ"),
    Commune("03616", "Pắc Ta"),
    Commune("03618", "Mường Than"),
    Commune("03637", "Mường Kim"),
    Commune("03640", "Khoen On"),
)

# The 38 communes of Lai Châu since 1 July 2025 (codes as in community datasets, see DOMAIN.md).
COMMUNES: dict[str, Commune] = {c.code: c for c in _CURRENT}


@dataclass(frozen=True, slots=True)
class Merger:
    """An old commune code and the current commune it was merged into, and when."""

    old_code: str
    new_code: str
    effective: date


_REORGANISATION = date(2025, 7, 1)

# ---------------------------------------------------------------------------------------------
# SAMPLE DATA, NOT OFFICIAL: made-up old codes (in Lai Châu's range 03385-03640, none of them a
# current code) so that the old -> new path can be exercised. An operator replaces these rows
# with the resolution that reorganised the province's communes before relying on them.
# ---------------------------------------------------------------------------------------------
_SAMPLE_MERGERS: tuple[tuple[str, str], ...] = (
    ("03385", "03388"),
    ("03386", "03408"),
    ("03391", "03390"),
    ("03397", "03394"),
    ("03400", "03405"),
    ("03427", "03424"),
    ("03436", "03433"),
    ("03448", "03445"),
    ("03454", "03451"),
    ("03469", "03466"),
    ("03475", "03472"),
    ("03481", "03478"),
    ("03490", "03487"),
    ("03511", "03508"),
    ("03520", "03517"),
    ("03541", "03538"),
    ("03553", "03549"),
    ("03565", "03562"),
    ("03586", "03583"),
    ("03592", "03595"),
    ("03604", "03601"),
    ("03622", "03618"),
    ("03625", "03637"),
    ("03634", "03640"),
)

MERGED_COMMUNES: dict[str, Merger] = {
    old: Merger(old, new, _REORGANISATION) for old, new in _SAMPLE_MERGERS
}


def current_commune(code: str) -> str | None:
    """The current commune code for `code`: itself when current, its successor when merged."""
    if code in COMMUNES:
        return code
    merger = MERGED_COMMUNES.get(code)
    return merger.new_code if merger else None


def describe_commune_code(code: str) -> str:
    """One sentence on what `code` is: a current commune, a merged one (and into what), or none."""
    if code in COMMUNES:
        return f"commune {code} is {COMMUNES[code].full_name}, one of the 38 communes of Lai Châu"
    merger = MERGED_COMMUNES.get(code)
    if merger is not None:
        successor = COMMUNES[merger.new_code]
        return (
            f"commune {code} was merged into {successor.code} ({successor.name}) "
            f"on {merger.effective.isoformat()}"
        )
    return f"{code} is not the code of a commune of Lai Châu, current or merged"
