"""Settings of a REST connector (JSON over HTTP)."""

from __future__ import annotations

from connectors.config import HttpConfig

JSON_MEDIA_TYPES = ("application/json", "application/problem+json")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(media_type: str) -> bool:
    """True for application/json and any +json structured syntax (RFC 6839)."""
    return media_type in JSON_MEDIA_TYPES or media_type.endswith("+json")


RestConfig = HttpConfig
