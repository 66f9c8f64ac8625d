"""The 38 communes of Lai Châu after the July 2025 reorganisation (sample codes, see DOMAIN.md)."""

from __future__ import annotations

from dataclasses import dataclass

PROVINCE_CODE = "12"
PROVINCE_NAME = "Lai Châu"


@dataclass(frozen=True, slots=True)
class Commune:
    """One commune-level unit: a xã (rural) or a phường (urban ward)."""

    code: str
    name: str
    is_ward: bool  # phường when True, xã otherwise

    @property
    def full_name(self) -> str:
        return f"{'Phường' if self.is_ward else 'Xã'} {self.name}"


_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("03388", "Đoàn Kết", True),
    ("03408", "Tân Phong", True),
    ("03390", "Bình Lư", False),
    ("03394", "Sin Suối Hồ", False),
    ("03405", "Tả Lèng", False),
    ("03424", "Bản Bo", False),
    ("03430", "Khun Há", False),
    ("03433", "Bum Tở", False),
    ("03434", "Nậm Hàng", False),
    ("03439", "Thu Lũm", False),
    ("03442", "Pa Ủ", False),
    ("03445", "Mường Tè", False),
    ("03451", "Mù Cả", False),
    ("03460", "Hua Bum", False),
    ("03463", "Tà Tổng", False),
    ("03466", "Bum Nưa", False),
    ("03472", "Mường Mô", False),
    ("03478", "Sìn Hồ", False),
    ("03487", "Lê Lợi", False),
    ("03503", "Pa Tần", False),
    ("03508", "Hồng Thu", False),
    ("03517", "Nậm Tăm", False),
    ("03529", "Tủa Sín Chải", False),
    ("03532", "Pu Sam Cáp", False),
    ("03538", "Nậm Mạ", False),
    ("03544", "Nậm Cuổi", False),
    ("03549", "Phong Thổ", False),
    ("03562", "Sì Lở Lầu", False),
    ("03571", "Dào San", False),
    ("03583", "Khổng Lào", False),
    ("03595", "Than Uyên", False),
    ("03598", "Tân Uyên", False),
    ("03601", "Mường Khoa", False),
    ("03613", "Nậm Sỏ", False),
    ("03616", "Pắc Ta", False),
    ("03618", "Mường Than", False),
    ("03637", "Mường Kim", False),
    ("03640", "Khoen On", False),
)

COMMUNES: dict[str, Commune] = {code: Commune(code, name, ward) for code, name, ward in _ROWS}


def commune(code: str) -> Commune | None:
    """The commune with this 5-digit code, or None."""
    return COMMUNES.get(code)
