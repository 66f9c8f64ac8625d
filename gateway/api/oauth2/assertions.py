"""private_key_jwt (RFC 7523 §2.2, §3): a client proves itself with a JWT it signed with a key it
registered, inline or at its JWKS URL (fetched with a deadline and cached)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from gateway.api.oauth2.errors import OAuth2Error
from registry.jwks import ASSERTION_ALGS, REGISTRY, check_public_jwks
from registry.types import RuleError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWKS_TIMEOUT = httpx.Timeout(3.0)
JWKS_MAX_BYTES = 65_536
JWKS_CACHE_SECONDS = 300.0
JWKS_REFRESH_SECONDS = 10.0  # an unknown kid refetches, at most this often per URL
MAX_ASSERTION_SECONDS = 3600  # an assertion living longer is refused (its jti is kept that long)


@dataclass(frozen=True, slots=True)
class Assertion:
    jti: str
    expires_at: datetime


def _refused(description: str) -> OAuth2Error:
    return OAuth2Error("invalid_client", description, status=401)


class JwksCache:
    """Consumers' key sets by URL, each kept a few minutes."""

    def __init__(self) -> None:
        self._sets: dict[str, tuple[float, KeySet]] = {}

    async def get(self, uri: str, *, fresher_than: float = JWKS_CACHE_SECONDS) -> KeySet:
        found = self._sets.get(uri)
        if found is not None and time.monotonic() - found[0] < fresher_than:
            return found[1]
        keys = await _fetch(uri)
        self._sets[uri] = (time.monotonic(), keys)
        return keys


async def _fetch(uri: str) -> KeySet:
    try:
        async with (
            httpx.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", uri, headers={"accept": "application/json"}) as answer,
        ):
            if answer.status_code != 200:
                raise _refused(f"the client's jwks_uri answered HTTP {answer.status_code}")
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise _refused(f"the client's JWK set exceeds {JWKS_MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise _refused(f"the client's jwks_uri could not be read ({type(exc).__name__})") from None
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise RuleError("not a JSON object", at="jwks")
        return check_public_jwks(document)
    except (orjson.JSONDecodeError, RuleError):
        raise _refused("the client's jwks_uri does not hold a usable JWK set") from None


async def verify(
    assertion: str,
    *,
    client_id: str,
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    audiences: list[str],
    cache: JwksCache,
) -> Assertion:
    """The assertion's jti and expiry when it is valid for `client_id`, else invalid_client."""
    try:
        header = jws.extract_compact(assertion.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise _refused("client_assertion is not a JWS in compact form") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ASSERTION_ALGS:
        raise _refused(
            f"client_assertion alg {alg!r} is not accepted ({', '.join(ASSERTION_ALGS)})"
        )
    if kid is not None and not isinstance(kid, str):
        raise _refused("client_assertion kid must be a string")
    if jwks is not None:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    elif jwks_uri is not None:
        keys = await cache.get(jwks_uri)
        if kid is not None and kid not in {k.kid for k in keys}:  # the client rotated: look again
            keys = await cache.get(jwks_uri, fresher_than=JWKS_REFRESH_SECONDS)
    else:
        raise _refused("the client has no registered keys")
    try:
        key = keys.get_by_kid(kid)
    except JoseError:
        raise _refused(f"client_assertion kid {kid!r} names none of the client's keys") from None
    try:
        decoded = jwt.decode(assertion, key, algorithms=[alg], registry=REGISTRY)
    except (JoseError, ValueError, TypeError):
        raise _refused("client_assertion signature is not valid") from None
    rules = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": client_id},
        sub={"essential": True, "value": client_id},
        aud={"essential": True, "values": audiences},
        exp={"essential": True},
        jti={"essential": True},
    )
    claims = decoded.claims
    try:
        rules.validate(claims)
    except ExpiredTokenError:
        raise _refused("client_assertion has expired") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        raise _refused(
            f"client_assertion claim {exc.claim} is missing or wrong (iss and sub must be the "
            f"client_id; aud one of {', '.join(audiences)})"
        ) from None
    except JoseError:
        raise _refused("client_assertion claims are not valid") from None
    exp, jti = claims["exp"], claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 200 or not jti.isprintable():
        raise _refused("client_assertion jti must be 1 to 200 printable characters")
    if not isinstance(exp, int) or exp > time.time() + MAX_ASSERTION_SECONDS + 60:
        raise _refused(f"client_assertion must expire within {MAX_ASSERTION_SECONDS} seconds")
    return Assertion(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC))
