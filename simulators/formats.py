"""Date and time formats used on the wire (yyyyMMdd, yyyyMMddHHmmss in Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_DATE = re.compile(r"[0-9]{8}")
_TIMESTAMP = re.compile(r"[0-9]{14}")


def parse_date(value: object) -> date | None:
    """A `yyyyMMdd` string as a date, or None when it is not one."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None


def format_date(value: date) -> str:
    return value.strftime("%Y%m%d")


def is_timestamp(value: object) -> bool:
    """Whether `value` is a valid `yyyyMMddHHmmss` string."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def format_timestamp(value: datetime) -> str:
    return value.astimezone(VIETNAM).strftime("%Y%m%d%H%M%S")


def now_in_vietnam() -> datetime:
    return datetime.now(VIETNAM)


def add_working_days(start: datetime, days: int) -> datetime:
    """`start` moved forward by `days` Monday-to-Friday days (public holidays ignored)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current
