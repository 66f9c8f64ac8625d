"""An OAuth2 client-credentials token endpoint (RFC 6749 §4.4) with opaque in-memory tokens."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.web import Problem

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str, *, basic: bool = False) -> Response:
    headers = dict(_NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="ho-tich"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic_client(header: str | None) -> tuple[str, str] | None:
    """Client id and secret from HTTP basic auth (form-urlencoded first, per RFC 6749 §2.3.1)."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote_plus(user), unquote_plus(password)) if sep else None


class TokenIssuer:
    """Issues bearer tokens to one registered client and checks them until they expire."""

    def __init__(
        self, *, client_id: str, client_secret: str, ttl: float, clock: Callable[[], float]
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.clock = clock
        self.issued = 0
        self._expiry: dict[str, float] = {}

    def _known_client(self, client_id: str, secret: str) -> bool:
        same_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        same_secret = hmac.compare_digest(secret.encode(), self.client_secret.encode())
        return same_id and same_secret

    async def token_endpoint(self, request: Request) -> Response:
        """Client-credentials grant: form body, client authenticated by body or basic auth."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "use application/x-www-form-urlencoded")
        try:
            form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return _oauth_error(400, "invalid_request", "the form is not UTF-8")
        if any(len(values) > 1 for values in form.values()):
            return _oauth_error(400, "invalid_request", "a parameter is repeated")
        fields = {key: values[0] for key, values in form.items()}
        basic = _basic_client(request.headers.get("authorization"))
        if basic is not None and ("client_id" in fields and fields["client_id"] != basic[0]):
            return _oauth_error(400, "invalid_request", "client_id differs from basic auth")
        if basic is not None and "client_secret" in fields:
            return _oauth_error(400, "invalid_request", "use one client authentication method")
        client_id, secret = basic or (fields.get("client_id", ""), fields.get("client_secret", ""))
        if not self._known_client(client_id, secret):
            return _oauth_error(401, "invalid_client", "unknown client or bad secret", basic=True)
        if fields.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
        token = secrets.token_urlsafe(32)
        self._expiry[token] = self.clock() + self.ttl
        self.issued += 1
        body: dict[str, str | int] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": math.ceil(self.ttl),
        }
        if fields.get("scope"):
            body["scope"] = fields["scope"]
        return JSONResponse(body, headers=_NO_STORE)

    def require_bearer(self, authorization: str | None) -> None:
        """Raise a 401 problem unless `authorization` carries a live token of ours."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(
                401,
                "Unauthorized",
                "a Bearer token from /oauth/token is required",
                headers={"WWW-Authenticate": 'Bearer realm="ho-tich"'},
            )
        expiry = self._expiry.get(token.strip())
        if expiry is None or self.clock() >= expiry:
            self._expiry.pop(token.strip(), None)
            raise Problem(
                401,
                "Unauthorized",
                "the access token is unknown or expired",
                headers={"WWW-Authenticate": 'Bearer realm="ho-tich", error="invalid_token"'},
            )
