"""What the data plane needs to check a bearer token without a database read: the published
signing keys by kid, the OAuth2 clients by id, and the ids of revoked tokens still alive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlmodel import Session, col, select

from registry.models import Consumer, OAuthClient, RevokedToken, SigningKey
from registry.types import utcnow

PublicKey = OKPKey | ECKey | RSAKey
_KEY_TYPES: dict[str, type[PublicKey]] = {"EdDSA": OKPKey, "ES256": ECKey, "RS256": RSAKey}


@dataclass(frozen=True, slots=True)
class ClientEntry:
    client_id: str
    consumer: str
    agency_code: str
    revoked: bool
    active: bool  # the consumer's


@dataclass(frozen=True, slots=True)
class TokenState:
    keys: dict[str, tuple[str, PublicKey]] = field(default_factory=dict)  # kid -> (alg, key)
    clients: dict[str, ClientEntry] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()  # jtis
    jwks: tuple[dict[str, Any], ...] = ()  # the public keys as published, newest first
    # Tokens whose signature this snapshot's keys verified, with their claims: a signature check
    # costs far more than the rest of a call's checks, and a client sends the same token for
    # minutes. Per snapshot, so a key that is no longer published verifies nothing any more;
    # the claims (exp, client, revocation) are still checked on every call.
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_tokens(session: Session, consumers: dict[int | None, Consumer]) -> TokenState:
    keys: dict[str, tuple[str, PublicKey]] = {}
    rows = list(session.exec(select(SigningKey).order_by(col(SigningKey.id).desc())))
    for row in rows:
        kind = _KEY_TYPES.get(row.alg)
        if kind is not None:
            keys[row.kid] = (row.alg, kind.import_key(row.public_jwk))
    clients: dict[str, ClientEntry] = {}
    for client in session.exec(select(OAuthClient)):
        consumer = consumers.get(client.consumer_id)
        if consumer is None:
            continue
        clients[client.client_id] = ClientEntry(
            client_id=client.client_id,
            consumer=consumer.name,
            agency_code=consumer.agency_code,
            revoked=client.revoked_at is not None,
            active=consumer.active,
        )
    alive = select(RevokedToken.jti).where(col(RevokedToken.expires_at) > utcnow())
    return TokenState(
        keys=keys,
        clients=clients,
        revoked=frozenset(session.exec(alive)),
        jwks=tuple(row.public_jwk for row in rows),
    )
