"""Credentials towards a provider: none, API key, HTTP basic, OAuth2 client credentials.

Static credentials become headers once, at construction. OAuth2 tokens are fetched from the
token endpoint (RFC 6749 §4.4, client authenticated with HTTP basic as §2.3.1 asks), cached until
shortly before they expire, and fetched by one caller while the others wait on a lock. A provider
that answers 401 to a cached token makes the connector `invalidate` it and try once more.

No object here shows a secret in its repr, and no error message quotes one.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import orjson

from connectors.errors import ConnectorError, UpstreamAuthFailed, UpstreamBadResponse
from connectors.http import Client, Reply
from connectors.status import error_for_status
from registry.models import ConnectorAuth
from registry.types import AuthType

DEFAULT_API_KEY_HEADER = "X-API-Key"
ISSUER = "the token endpoint"
DEFAULT_TOKEN_LIFETIME = 300.0  # when the token endpoint does not say (expires_in is optional)


class ProviderAuth(Protocol):
    """What a connector asks of its credentials."""

    @property
    def static_headers(self) -> Mapping[str, str]:
        """Lower-case names; merged into the connector's base headers once."""
        ...

    @property
    def refreshable(self) -> bool:
        """True: a 401 may be cured by `invalidate` and a new `headers` call."""
        ...

    async def headers(self, client: Client) -> Mapping[str, str]:
        """Headers that change over time (a bearer token); empty for static credentials."""
        ...

    def invalidate(self, used: Mapping[str, str]) -> None:
        """Forget the credentials sent in `used`, if they are still the current ones."""
        ...


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class StaticAuth:
    """None, API key or basic: a fixed set of headers."""

    refreshable = False

    def __init__(self, kind: AuthType, headers: Mapping[str, str]) -> None:
        self.kind = kind
        self.static_headers = dict(headers)

    async def headers(self, client: Client) -> Mapping[str, str]:
        return {}

    def invalidate(self, used: Mapping[str, str]) -> None:
        return None

    def __repr__(self) -> str:
        return f"StaticAuth({self.kind.value}, headers={sorted(self.static_headers)})"


class ClientCredentials:
    """OAuth2 client credentials with a token cache refreshed once under concurrency."""

    refreshable = True
    static_headers: Mapping[str, str] = {}

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._clock = clock
        # Per RFC 6749 §2.3.1 both parts are form-urlencoded before the basic encoding.
        self._token_request_headers = {
            "authorization": _basic(quote(client_id, safe=""), quote(client_secret, safe="")),
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded",
        }
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        self._token_request_body = urlencode(form).encode("ascii")
        self._header: dict[str, str] | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many tokens were requested (for metrics and tests)

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    async def headers(self, client: Client) -> Mapping[str, str]:
        current = self._header
        if current is not None and self._clock() < self._expires_at:
            return current
        async with self._lock:
            # Whoever waited on the lock finds the token the first caller fetched.
            if self._header is None or self._clock() >= self._expires_at:
                self._header = None
                self._header = await self._fetch(client)
            return self._header

    def invalidate(self, used: Mapping[str, str]) -> None:
        if self._header is not None and used.get("authorization") == self._header["authorization"]:
            self._header = None

    async def _fetch(self, client: Client) -> dict[str, str]:
        self.fetches += 1
        try:
            reply = await client.send(
                "POST",
                self.token_url,
                content=self._token_request_body,
                headers=self._token_request_headers,
                label=ISSUER,
                max_body=64 * 1024,
            )
        except ConnectorError as exc:
            exc.request_sent = False  # the provider never saw the call: safe to retry
            raise
        if reply.status != 200:
            raise self._refused(reply)
        token, lifetime = _parse_token(reply)
        margin = min(30.0, lifetime * 0.1)
        self._expires_at = self._clock() + lifetime - margin
        return {"authorization": f"Bearer {token}"}

    def _refused(self, reply: Reply) -> ConnectorError:
        if reply.status in (400, 401, 403):
            code = _token_error_code(reply)
            reason = f": {code}" if code else ""
            return UpstreamAuthFailed(
                f"{ISSUER} refused the client credentials (HTTP {reply.status}{reason})",
                provider_status=reply.status,
                request_sent=False,
            )
        exc = error_for_status(reply, ISSUER)
        exc.request_sent = False
        exc.body = None  # what a token endpoint says is not the provider's answer
        return exc


def _token_error_code(reply: Reply) -> str | None:
    try:
        data = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        return None
    code = data.get("error") if isinstance(data, dict) else None
    # Only the registered error codes (RFC 6749 §5.2) are short ASCII words; nothing else is echoed.
    if isinstance(code, str) and code.replace("_", "").isalpha() and len(code) <= 40:
        return code
    return None


def _parse_token(reply: Reply) -> tuple[str, float]:
    try:
        data: Any = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        data = None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise UpstreamBadResponse(f"{ISSUER} answered without an access_token", request_sent=False)
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise UpstreamBadResponse(
            f"{ISSUER} issued a token of type {str(token_type)[:20]!r}, not Bearer",
            request_sent=False,
        )
    expires_in = data.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():  # some servers send a string
        expires_in = int(expires_in)
    lifetime = (
        float(expires_in)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else DEFAULT_TOKEN_LIFETIME
    )
    return token, max(lifetime, 0.0)


def build_auth(config: ConnectorAuth) -> ProviderAuth:
    """The credentials object for a connector's auth settings."""
    secret = config.secret.get_secret_value() if config.secret is not None else ""
    if config.type is AuthType.NONE:
        return StaticAuth(config.type, {})
    if config.type is AuthType.API_KEY:
        header = (config.header or DEFAULT_API_KEY_HEADER).lower()
        return StaticAuth(config.type, {header: secret})
    if config.type is AuthType.BASIC:
        return StaticAuth(config.type, {"authorization": _basic(config.username or "", secret)})
    if config.type is AuthType.OAUTH2_CLIENT_CREDENTIALS:
        assert config.token_url is not None  # validated by ConnectorAuth
        assert config.client_id is not None
        return ClientCredentials(
            token_url=config.token_url,
            client_id=config.client_id,
            client_secret=secret,
            scope=config.scope,
        )
    raise ValueError(f"unsupported auth type {config.type!r}")
