"""The 1 KB documents of the benchmark: a lookup request, the citizen record, their schemas.

All data is synthetic (no real person): a lookup of a citizen by personal identification number
(số định danh cá nhân) made by a one-stop-shop officer, and the record the population database
(CSDL quốc gia về dân cư) would answer.
"""

from __future__ import annotations

import json
from typing import Any

TARGET_BYTES = 1024
SUBJECT_ID = "012090001234"
AGENCY_CODE = "000.00.12.H12"
PURPOSE = "bench"
GRANTED_FIELDS = ["so_dinh_danh", "ho_va_ten", "ngay_sinh", "noi_thuong_tru"]

_NOTE = (
    "Hồ sơ tiếp nhận tại Bộ phận Một cửa; công dân đề nghị đối chiếu thông tin nơi thường trú "
    "và thông tin nhân thân trước khi cán bộ thụ lý chuyển hồ sơ sang phòng chuyên môn giải quyết "
    "theo quy trình nội bộ đã được Ủy ban nhân dân tỉnh phê duyệt. "
) * 8

_ADDRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ma_tinh", "ma_xa", "chi_tiet"],
    "properties": {
        "ma_tinh": {"type": "string", "pattern": "^[0-9]{2}$"},
        "ma_huyen": {"type": "string", "pattern": "^[0-9]{3}$"},
        "ma_xa": {"type": "string", "pattern": "^[0-9]{5}$"},
        "chi_tiet": {"type": "string", "minLength": 1, "maxLength": 300},
    },
    "additionalProperties": False,
}
_PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["so_dinh_danh", "ho_va_ten"],
    "properties": {
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ho_va_ten": {"type": "string", "minLength": 1, "maxLength": 100},
    },
}
_DATE = "^(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$"  # yyyyMMdd


def _padded(document: dict[str, Any], field: str) -> dict[str, Any]:
    """`document` with a free-text note that brings its compact UTF-8 JSON to ~TARGET_BYTES."""
    padded = {**document, field: ""}
    room = TARGET_BYTES - len(encode(padded))
    note = _NOTE.encode()[: max(room, 0)].decode(errors="ignore").rstrip()
    padded[field] = note
    return padded


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


REQUEST: dict[str, Any] = _padded(
    {
        "ma_yeu_cau": "000.00.12.H12-241102-000123",
        "so_dinh_danh": SUBJECT_ID,
        "ho_va_ten": "Lò Thị Ánh",
        "ngay_sinh": "19900512",
        "ly_do": "Xác minh nhân thân khi tiếp nhận hồ sơ đăng ký hộ kinh doanh",
        "thu_tuc": {"ma": "1.001612", "ten": "Đăng ký thành lập hộ kinh doanh"},
        "can_bo": {
            "so_dinh_danh": "012085004321",
            "ho_va_ten": "Lường Văn Xương",
            "chuc_vu": "Chuyên viên",
            "don_vi": "Bộ phận Một cửa UBND Phường Đoàn Kết",
        },
        "don_vi_yeu_cau": {"ma": AGENCY_CODE, "ten": "Sở Tài chính tỉnh Lai Châu"},
        "truong_can_lay": ["ho_va_ten", "ngay_sinh", "noi_thuong_tru"],
        "thoi_diem": "2024-11-02T08:15:00+07:00",
    },
    "ghi_chu",
)

CITIZEN: dict[str, Any] = _padded(
    {
        "so_dinh_danh": SUBJECT_ID,
        "ho_va_ten": "Lò Thị Ánh",
        "ngay_sinh": "19900512",
        "gioi_tinh": "nu",
        "dan_toc": "Thái",
        "ton_giao": "Không",
        "quoc_tich": "VN",
        "que_quan": {
            "ma_tinh": "12",
            "ma_huyen": "105",
            "ma_xa": "03424",
            "chi_tiet": "Xã Bản Giang, Huyện Tam Đường, Tỉnh Lai Châu",
        },
        "noi_thuong_tru": {
            "ma_tinh": "12",
            "ma_xa": "03388",
            "chi_tiet": "Số 15 đường Trần Hưng Đạo, Phường Đoàn Kết, Thành phố Lai Châu",
        },
        "cha": {"so_dinh_danh": "012062000871", "ho_va_ten": "Lò Văn Inh"},
        "me": {"so_dinh_danh": "012165000932", "ho_va_ten": "Tòng Thị Xuân"},
        "chu_ho": {"so_dinh_danh": "012062000871", "ho_va_ten": "Lò Văn Inh"},
        "quan_he_voi_chu_ho": "Con",
        "tinh_trang": "con_song",
        "ngay_cap_nhat": "2024-10-28T14:02:11+07:00",
    },
    "ghi_chu",
)

REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["ma_yeu_cau", "so_dinh_danh", "ho_va_ten", "ngay_sinh", "ly_do", "can_bo"],
    "properties": {
        "ma_yeu_cau": {"type": "string", "minLength": 1, "maxLength": 64},
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ho_va_ten": {"type": "string", "minLength": 1, "maxLength": 100},
        "ngay_sinh": {"type": "string", "pattern": _DATE},
        "ly_do": {"type": "string", "minLength": 10, "maxLength": 500},
        "thu_tuc": {
            "type": "object",
            "required": ["ma"],
            "properties": {
                "ma": {"type": "string", "pattern": "^[0-9]\\.[0-9]{6}$"},
                "ten": {"type": "string", "maxLength": 300},
            },
        },
        "can_bo": {
            "type": "object",
            "required": ["so_dinh_danh", "ho_va_ten", "don_vi"],
            "properties": {
                "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
                "ho_va_ten": {"type": "string", "minLength": 1, "maxLength": 100},
                "chuc_vu": {"type": "string", "maxLength": 100},
                "don_vi": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "additionalProperties": False,
        },
        "don_vi_yeu_cau": {
            "type": "object",
            "required": ["ma"],
            "properties": {
                "ma": {
                    "type": "string",
                    "pattern": "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}$",
                },
                "ten": {"type": "string", "maxLength": 200},
            },
        },
        "truong_can_lay": {
            "type": "array",
            "items": {
                "enum": ["ho_va_ten", "ngay_sinh", "gioi_tinh", "noi_thuong_tru", "que_quan"]
            },
            "uniqueItems": True,
        },
        "thoi_diem": {"type": "string", "format": "date-time"},
        "ghi_chu": {"type": "string", "maxLength": 2000},
    },
    "additionalProperties": False,
}

RESPONSE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["so_dinh_danh", "ho_va_ten", "ngay_sinh", "gioi_tinh", "noi_thuong_tru"],
    "properties": {
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ho_va_ten": {"type": "string", "minLength": 1, "maxLength": 100},
        "ngay_sinh": {"type": "string", "pattern": _DATE},
        "gioi_tinh": {"enum": ["nam", "nu", "khac"]},
        "dan_toc": {"type": "string"},
        "ton_giao": {"type": "string"},
        "quoc_tich": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "que_quan": _ADDRESS_SCHEMA,
        "noi_thuong_tru": _ADDRESS_SCHEMA,
        "cha": _PERSON_SCHEMA,
        "me": _PERSON_SCHEMA,
        "chu_ho": _PERSON_SCHEMA,
        "quan_he_voi_chu_ho": {"type": "string"},
        "tinh_trang": {"enum": ["con_song", "da_mat", "mat_tich"]},
        "ngay_cap_nhat": {"type": "string", "format": "date-time"},
        "ghi_chu": {"type": "string"},
    },
}

REQUEST_BYTES = encode(REQUEST)
CITIZEN_BYTES = encode(CITIZEN)
