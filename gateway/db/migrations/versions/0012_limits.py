"""limits: a grant's rate limit and quota, their shared counters, a connector's concurrency

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00

Grants gain `rate_limit` and `quota` (JSON terms, null: none); connectors gain
`max_in_flight` (null: none), `max_waiting` and `max_wait_seconds`. Two tables hold the counters
every hub process shares (registry/limits.py): `rate_limit_state` (GCRA, one row per limited
grant) and `quota_usage` (one row per grant and period).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# A table SQLite rebuilds keeps AUTOINCREMENT: its ids are never given again (0006).
KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("grant", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("rate_limit", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("quota", sa.JSON(), nullable=True))
    with op.batch_alter_table("connector", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("max_waiting", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("max_wait_seconds", sa.Float(), nullable=False, server_default="5.0")
        )
    # The defaults filled the existing rows; the models give new rows theirs.
    with op.batch_alter_table("connector", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.alter_column("max_waiting", server_default=None)
        batch_op.alter_column("max_wait_seconds", server_default=None)
    op.create_table(
        "rate_limit_state",
        sa.Column("grant_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tat", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["grant_id"], ["grant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_table(
        "quota_usage",
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["grant_id"], ["grant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("grant_id", "period"),
    )


def downgrade() -> None:
    op.drop_table("quota_usage")
    op.drop_table("rate_limit_state")
    with op.batch_alter_table("connector", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.drop_column("max_wait_seconds")
        batch_op.drop_column("max_waiting")
        batch_op.drop_column("max_in_flight")
    with op.batch_alter_table("grant", table_kwargs=KEEP_IDS) as batch_op:
        batch_op.drop_column("quota")
        batch_op.drop_column("rate_limit")
