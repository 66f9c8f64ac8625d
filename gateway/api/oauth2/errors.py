"""OAuth2 errors (RFC 6749 §5.2): the token endpoint answers them in the OAuth2 format, which
clients' libraries parse, rather than as problem documents; and the form bodies it reads."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

MAX_FORM_BYTES = 65_536
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
]


class OAuth2Error(Exception):
    def __init__(
        self, error: ErrorCode, description: str, *, status: int = 400, basic: bool = False
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic = basic  # the client tried HTTP Basic: 401 with its challenge (§5.2)

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.basic:
            headers["www-authenticate"] = 'Basic realm="lgsp", charset="UTF-8"'
        body = {"error": self.error, "error_description": self.description}
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            media_type="application/json",
            headers=headers,
        )


async def read_form(request: Request) -> dict[str, str]:
    """The application/x-www-form-urlencoded body; a parameter sent twice is refused (§3.2)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise OAuth2Error("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuth2Error("invalid_request", f"the body exceeds {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuth2Error("invalid_request", "the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuth2Error("invalid_request", f"the parameter {name} is sent more than once")
        if "\x00" in value or "\x00" in name:
            raise OAuth2Error("invalid_request", f"the parameter {name} holds a NUL character")
        form[name] = value
    return form
