"""POST /oauth2/token: the client-credentials grant (RFC 6749 §4.4) with client_secret_basic,
client_secret_post or private_key_jwt (RFC 7523), answering an RFC 9068 access token (a JWT
signed with the hub's current key) whose scope names the services and versions granted."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson
from fastapi import Request
from fastapi.responses import Response
from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.api.oauth2 import assertions
from gateway.api.oauth2.errors import NO_STORE, OAuth2Error
from gateway.exchange.tokens import ACCESS_TOKEN_TYPE
from gateway.runtime import Runtime
from registry import keys, sealing, signing_keys
from registry.jwks import REGISTRY
from registry.models import (
    PRIVATE_KEY_JWT,
    ConsumedAssertion,
    Consumer,
    Grant,
    OAuthClient,
    SigningKey,
)
from registry.types import GrantStatus, as_utc, utcnow

GRANT_TYPE = "client_credentials"
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
SCOPE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?:(?:v[1-9][0-9]{0,3}|\*)$")
_NO_HASH = "0" * 64
_SIGNERS: dict[str, signing_keys.TokenKey] = {}  # kid -> private key, parsed once


@dataclass(frozen=True, slots=True)
class Presented:
    method: str  # client_secret_basic | client_secret_post | private_key_jwt
    client_id: str
    credential: str  # the secret or the assertion


@dataclass(frozen=True, slots=True)
class Found:
    client: OAuthClient
    consumer: Consumer
    granted: frozenset[str]
    signer: SigningKey | None


def _basic(value: str) -> Presented:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise OAuth2Error(
            "invalid_client", "the Basic credentials are not base64", status=401, basic=True
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuth2Error(
            "invalid_client", "Basic credentials must be client_id:client_secret", status=401,
            basic=True,
        )  # fmt: skip
    # RFC 6749 §2.3.1: both parts are form-encoded before base64.
    return Presented("client_secret_basic", unquote_plus(client_id), unquote_plus(secret))


def _unverified_subject(assertion: str) -> str:
    try:
        claims = orjson.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError, TypeError):
        raise OAuth2Error(
            "invalid_client", "client_assertion is not a JWS in compact form", status=401
        ) from None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not subject:
        raise OAuth2Error("invalid_client", "client_assertion has no sub", status=401)
    return subject


def presented(request: Request, form: dict[str, str]) -> Presented:
    """How the client authenticates (exactly one way, RFC 6749 §2.3)."""
    who = _presented(request, form)
    if not CLIENT_ID_RE.fullmatch(who.client_id):  # never a hub's: no lookup for it
        raise OAuth2Error(
            "invalid_client",
            "unknown client",
            status=401,
            basic=who.method == "client_secret_basic",
        )
    return who


def _presented(request: Request, form: dict[str, str]) -> Presented:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    ways = [
        name
        for name, used in (
            ("HTTP Basic", scheme.lower() == "basic"),
            ("client_secret", "client_secret" in form),
            ("client_assertion", "client_assertion" in form),
        )
        if used
    ]
    if len(ways) > 1:
        raise OAuth2Error(
            "invalid_request", f"use one way to authenticate the client, not {' and '.join(ways)}"
        )
    if authorization and scheme.lower() != "basic":
        raise OAuth2Error(
            "invalid_client", "the Authorization header must use Basic", status=401, basic=True
        )
    if ways == ["HTTP Basic"]:
        return _basic(value)
    if ways == ["client_secret"]:
        client_id = form.get("client_id", "")
        if not client_id:
            raise OAuth2Error("invalid_request", "client_secret needs client_id in the body")
        return Presented("client_secret_post", client_id, form["client_secret"])
    if ways == ["client_assertion"]:
        if form.get("client_assertion_type") != assertions.ASSERTION_TYPE:
            raise OAuth2Error(
                "invalid_request", f"client_assertion_type must be {assertions.ASSERTION_TYPE}"
            )
        assertion = form["client_assertion"]
        client_id = form.get("client_id") or _unverified_subject(assertion)
        return Presented(PRIVATE_KEY_JWT, client_id, assertion)
    raise OAuth2Error(
        "invalid_client",
        "authenticate the client: HTTP Basic, client_id and client_secret in the body, or a "
        "client_assertion (private_key_jwt)",
        status=401,
        basic=True,
    )


def _lookup(engine: Engine, client_id: str) -> Found | None:
    with Session(engine) as session:
        client = session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
        if client is None:
            return None
        consumer = session.get(Consumer, client.consumer_id)
        if consumer is None:
            return None
        now = utcnow()
        granted: set[str] = set()
        query = select(Grant).where(
            Grant.consumer == consumer.name, Grant.status == GrantStatus.APPROVED
        )
        for grant in session.exec(query):
            start, end = as_utc(grant.valid_from), as_utc(grant.valid_until)
            if (start is None or start <= now) and (end is None or now < end):
                granted.update(f"{grant.service}:{v}" for v in grant.versions)
        signer, _ = signing_keys.load_keys(session)
        session.expunge_all()
        return Found(client, consumer, frozenset(granted), signer)


def _consume(engine: Engine, client_id: str, assertion: assertions.Assertion) -> bool:
    """Record the assertion's jti; False if it was used before (a replay)."""
    with Session(engine) as session:
        session.execute(
            delete(ConsumedAssertion).where(col(ConsumedAssertion.expires_at) < utcnow())
        )
        session.add(
            ConsumedAssertion(
                client_id=client_id, jti=assertion.jti, expires_at=assertion.expires_at
            )
        )
        try:
            session.commit()
        except IntegrityError:
            return False
    return True


def _scope(requested: str | None, granted: frozenset[str]) -> list[str]:
    if not requested or not requested.strip():
        return sorted(granted)
    items = requested.split()
    bad = [i for i in items if not SCOPE_RE.fullmatch(i)]
    if bad:
        raise OAuth2Error(
            "invalid_scope", f"{bad[0][:100]!r} is not a scope: use service:version or service:*"
        )
    for item in items:
        service = item.split(":")[0]
        if item not in granted and f"{service}:*" not in granted:
            raise OAuth2Error(
                "invalid_scope", f"the consumer holds no approved grant in force for {item}"
            )
    return list(dict.fromkeys(items))


def _sign(signer: SigningKey, claims: dict[str, Any], ring: sealing.KeyRing) -> str:
    key = _SIGNERS.get(signer.kid)
    if key is None:
        key = _SIGNERS[signer.kid] = signing_keys.private_key(signer, ring)
    header = {"alg": signer.alg, "kid": signer.kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(header, claims, key, algorithms=[signer.alg], registry=REGISTRY)


def audiences(request: Request, issuer: str) -> list[str]:
    """What a client assertion's aud may say: the issuer or the token endpoint's URL."""
    here = str(request.url.replace(query=None, fragment=None))
    return list(dict.fromkeys([issuer, issuer.rstrip("/") + "/oauth2/token", here]))


async def issue(
    request: Request, runtime: Runtime, form: dict[str, str], cache: assertions.JwksCache
) -> Response:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuth2Error("invalid_request", "grant_type is missing")
    if grant_type != GRANT_TYPE:
        raise OAuth2Error(
            "unsupported_grant_type", f"only grant_type={GRANT_TYPE} is supported here"
        )
    who = presented(request, form)
    settings = runtime.settings
    found = await asyncio.to_thread(_lookup, runtime.engine, who.client_id)
    basic = who.method == "client_secret_basic"
    if who.method != PRIVATE_KEY_JWT:
        stored = found.client.secret_hash if found else None
        if not keys.secret_matches(who.credential, stored or _NO_HASH, pepper=settings.key_pepper):
            raise OAuth2Error(
                "invalid_client", "unknown client or wrong secret", status=401, basic=basic
            )
    if found is None:
        raise OAuth2Error("invalid_client", "unknown client", status=401, basic=basic)
    client = found.client
    if client.token_endpoint_auth_method != who.method:
        raise OAuth2Error(
            "invalid_client",
            f"this client authenticates with {client.token_endpoint_auth_method}",
            status=401,
            basic=basic,
        )
    if who.method == PRIVATE_KEY_JWT:
        assertion = await assertions.verify(
            who.credential,
            client_id=client.client_id,
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            audiences=audiences(request, settings.token_issuer),
            cache=cache,
        )
        if not await asyncio.to_thread(_consume, runtime.engine, client.client_id, assertion):
            raise OAuth2Error(
                "invalid_client", "client_assertion was used before (its jti)", status=401
            )
    if client.revoked_at is not None:
        raise OAuth2Error("invalid_client", "this client is revoked", status=401, basic=basic)
    if not found.consumer.active:
        raise OAuth2Error("unauthorized_client", f"the consumer {found.consumer.name} is disabled")
    scope = _scope(form.get("scope"), found.granted)
    if found.signer is None:  # made on start; only a database emptied behind the hub's back
        raise OAuth2Error("invalid_request", "the hub has no signing key; ask its operator")
    now = int(time.time())
    lifetime = settings.token_lifetime_seconds
    claims = {
        "iss": settings.token_issuer,
        "sub": found.consumer.name,
        "aud": settings.audience,
        "client_id": client.client_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scope),
    }
    body = {
        "access_token": _sign(found.signer, claims, sealing.ring_of(runtime.engine)),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": claims["scope"],
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=dict(NO_STORE))
