"""Rows for any table of the hub's database, made from what the database itself says the table is
(reflected): the tests of generated ids insert into every table the same way, at any revision."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

# Every table on the metadata:
import audit.models
import audit.records  # noqa: F401
import messaging.models  # noqa: F401
import registry.models  # noqa: F401

# One row, id 1, that nothing generates.
SINGLETONS = frozenset({"audit_tree", "registrystate"})
_values = itertools.count(1)  # every value made differs, whichever Rows made it


def generated_key(table: sa.Table) -> sa.Column[Any] | None:
    """The key the database generates for `table`'s rows, if it has one."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1 or not isinstance(columns[0].type, sa.Integer):
        return None
    return None if columns[0].autoincrement is False else columns[0]


def tables_with_generated_keys() -> list[str]:
    """Every table of the models whose ids the database hands out."""
    return sorted(
        table.name
        for table in SQLModel.metadata.sorted_tables
        if table.name not in SINGLETONS and generated_key(table) is not None
    )


class Rows:
    """Inserts rows through one connection: every NOT NULL column gets a value of its type, and
    a foreign key a row made for it in the table it names."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.metadata = sa.MetaData()

    def table(self, name: str) -> sa.Table:
        if name not in self.metadata.tables:
            return sa.Table(name, self.metadata, autoload_with=self.connection)
        return self.metadata.tables[name]

    def insert(self, name: str, /, **values: Any) -> Any:
        """A new row of `name`; its primary key (the generated id, when there is one)."""
        table = self.table(name)
        key = generated_key(table)
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.name in values or column is key or column.nullable:
                continue
            foreign = next(iter(column.foreign_keys), None)
            if foreign is not None:
                row[column.name] = self.insert(foreign.column.table.name)
            else:
                row[column.name] = value_of(column.type, next(_values))
        result = self.connection.execute(table.insert().values({**row, **values}))
        return result.inserted_primary_key[0] if result.inserted_primary_key else None

    def keys(self, name: str) -> list[Any]:
        table = self.table(name)
        key = generated_key(table)
        assert key is not None, name
        return list(self.connection.execute(sa.select(key).order_by(key)).scalars())

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Every row, in key order (what a rebuilt table must still hold)."""
        table = self.table(name)
        order = list(table.primary_key.columns)
        query = sa.select(table).order_by(*order)
        return [dict(r._mapping) for r in self.connection.execute(query)]

    def kept(self, before: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """The tables of `before` as they are now, in the columns they had then (a later
        migration may add columns: the rows must still hold what they held)."""
        now = {}
        for name, rows in before.items():
            columns = list(rows[0]) if rows else []
            now[name] = [{c: r[c] for c in columns} for r in self.rows(name)]
        return now


def value_of(kind: sa.types.TypeEngine[Any], n: int) -> Any:
    """A value a column of this type accepts; `n` makes it differ from the last one."""
    enums = getattr(kind, "enums", None)
    if enums:
        return enums[0]
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float | sa.Numeric):
        return float(n)
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 11, 25, 8, 0, n % 60)
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b""
    if isinstance(kind, sa.String):
        return f"v{n}"
    raise TypeError(f"no test value for a column of type {kind!r}")


def disable_append_only(connection: sa.Connection) -> None:
    """The append-only triggers (exchange records, checkpoints) off, inside the connection's
    transaction, as an intruder with database access would: for tests of what the hub detects."""
    if connection.dialect.name == "sqlite":
        found = connection.execute(
            sa.text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('exchange_record', 'audit_checkpoint')"
            )
        )
        names: list[str] = list(found.scalars())
        for name in names:
            connection.execute(sa.text(f'DROP TRIGGER "{name}"'))
    else:
        for table in ("exchange_record", "audit_checkpoint"):
            connection.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
