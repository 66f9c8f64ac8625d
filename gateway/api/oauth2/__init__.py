"""The OAuth2 authorization server of the hub: the token endpoint (client credentials), its
published keys and metadata, and introspection and revocation for administrators.

    POST /oauth2/token                          client credentials -> access token (RFC 6749 §4.4)
    GET  /.well-known/jwks.json                 the keys that verify access tokens (RFC 7517)
    GET  /.well-known/oauth-authorization-server    server metadata (RFC 8414)
    POST /oauth2/introspect                     is this token active? (RFC 7662), management key
    POST /oauth2/revoke                         revoke a token (RFC 7009), administrator key
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, col

from audit.changes import record_change
from gateway.api.admin.context import database_problem
from gateway.api.deps import (
    Actor,
    RequestIdDep,
    RuntimeDep,
    WritesRegistry,
    require_roles,
)
from gateway.api.oauth2 import assertions, token
from gateway.api.oauth2.errors import NO_STORE, OAuth2Error, read_form
from gateway.exchange import tokens
from gateway.problems import Problem
from registry import revision, sealing
from registry.jwks import ASSERTION_ALGS, SIGNING_ALGS
from registry.models import RevokedToken
from registry.types import Role, utcnow

log = logging.getLogger(__name__)
router = APIRouter(tags=["oauth2"])
_JWKS_CACHE = assertions.JwksCache()

IntrospectorDep = Annotated[Actor, Depends(require_roles(Role.ADMINISTRATOR, Role.AUDITOR))]
RevokerDep = Annotated[Actor, Depends(require_roles(Role.ADMINISTRATOR))]


def _json(
    body: dict[str, Any], headers: dict[str, str] | None = None, *, status: int = 200
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


@router.post("/oauth2/token", response_class=Response)
async def issue_token(request: Request, runtime: RuntimeDep) -> Response:
    """Get an access token with the client-credentials grant (form body, RFC 6749 §4.4)."""
    try:
        form = await read_form(request)
        return await token.issue(request, runtime, form, _JWKS_CACHE)
    except OAuth2Error as exc:
        return exc.response()
    except SQLAlchemyError as exc:  # logged without its statement: it may hold a client's jti
        log.warning("token endpoint: the database did not answer (%s)", type(exc).__name__)
        return _json(
            {
                "error": "temporarily_unavailable",
                "error_description": "the hub's database did not answer; try again",
            },
            {**NO_STORE, "retry-after": "1"},
            status=503,
        )
    except sealing.SealingError as exc:  # the key file lost the key that sealed the signer
        log.error("token endpoint: the signing key does not open: %s", exc)
        return _json(
            {
                "error": "temporarily_unavailable",
                "error_description": "the hub cannot open its signing key; ask its operator",
            },
            dict(NO_STORE),
            status=503,
        )


@router.get("/.well-known/jwks.json", response_class=Response)
def jwks(runtime: RuntimeDep) -> Response:
    """The public keys that verify the hub's access tokens, by kid (newest first)."""
    body = {"keys": list(runtime.snapshot.tokens.jwks)}
    return _json(body, {"cache-control": "public, max-age=60"})


@router.get("/.well-known/oauth-authorization-server", response_class=Response)
def metadata(runtime: RuntimeDep) -> Response:
    """The authorization server's metadata (RFC 8414)."""
    issuer = runtime.settings.token_issuer
    base = issuer.rstrip("/")
    scopes = sorted(
        {f"{name}:{version}" for name, version in runtime.snapshot.services}
        | {f"{name}:*" for name, _ in runtime.snapshot.services}
    )
    body = {
        "issuer": issuer,
        "token_endpoint": f"{base}/oauth2/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [token.GRANT_TYPE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": ["bearer"],
        "scopes_supported": scopes,
        "access_token_signing_alg_values_supported": list(SIGNING_ALGS),
    }
    return _json(body, {"cache-control": "public, max-age=60"})


@router.post("/oauth2/introspect", response_class=Response)
async def introspect(request: Request, runtime: RuntimeDep, _: IntrospectorDep) -> Response:
    """Whether a token is active, and its claims if so (RFC 7662; a management key)."""
    try:
        form = await read_form(request)
    except OAuth2Error as exc:
        return exc.response()
    presented = form.get("token", "")
    if not presented:
        return OAuth2Error("invalid_request", "token is missing").response()
    verifier = tokens.Verifier.from_settings(runtime.settings)
    state = runtime.snapshot.tokens
    try:
        tokens.check(f"Bearer {presented}", state, verifier, None)
        claims = tokens.verified_claims(presented, state)
    except Problem:
        return _json({"active": False}, dict(NO_STORE))
    keep = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")
    body = {"active": True, "token_type": "Bearer", **{k: claims[k] for k in keep if k in claims}}
    return _json(body, dict(NO_STORE))


def _revoke(engine: Engine, entry: RevokedToken, actor: Actor, rid: str | None) -> None:
    with Session(engine) as session:
        if session.get(RevokedToken, entry.jti) is not None:
            return
        # Tokens past their expiry are refused anyway: their ids need not be kept.
        session.execute(delete(RevokedToken).where(col(RevokedToken.expires_at) < utcnow()))
        session.add(entry)
        revision.bump(session)  # every replica's snapshot learns the revoked id
        record_change(
            session,
            actor=actor.name,
            action="revoke_token",
            object_type="oauth_client",
            object_key=entry.client_id,
            details={"changes": {"jti": [None, entry.jti]}},
            request_id=rid,
        )
        session.commit()


@router.post("/oauth2/revoke", response_class=Response, dependencies=[WritesRegistry])
async def revoke(
    request: Request, runtime: RuntimeDep, actor: RevokerDep, rid: RequestIdDep
) -> Response:
    """Revoke an access token: refused everywhere until it expires (RFC 7009; administrator)."""
    try:
        form = await read_form(request)
    except OAuth2Error as exc:
        return exc.response()
    presented = form.get("token", "")
    if not presented:
        return OAuth2Error("invalid_request", "token is missing").response()
    try:
        claims = tokens.verified_claims(presented, runtime.snapshot.tokens)
    except Problem:  # RFC 7009 §2.2: a token that is not valid needs no revoking
        return Response(status_code=200)
    jti, exp, client_id = claims.get("jti"), claims.get("exp"), claims.get("client_id")
    if isinstance(jti, str) and isinstance(exp, int) and isinstance(client_id, str):
        entry = RevokedToken(
            jti=jti[:64], client_id=client_id[:40], expires_at=datetime.fromtimestamp(exp, UTC)
        )
        try:
            await asyncio.to_thread(_revoke, runtime.engine, entry, actor, rid)
        except (IntegrityError, OperationalError, DataError) as exc:
            raise database_problem(exc, request.url.path) from None
    return Response(status_code=200)
