"""connector attempt deadline

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:05:39
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the default, connect_timeout + read_timeout (existing connectors keep working as
    # configured; the exchange deadline, retry.max_delay, was already stored with each one).
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_deadline", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.drop_column("attempt_deadline")
