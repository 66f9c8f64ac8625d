"""The hub's token-signing keys: made, rotated and pruned in the database, so that every worker
and replica signs and verifies with the same keys.

The newest key that is not retired signs; a retired key stays published (JWKS) so that tokens it
signed keep verifying, and is pruned at a later rotation once the longest token lifetime passed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import orjson
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlmodel import Session, col, select

from registry import revision, sealing
from registry.models import SigningKey
from registry.types import as_utc, utcnow

Alg = Literal["EdDSA", "ES256", "RS256"]
DEFAULT_ALG: Alg = "EdDSA"
TokenKey = OKPKey | ECKey | RSAKey


def _generate(alg: Alg) -> TokenKey:
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    return RSAKey.generate_key(2048, private=True)


def create_key(session: Session, *, alg: Alg = DEFAULT_ALG) -> SigningKey:
    """A new signing key, the signer from now on; older ones are retired (still published)."""
    key = _generate(alg)
    kid = key.thumbprint()
    now = utcnow()
    for old in session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))):
        old.retired_at = now
        session.add(old)
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    private = {**key.as_dict(private=True), "kid": kid, "alg": alg, "use": "sig"}
    # The private key is stored sealed (registry/sealing.py), like every secret at rest.
    sealed = sealing.ring_of(session).seal(
        orjson.dumps(private).decode(), context=sealing.signing_key_context(kid)
    )
    row = SigningKey(kid=kid, alg=alg, public_jwk=public, private_jwk=sealed)
    session.add(row)
    revision.bump(session)  # replicas reload: the new key signs and is published everywhere
    session.flush()
    return row


def rotate(session: Session, *, alg: Alg, token_lifetime: int) -> tuple[SigningKey, list[str]]:
    """A new signer; keys retired longer ago than the token lifetime are deleted (their tokens
    have all expired). The new key and the kids pruned."""
    revision.bump(session)  # first: the row lock serialises rotations across replicas
    cutoff = utcnow() - timedelta(seconds=token_lifetime)
    pruned = []
    for old in session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_not(None))):
        retired = as_utc(old.retired_at)
        if retired is not None and retired < cutoff:
            pruned.append(old.kid)
            session.delete(old)
    return create_key(session, alg=alg), pruned


def ensure_key(session: Session) -> None:
    """A hub with no signing key makes one (EdDSA) on start; workers starting together make one."""
    if session.exec(select(SigningKey.id).limit(1)).first() is not None:
        return
    revision.bump(session)  # takes the registry's row lock: one worker at a time past here
    if session.exec(select(SigningKey.id).limit(1)).first() is None:
        create_key(session)
    session.commit()


def private_key(row: SigningKey, ring: sealing.KeyRing) -> TokenKey:
    """The row's private key, opened (SealingError if it does not open)."""
    opened = ring.open(row.private_jwk, context=sealing.signing_key_context(row.kid))
    data: dict[str, Any] = orjson.loads(opened)
    if row.alg == "EdDSA":
        return OKPKey.import_key(data)
    if row.alg == "ES256":
        return ECKey.import_key(data)
    return RSAKey.import_key(data)


def load_keys(session: Session) -> tuple[SigningKey | None, list[SigningKey]]:
    """(the signer, every published key), newest first."""
    rows = list(session.exec(select(SigningKey).order_by(col(SigningKey.id).desc())))
    signer = next((r for r in rows if r.retired_at is None), None)
    return signer, rows
