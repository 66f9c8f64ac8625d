"""append-only refusal names the table: audit_checkpoint's own message on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:00:00

0004's trigger function read OLD.seq in one combined condition, so on PostgreSQL an UPDATE or
DELETE of a checkpoint (which has no seq) failed with "record old has no field seq": refused, but
not saying why. The function now looks at the table first.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FUNCTION = """CREATE OR REPLACE FUNCTION lgsp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_TABLE_NAME = 'audit_checkpoint' THEN
       RAISE EXCEPTION 'audit checkpoints are append-only';
     END IF;
     IF TG_OP = 'DELETE' AND current_setting('lgsp.archiving', true) = 'on' THEN
       IF EXISTS (SELECT 1 FROM audit_archive a WHERE OLD.seq BETWEEN a.min_seq AND a.max_seq)
       THEN
         RETURN OLD;
       END IF;
     END IF;
     RAISE EXCEPTION 'exchange records are append-only';
   END $$"""

PREVIOUS = """CREATE OR REPLACE FUNCTION lgsp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'exchange_record'
        AND current_setting('lgsp.archiving', true) = 'on'
        AND EXISTS (SELECT 1 FROM audit_archive a
                    WHERE OLD.seq BETWEEN a.min_seq AND a.max_seq) THEN
       RETURN OLD;
     END IF;
     IF TG_TABLE_NAME = 'audit_checkpoint' THEN
       RAISE EXCEPTION 'audit checkpoints are append-only';
     END IF;
     RAISE EXCEPTION 'exchange records are append-only';
   END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PREVIOUS)
