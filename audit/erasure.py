"""Erasing a data subject's payloads: the personal data the hub keeps outside the Merkle leaves.

The audit log's leaves hold a subject only as a keyed hash (`subject_hash`) and payloads only as
their SHA-256, so erasure never touches a leaf and every proof stays valid. What the hub does keep
in clear is message payloads, in messaging's tables: the outbox (`message`), the embedded
broker's log (`broker_log`) and `dead_letter`. `erase` finds the rows of those tables whose JSON
value holds the identifier (a string equal to it at any depth, or an integer whose decimal form
is it), or whose message key is it, and replaces the value with a tombstone naming the original's
SHA-256 (whoever holds a copy can still show it was that message) and a key equal to the
identifier with `erased-<subject hash>` (the remaining messages of one key keep their order).

A message not yet delivered is delivered as its tombstone. What this does not reach: copies
already handed to subscribers (pushed, or read from Kafka) and Kafka itself (a topic is trimmed
only by its retention or compaction); text that merely contains the identifier (a note saying
"hồ sơ 0120…-A"), idempotency keys and request ids; headers (the hub writes them); backups.
One `audit` record (action `erase`) says what was done, under the subject's hash; the identifier
itself is stored nowhere.

Messaging sits above audit in the package order, so its tables are named here, not imported.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, column, insert, or_, select, table, true, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from audit.errors import ErasureError
from audit.records import ExchangeRecord, RecordKind, new_record_id
from registry.types import utcnow

PAGE = 1000

# The tables holding payloads, each with its primary key (messaging/models.py).
_TABLES: dict[str, tuple[str, ...]] = {
    "message": ("seq",),
    "broker_log": ("topic", "partition", "offset"),
    "dead_letter": ("id",),
}

# An identifier made only of these is written verbatim in any JSON text, so `LIKE` finds every
# candidate row; others (quotes, non-ASCII a producer may have \u-escaped) need a full scan.
_VERBATIM = re.compile(r"[A-Za-z0-9 .,:;@#+=_%-]+")


@dataclass(frozen=True, slots=True)
class ErasureResult:
    record_id: str  # the `audit` record saying what was erased
    messages: int  # outbox rows (accepted messages)
    broker_log: int  # entries of the embedded broker's log
    dead_letters: int
    compacted: bool  # the old values are gone from the database files too (see `erase`)

    @property
    def total(self) -> int:
        return self.messages + self.broker_log + self.dead_letters


def tombstone(value: str) -> str:
    """What an erased value becomes: it says so, and names the SHA-256 of what it was."""
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return json.dumps({"erased": True, "sha256": digest}, separators=(",", ":"))


def holds(document: Any, identifier: str) -> bool:
    """Whether a JSON document carries the identifier: a string equal to it at any depth, or an
    integer written the same way."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item == identifier:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and str(item) == identifier:
            return True
    return False


def _value_holds(value: str, identifier: str) -> bool:
    try:
        document = json.loads(value)
    except ValueError:  # not JSON (never accepted so; erase conservatively)
        return identifier in value
    return holds(document, identifier)


def _like_pattern(identifier: str) -> str:
    escaped = identifier.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _candidates(
    connection: Connection, name: str, identifier: str
) -> Iterator[tuple[tuple[Any, ...], str | None, str]]:
    """(primary key, key, value) of each row that may hold the identifier, page by page."""
    keys = _TABLES[name]
    t = table(name, *(column(k) for k in keys), column("key"), column("value"))
    pk = [t.c[k] for k in keys]
    where: ColumnElement[bool] = t.c.key == identifier
    if _VERBATIM.fullmatch(identifier):
        where = or_(where, t.c.value.like(_like_pattern(identifier), escape="\\"))
    else:
        where = true()
    after: tuple[Any, ...] | None = None
    while True:
        query = select(*pk, t.c.key, t.c.value).where(where)
        if after is not None:
            query = query.where(_after(pk, after))
        rows = connection.execute(query.order_by(*pk).limit(PAGE)).all()
        for row in rows:
            yield tuple(row[: len(pk)]), row[-2], row[-1]
        if len(rows) < PAGE:
            return
        after = tuple(rows[-1][: len(pk)])


def _after(pk: list[Any], after: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows whose primary key sorts after `after` (keyset pagination over a composite key)."""
    clauses: list[ColumnElement[bool]] = []
    for i, c in enumerate(pk):
        equal = [pk[j] == after[j] for j in range(i)]
        clauses.append(and_(*equal, c > after[i]))
    return or_(*clauses)


Change = tuple[tuple[Any, ...], dict[str, str]]  # a row's primary key, its new values


def _changes(connection: Connection, name: str, identifier: str, erased_key: str) -> list[Change]:
    """What erasing changes in one table (found before anything is written, so that on SQLite
    the write lock is held for the updates only)."""
    changes: list[Change] = []
    for pk, key, value in _candidates(connection, name, identifier):
        keyed = key == identifier
        if keyed or _value_holds(value, identifier):
            values = {"value": value if _is_tombstone(value) else tombstone(value)}
            if keyed:
                values["key"] = erased_key
            changes.append((pk, values))
    return changes


def _apply(connection: Connection, name: str, changes: list[Change]) -> None:
    keys = _TABLES[name]
    t = table(name, *(column(k) for k in keys), column("key"), column("value"))
    for pk, values in changes:
        connection.execute(
            update(t).where(*(t.c[k] == v for k, v in zip(keys, pk, strict=True))).values(values)
        )


def _is_tombstone(value: str) -> bool:
    try:
        document = json.loads(value)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("erased") is True


def erase(
    engine: Engine,
    *,
    identifier: str,
    subject_hash: str,
    actor: str,
    reason: str,
    vacuum: bool = False,
) -> ErasureResult:
    """Erase the payloads holding `identifier` and record that it was done, in one transaction.

    `subject_hash` is the subject's keyed hash (the hub's HMAC of the identifier), under which
    the `audit` record is filed; the identifier is not recorded.

    The old values must also leave the files: on SQLite the transaction runs with
    `secure_delete` (freed space is zeroed) and the write-ahead log is checkpointed and
    truncated afterwards (`compacted` False: a reader held it; it is truncated later). On
    PostgreSQL the old row versions stay in the table's files until a vacuum reclaims them and in
    the WAL until it is recycled: `vacuum=True` rewrites the three tables at once (VACUUM FULL,
    which locks them for its duration).
    """
    identifier = identifier.strip()
    if not identifier:
        raise ErasureError("the identifier is empty")
    if not re.fullmatch(r"[0-9a-f]{64}", subject_hash):
        raise ErasureError("subject_hash must be a hex HMAC-SHA256")
    if not reason.strip():
        raise ErasureError("an erasure needs a reason")
    sqlite = engine.dialect.name == "sqlite"
    erased_key = f"erased-{subject_hash}"
    counts: dict[str, int] = {}
    record_id = new_record_id()
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA secure_delete = ON")
        try:
            found = {name: _changes(connection, name, identifier, erased_key) for name in _TABLES}
            for name, changes in found.items():
                _apply(connection, name, changes)
                counts[name] = len(changes)
            connection.execute(
                insert(ExchangeRecord.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "id": record_id,
                        "kind": str(RecordKind.AUDIT),
                        "time": utcnow(),
                        "subject_hash": subject_hash,
                        "actor": actor,
                        "action": "erase",
                        "details": {
                            "reason": reason.strip(),
                            "messages": counts["message"],
                            "broker_log": counts["broker_log"],
                            "dead_letters": counts["dead_letter"],
                        },
                    }
                ],
            )
            connection.commit()
        finally:
            connection.rollback()
            if sqlite:
                connection.exec_driver_sql("PRAGMA secure_delete = OFF")
        compacted = _compact(connection) if sqlite else False
    if vacuum and not sqlite:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM FULL message, broker_log, dead_letter")
        compacted = True
    return ErasureResult(
        record_id=record_id,
        messages=counts["message"],
        broker_log=counts["broker_log"],
        dead_letters=counts["dead_letter"],
        compacted=compacted,
    )


def _compact(connection: Connection) -> bool:
    """SQLite: copy the write-ahead log into the database and truncate it (it holds the pages
    as they were before); False when a reader kept it."""
    busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    connection.commit()
    return busy == 0
