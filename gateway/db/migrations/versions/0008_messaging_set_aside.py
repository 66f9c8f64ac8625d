"""messaging set aside: topics and subscriptions stopped by a terminal broker error

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messaging_set_aside",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_outbox_topic",
            ["topic", "seq", "relayed_at"],
            unique=False,
            sqlite_where=sa.text("relayed_at IS NULL"),
            postgresql_where=sa.text("relayed_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_message_outbox_topic",
            sqlite_where=sa.text("relayed_at IS NULL"),
            postgresql_where=sa.text("relayed_at IS NULL"),
        )
    op.drop_table("messaging_set_aside")
