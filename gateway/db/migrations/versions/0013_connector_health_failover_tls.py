"""connector health checks, circuit breaker, several base URLs, mutual TLS

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# connector ids are never given twice (0006): a table SQLite rebuilds keeps AUTOINCREMENT.
KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    # Existing rows keep their behaviour: base_urls [] means [base_url], empty health and breaker
    # blocks read as the defaults, no tls block means the system's CAs and no client certificate.
    with op.batch_alter_table("connector", schema=None, table_kwargs=KEEP_IDS) as batch_op:
        batch_op.add_column(
            sa.Column("base_urls", sa.JSON(), nullable=True, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                "failover",
                sa.String(length=20),
                nullable=False,
                server_default=sa.text("'in_order'"),
            )
        )
        batch_op.add_column(
            sa.Column("health", sa.JSON(), nullable=True, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("breaker", sa.JSON(), nullable=True, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("tls", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tls_key", sa.String(length=70000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connector", schema=None, table_kwargs=KEEP_IDS) as batch_op:
        for column in ("tls_key", "tls", "breaker", "health", "failover", "base_urls"):
            batch_op.drop_column(column)
