"""Bearer access tokens on the data plane and the publish endpoint: RFC 9068 JWTs the hub
signed, checked against the in-memory snapshot (keys by kid, clients, revoked token ids) with no
database read, and refused as RFC 6750 says (401 invalid_token, 403 insufficient_scope)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from gateway.exchange.calls import Call
from gateway.problems import Problem
from gateway.runtime.tokens import TokenState
from gateway.settings import Settings
from registry.jwks import REGISTRY, SIGNING_ALGS

REALM = "lgsp"
VERIFIED_CACHE = 4096  # tokens whose signature was verified, kept per snapshot
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1  # noqa: S105 - a media type, not a secret


@dataclass(frozen=True, slots=True)
class Verifier:
    """The claims every token must carry for this hub."""

    issuer: str
    audience: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier:
        return cls(issuer=settings.token_issuer, audience=settings.audience)


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """A consumer calling with an access token."""

    consumer: str
    agency_code: str
    client_id: str
    scopes: frozenset[str]

    def covers(self, service: str, version: str) -> bool:
        return f"{service}:{version}" in self.scopes or f"{service}:*" in self.scopes


def challenge(error: str | None = None, description: str | None = None, **extra: str) -> str:
    """A WWW-Authenticate value (RFC 6750 §3)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description.replace(chr(34), chr(39))}"')
    parts += [f'{k}="{v}"' for k, v in extra.items()]
    return "Bearer " + ", ".join(parts)


def _invalid(kind: str, title: str, detail: str) -> Problem:
    return Problem(
        401,
        kind,
        title,
        detail,
        headers={"www-authenticate": challenge("invalid_token", detail)},
    )


@functools.cache
def _rules(issuer: str, audience: str) -> jwt.JWTClaimsRegistry:
    """The claims an access token of this hub must carry (stateless: made once)."""
    return jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )


def verified_claims(token: str, state: TokenState) -> dict[str, Any]:
    """The claims of a token this hub signed with a key it publishes (signature and typ only),
    or a 401 problem. The claims returned are shared: never change them."""
    cached = state.verified.get(token)
    if cached is not None:
        return cached
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise _invalid("invalid-token", "Invalid token", "the token is not a JWS") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in SIGNING_ALGS:
        raise _invalid(
            "invalid-token",
            "Invalid token",
            f"tokens signed with alg {alg!r} are not accepted ({', '.join(SIGNING_ALGS)})",
        )
    known = state.keys.get(kid) if isinstance(kid, str) else None
    if known is None or known[0] != alg:
        raise _invalid(
            "invalid-token",
            "Invalid token",
            "the token's kid names no key of this hub (see /.well-known/jwks.json)",
        )
    try:
        decoded = jwt.decode(token, known[1], algorithms=[alg], registry=REGISTRY)
    except (JoseError, ValueError, TypeError):
        detail = "the token's signature is not valid"
        raise _invalid("invalid-token", "Invalid token", detail) from None
    if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
        raise _invalid("invalid-token", "Invalid token", "the token is not an access token (typ)")
    claims = dict(decoded.claims)
    if len(state.verified) >= VERIFIED_CACHE:
        state.verified.clear()  # simple bound: at worst each live token is verified once more
    state.verified[token] = claims
    return claims


def check(
    authorization: str, state: TokenState, verifier: Verifier, call: Call | None
) -> TokenCaller:
    """The caller an `Authorization: Bearer` header names, or a 401/403 problem saying why not."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or token.count(".") != 2:
        raise Problem(
            401,
            "invalid-authorization",
            "Malformed Authorization header",
            "send `Authorization: Bearer <access token>` (a token from POST /oauth2/token) or "
            "the consumer's API key in X-API-Key",
            headers={"www-authenticate": challenge("invalid_request", "malformed header")},
        )
    claims = verified_claims(token, state)
    try:
        _rules(verifier.issuer, verifier.audience).validate(claims)
    except ExpiredTokenError:
        raise _invalid("expired-token", "Expired token", "the token has expired") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        detail = f"the token's {exc.claim} is missing or malformed"
        if exc.claim in ("iss", "aud"):
            detail = (
                f"the token's {exc.claim} is not this hub's (iss {verifier.issuer}, "
                f"aud {verifier.audience})"
            )
        raise _invalid("invalid-token", "Invalid token", detail) from None
    except JoseError:
        detail = "the token's claims are not valid"
        raise _invalid("invalid-token", "Invalid token", detail) from None
    client = state.clients.get(str(claims["client_id"]))
    if client is None or client.consumer != claims["sub"]:
        raise _invalid("invalid-token", "Invalid token", "the token's client is unknown")
    if call is not None:
        call.consumer = client.consumer
        call.agency = client.agency_code
    if client.revoked:
        raise _invalid("revoked-client", "Revoked client", "the token's client has been revoked")
    if claims["jti"] in state.revoked:
        raise _invalid("revoked-token", "Revoked token", "this token has been revoked")
    if not client.active:
        raise Problem(
            403,
            "consumer-disabled",
            "Consumer disabled",
            f"the consumer {client.consumer} is disabled",
        )
    scope = claims.get("scope")
    return TokenCaller(
        consumer=client.consumer,
        agency_code=client.agency_code,
        client_id=client.client_id,
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )


def require_scope(caller: TokenCaller, service: str, version: str) -> None:
    """403 insufficient_scope unless the token's scope covers the service's version."""
    if caller.covers(service, version):
        return
    needed = f"{service}:{version}"
    detail = f"the token's scope does not cover {needed}; ask for it at POST /oauth2/token"
    raise Problem(
        403,
        "insufficient-scope",
        "Insufficient scope",
        detail,
        headers={"www-authenticate": challenge("insufficient_scope", detail, scope=needed)},
    )
