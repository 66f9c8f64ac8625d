"""secrets at rest: connector credentials and webhook signing secrets sealed (AES-256-GCM)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 19:40:00

Seals what was stored in clear: `connector.secret`, `connector.tls_key` (0013), each item of
`subscription.secrets` and `token_signing_key.private_jwk` (0010), under
the first key of LGSP_SECRETS_KEY_FILE (the ring the hub attached to its engine; generated in
development when absent). `connector.secret` grows to 8000 characters, room for a sealed
4000-character secret. The downgrade opens them again.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from registry import sealing

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# SQLite rebuilds the table to change a column: it keeps AUTOINCREMENT (ids never reused, 0006).
NEVER_REUSED = {"sqlite_autoincrement": True}
CONNECTORS = sa.table(
    "connector",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("secret", sa.String()),
    sa.column("tls_key", sa.String()),
)
SUBSCRIPTIONS = sa.table(
    "subscription",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("secrets", sa.JSON()),
)

SIGNING_KEYS = sa.table(
    "token_signing_key",
    sa.column("id", sa.Integer()),
    sa.column("kid", sa.String()),
    sa.column("private_jwk", sa.String()),
)


def _ring() -> sealing.KeyRing:
    from gateway.db.sealing import ring_for_migration

    return ring_for_migration(op.get_bind().engine)


def _convert(change: Callable[[sealing.KeyRing, str, str], str]) -> None:
    """Apply `change(ring, value, context)` to every stored secret (the ring loaded only when
    there is one)."""
    bind = op.get_bind()
    ring: sealing.KeyRing | None = None
    for row in bind.execute(sa.select(CONNECTORS)).all():
        changed = {}
        if row.secret is not None:
            ring = ring or _ring()
            changed["secret"] = change(ring, row.secret, sealing.connector_context(row.name))
        if row.tls_key is not None:
            ring = ring or _ring()
            changed["tls_key"] = change(ring, row.tls_key, sealing.tls_key_context(row.name))
        if changed:
            bind.execute(sa.update(CONNECTORS).where(CONNECTORS.c.id == row.id).values(**changed))
    for row in bind.execute(sa.select(SIGNING_KEYS)).all():
        ring = ring or _ring()
        value = change(ring, row.private_jwk, sealing.signing_key_context(row.kid))
        bind.execute(
            sa.update(SIGNING_KEYS).where(SIGNING_KEYS.c.id == row.id).values(private_jwk=value)
        )
    for row in bind.execute(sa.select(SUBSCRIPTIONS)).all():
        if not row.secrets:
            continue
        ring = ring or _ring()
        context = sealing.subscription_context(row.name)
        values = [change(ring, value, context) for value in row.secrets]
        bind.execute(
            sa.update(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == row.id).values(secrets=values)
        )


def _seal(ring: sealing.KeyRing, value: str, context: str) -> str:
    return value if sealing.is_sealed(value) else ring.seal(value, context=context)


def _open(ring: sealing.KeyRing, value: str, context: str) -> str:
    return ring.open(value, context=context) if sealing.is_sealed(value) else value


def upgrade() -> None:
    with op.batch_alter_table("connector", schema=None, table_kwargs=NEVER_REUSED) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=4000),
            type_=sa.String(length=8000),
            existing_nullable=True,
        )
    _convert(_seal)


def downgrade() -> None:
    _convert(_open)
    with op.batch_alter_table("connector", schema=None, table_kwargs=NEVER_REUSED) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=8000),
            type_=sa.String(length=4000),
            existing_nullable=True,
        )
