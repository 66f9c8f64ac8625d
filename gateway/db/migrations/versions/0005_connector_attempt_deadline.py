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

DEFAULT_MAX_DELAY = 10.0  # RetryPolicy's default, as rows without one were read
MAX_DELAY_CAP = 120.0

CONNECTORS = sa.table(
    "connector",
    sa.column("id", sa.Integer()),
    sa.column("connect_timeout", sa.Float()),
    sa.column("read_timeout", sa.Float()),
    sa.column("retry", sa.JSON()),
)


def upgrade() -> None:
    # NULL: the default, connect_timeout + read_timeout.
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_deadline", sa.Float(), nullable=True))
    # retry.max_delay used to stop only the retries; it is now the exchange deadline, which also
    # bounds each attempt. A connector whose timeouts allowed a longer attempt keeps them: its
    # exchange deadline is raised to connect + read timeout (at most 120 s), so no call that
    # succeeded before is cut now.
    bind = op.get_bind()
    for row in bind.execute(sa.select(CONNECTORS)).all():
        retry = dict(row.retry or {})
        wanted = min(MAX_DELAY_CAP, float(row.connect_timeout) + float(row.read_timeout))
        if float(retry.get("max_delay", DEFAULT_MAX_DELAY)) < wanted:
            retry["max_delay"] = wanted
            bind.execute(sa.update(CONNECTORS).where(CONNECTORS.c.id == row.id).values(retry=retry))


def downgrade() -> None:
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.drop_column("attempt_deadline")
