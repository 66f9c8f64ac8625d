"""The 1 KB message of the messaging benchmark: a dossier status change (DongBoHoSoMC-like).

Every message carries `sent_ns`, the publisher's `time.time_ns()` when its request was built; the
receiver subtracts it from its own `time.time_ns()` at arrival (one clock, one machine). The key
field `MaHoSo` cycles over KEYS dossier codes, so delivery keeps order per dossier while many
dossiers flow at once, as a province's traffic would.
"""

from __future__ import annotations

from typing import Any

import orjson

from bench.payloads import AGENCY_CODE

TARGET_BYTES = 1024
KEYS = 1000
SENT_NS_WIDTH = 19  # time.time_ns() has 19 digits until 2286

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["MaHoSo", "TrangThaiHoSo", "NgayCapNhat", "DonViXuLy", "sent_ns"],
    "properties": {
        "MaHoSo": {"type": "string", "pattern": "^[0-9A-Z.-]{5,40}$"},
        "TrangThaiHoSo": {"type": "integer", "minimum": 1, "maximum": 10},
        "NgayCapNhat": {"type": "string", "pattern": "^[0-9]{14}$"},  # yyyyMMddHHmmss
        "DonViXuLy": {
            "type": "object",
            "required": ["Ma", "Ten"],
            "properties": {
                "Ma": {
                    "type": "string",
                    "pattern": "^[0-9]{3}\\.[0-9]{2}\\.[0-9]{2}\\.[A-Z][0-9]{2}$",
                },
                "Ten": {"type": "string", "maxLength": 200},
            },
        },
        "NguoiXuLy": {"type": "string", "maxLength": 100},
        "NoiDungXuLy": {"type": "string", "maxLength": 2000},
        "sent_ns": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}

_NOTE = (
    "Hồ sơ đã được Bộ phận Một cửa tiếp nhận và chuyển phòng chuyên môn thụ lý; cán bộ đã kiểm "
    "tra thành phần hồ sơ, đối chiếu thông tin công dân với Cơ sở dữ liệu quốc gia về dân cư "
    "và cập nhật tiến độ giải quyết lên Cổng Dịch vụ công quốc gia theo quy định. "
) * 6


def _base() -> dict[str, Any]:
    document: dict[str, Any] = {
        "MaHoSo": "000.00.12.H12-241124-00000",
        "TrangThaiHoSo": 4,
        "NgayCapNhat": "20241124081500",
        "DonViXuLy": {"Ma": AGENCY_CODE, "Ten": "Sở Tài chính tỉnh Lai Châu"},
        "NguoiXuLy": "Lường Văn Xương",
        "NoiDungXuLy": "",
        "sent_ns": 10 ** (SENT_NS_WIDTH - 1),
    }
    room = TARGET_BYTES - len(orjson.dumps(document))
    document["NoiDungXuLy"] = _NOTE.encode()[: max(room, 0)].decode(errors="ignore").rstrip()
    return document


BASE = _base()


def key(n: int) -> str:
    return f"000.00.12.H12-241124-{n % KEYS:05d}"


def value(n: int, sent_ns: int) -> dict[str, Any]:
    """Message number `n` (its key cycles over KEYS dossiers; its status over 1-10)."""
    return {**BASE, "MaHoSo": key(n), "TrangThaiHoSo": n % 10 + 1, "sent_ns": sent_ns}


def encode(n: int, sent_ns: int) -> bytes:
    return orjson.dumps(value(n, sent_ns))


def batch_body(first: int, count: int, sent_ns: int) -> bytes:
    """A publish request: `{"messages": [{"value": …}, …]}` for messages first..first+count-1."""
    return orjson.dumps({"messages": [{"value": value(first + i, sent_ns)} for i in range(count)]})
