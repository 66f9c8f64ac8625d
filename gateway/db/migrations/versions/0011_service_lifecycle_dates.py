"""service lifecycle dates, and an index for who calls a service version

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# A table SQLite rebuilds (a dropped column) keeps AUTOINCREMENT: ids are never given again.
KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("service", schema=None, table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(
            sa.Column("deprecated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("sunset_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    # A version deprecated before the dates existed answered `Deprecation: true`; RFC 9745 wants
    # a date: it was deprecated no later than now.
    op.execute("UPDATE service SET deprecated_at = CURRENT_TIMESTAMP WHERE status = 'DEPRECATED'")
    # The callers view and the retirement check: one service version's records over a window.
    with op.batch_alter_table("exchange_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_service_version_time", ["service", "version", "time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_record", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_service_version_time")
    with op.batch_alter_table("service", schema=None, table_kwargs=KEEP_IDS) as batch_op:
        batch_op.drop_column("retired_at")
        batch_op.drop_column("sunset_at")
        batch_op.drop_column("deprecated_at")
