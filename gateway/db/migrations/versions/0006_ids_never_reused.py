"""ids never reused

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

An id, once given, is never given again: audit records, other rows and people keep naming the
object it was given to. SQLite gives a new row the largest INTEGER PRIMARY KEY plus one, so once
the rows above an id are deleted (a grant deleted, the audit log archived to its last record) the
next row gets that id again. AUTOINCREMENT makes SQLite remember the largest id ever given (in
`sqlite_sequence`), but SQLite cannot add it to an existing table: each table is rebuilt (created
anew with it, rows copied, the old one dropped), keeping its rows, indexes, foreign keys and
triggers (the append-only ones of exchange_record and audit_checkpoint). PostgreSQL's sequences
never go back; there, nothing is rebuilt.

On both, each generator then continues above the highest id known to have been given.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Every table whose key the database generates, and that key (audit_tree and registrystate hold
# one row, id 1, and are not here).
KEYS: dict[str, str] = {
    "connector": "id",
    "service": "id",
    "consumer": "id",
    "apikey": "id",
    "grant": "id",
    "principal": "id",
    "topic": "id",
    "subscription": "id",
    "schema_document": "id",
    "schema_version": "id",
    "message": "seq",
    "dead_letter": "id",
    "exchange_record": "seq",
    "audit_checkpoint": "id",
    "audit_archive": "id",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild(bind, autoincrement=True)
    for table, key in KEYS.items():
        _continue_above(bind, table, key, _highest_given(bind, table, key))


def downgrade() -> None:
    # Ids given meanwhile stay given; only SQLite's AUTOINCREMENT goes (PostgreSQL: nothing).
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild(bind, autoincrement=False)


# --------------------------------------------------------------------------- SQLite


def _rebuild(bind: sa.Connection, *, autoincrement: bool) -> None:
    # Foreign keys are off while migrations run (gateway/db/migrate.py), so a parent table is
    # dropped and renamed under its children's rows, which keep pointing at the same ids.
    for table in KEYS:
        _recreate(bind, table, autoincrement=autoincrement)


def _recreate(bind: sa.Connection, table: str, *, autoincrement: bool) -> None:
    """The table anew (Alembic's batch mode: create, copy, drop, rename; indexes and foreign
    keys as reflected), then its triggers, which went with the old table."""
    triggers = [
        str(row[0])
        for row in bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        )
    ]
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
    for sql in triggers:
        bind.exec_driver_sql(sql)


# --------------------------------------------------------------------------- both


def _highest_given(bind: sa.Connection, table: str, key: str) -> int:
    """The highest id the table is known to have given.

    For most tables that is the highest id present, which is all that can be known: an id given
    and deleted before this migration left no trace (on SQLite, a database where ids were
    already reused holds the later owner under it). Exchange records also left their seqs in the
    tree and the archived ranges (the records of the highest seqs may be archived), and grant
    ids in the exchange records that name them.
    """
    queries: list[sa.Executable] = [
        sa.select(sa.func.max(sa.column(key))).select_from(sa.table(table))
    ]
    if table == "exchange_record":
        queries += [
            sa.text("SELECT last_seq FROM audit_tree"),
            sa.text("SELECT max(max_seq) FROM audit_archive"),
            sa.text("SELECT max(max_seq) FROM audit_tile WHERE level = 0"),
        ]
    elif table == "grant":
        queries.append(sa.text("SELECT max(grant_id) FROM exchange_record"))
    found = [bind.execute(query).first() for query in queries]
    return max((int(row[0]) for row in found if row is not None and row[0] is not None), default=0)


def _continue_above(bind: sa.Connection, table: str, key: str, highest: int) -> None:
    """Make the table's generator hand out ids above `highest` from now on."""
    if bind.dialect.name == "sqlite":
        stored = bind.execute(
            sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}
        ).first()
        if stored is None and highest > 0:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
                {"t": table, "seq": highest},
            )
        elif stored is not None and int(stored[0]) < highest:
            bind.execute(
                sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :t"),
                {"t": table, "seq": highest},
            )
        return
    sequence = bind.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, :k)"), {"t": f'"{table}"', "k": key}
    ).scalar()
    if sequence is None:  # every generated key here is a serial column: never expected
        raise RuntimeError(f"{table}.{key} has no sequence: its ids would not be generated")
    state = bind.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one()  # noqa: S608
    given = int(state.last_value) - (0 if state.is_called else 1)
    if highest > given:
        bind.execute(
            sa.text("SELECT setval(CAST(:s AS regclass), :seq)"), {"s": sequence, "seq": highest}
        )
