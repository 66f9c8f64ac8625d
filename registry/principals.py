"""Management principals: keys with a role (administrator, integrator, auditor)."""

from __future__ import annotations

from sqlmodel import Session, select

from registry import keys
from registry.models import Principal, PrincipalCreate
from registry.types import Role, utcnow


def authenticate(session: Session, *, presented: str, pepper: str) -> Principal | None:
    """The live principal holding this key, or None (same work whether or not the id exists)."""
    parsed = keys.parse_key(presented)
    if parsed is None:
        return None
    key_id, secret = parsed
    principal = session.exec(select(Principal).where(Principal.key_id == key_id)).first()
    stored = principal.key_hash if principal else "0" * 64
    ok = keys.secret_matches(secret, stored, pepper=pepper)
    if principal is None or not ok or principal.revoked_at is not None:
        return None
    return principal


def create_principal(
    *, session: Session, data: PrincipalCreate, pepper: str
) -> tuple[Principal, str]:
    """A new principal and its key (the key is returned once and stored only hashed)."""
    issued = keys.issue_key(pepper=pepper)
    principal = Principal(**data.model_dump(), key_id=issued.key_id, key_hash=issued.key_hash)
    session.add(principal)
    session.flush()
    return principal, issued.key


def revoke_principal(*, session: Session, principal: Principal) -> Principal:
    principal.revoked_at = utcnow()
    session.add(principal)
    session.flush()
    return principal


def ensure_bootstrap(session: Session, *, key: str, pepper: str) -> Principal | None:
    """Create the configured first administrator if its key id is not known yet."""
    parsed = keys.parse_key(key)
    if parsed is None:
        raise ValueError("LGSP_BOOTSTRAP_ADMIN_KEY must look like lgsp_<12 chars>.<43 chars>")
    key_id, secret = parsed
    if session.exec(select(Principal).where(Principal.key_id == key_id)).first():
        return None
    principal = Principal(
        name=f"bootstrap-{key_id[:6]}",
        role=Role.ADMINISTRATOR,
        key_id=key_id,
        key_hash=keys.hash_secret(secret, pepper=pepper),
    )
    session.add(principal)
    session.commit()
    return principal
