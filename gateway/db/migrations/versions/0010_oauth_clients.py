"""OAuth2 clients of consumers, the hub's token-signing keys, consumed client-assertion ids and
revoked access tokens

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column(
            "token_endpoint_auth_method",
            sqlmodel.sql.sqltypes.AutoString(length=32),
            nullable=False,
        ),
        sa.Column("secret_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("jwks_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("rotated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["consumer_id"], ["consumer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_client_consumer_id"), ["consumer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_client_client_id"), ["client_id"], unique=True)

    op.create_table(
        "token_signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("alg", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_jwk", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("token_signing_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_token_signing_key_kid"), ["kid"], unique=True)

    op.create_table(
        "oauth_consumed_assertion",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti"),
    )
    with op.batch_alter_table("oauth_consumed_assertion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_consumed_assertion_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "oauth_revoked_token",
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    with op.batch_alter_table("oauth_revoked_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_revoked_token_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    for table, index in (
        ("oauth_revoked_token", "expires_at"),
        ("oauth_consumed_assertion", "expires_at"),
        ("token_signing_key", "kid"),
        ("oauth_client", "client_id"),
        ("oauth_client", "consumer_id"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{index}"))
    for table in ("oauth_revoked_token", "oauth_consumed_assertion", "token_signing_key"):
        op.drop_table(table)
    op.drop_table("oauth_client")
