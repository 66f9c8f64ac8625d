"""grant decisions: every decision on a grant is kept, not only the latest

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The enum type exists since 0001 (the grant's own status): reused, not created again.
    status = sa.Enum("REQUESTED", "APPROVED", "REFUSED", name="grantstatus").with_variant(
        postgresql.ENUM("REQUESTED", "APPROVED", "REFUSED", name="grantstatus", create_type=False),
        "postgresql",
    )
    op.create_table(
        "grant_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("status", status, nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["grant_id"], ["grant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("grant_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_decision_grant_id"), ["grant_id"], unique=False)
    # What was decided before this migration: the latest decision of each decided grant.
    op.execute(
        "INSERT INTO grant_decision (grant_id, status, reason, legal_basis, decided_by, "
        "decided_at) SELECT id, status, reason, legal_basis, decided_by, decided_at "
        "FROM \"grant\" WHERE status != 'REQUESTED' AND decided_at IS NOT NULL ORDER BY id"
    )


def downgrade() -> None:
    with op.batch_alter_table("grant_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_decision_grant_id"))
    op.drop_table("grant_decision")
