"""Publishing: check a producer's batch against its topic, then commit messages and record at once.

A batch is all-or-nothing unless the producer asks for `partial`: then the valid messages are
accepted and each refused one is answered with its status and errors. The accepted messages
(the outbox rows) and the publish's exchange record are committed in one transaction before
the 202 leaves, so an acknowledged message survives any crash that follows.

Idempotency: a message carrying an idempotency key that this producer already used on this
topic is not stored again; the answer names the message stored the first time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from audit.records import ExchangeRecord, Record, new_record_id
from messaging.broker import partition_for
from messaging.entries import TopicEntry
from messaging.models import MAX_KEY, Message
from registry.types import resolve_pointer, utcnow

MAX_ERRORS = 50
MAX_IDEMPOTENCY_KEY = 200


@dataclass(slots=True)
class Refusal:
    """Why one message of a batch was refused."""

    index: int
    status: int  # 400, 413 or 422
    errors: list[dict[str, str]]


@dataclass(slots=True)
class Candidate:
    """One message that passed its checks, ready to store."""

    index: int
    value: bytes  # canonical JSON of the message
    key: str | None
    partition: int
    idempotency_key: str | None
    id: str = field(default_factory=new_record_id)
    duplicate: bool = False


def _where(index: int, single: bool) -> str:
    return "" if single else f"/messages/{index}"


def check(
    topic: TopicEntry,
    items: Sequence[Any],
    *,
    single: bool,
    header_key: str | None,
) -> tuple[list[Candidate], list[Refusal]]:
    """Each item is `{"value": ..., "idempotency_key"?: str}`; checked one by one."""
    accepted: list[Candidate] = []
    refused: list[Refusal] = []
    for index, item in enumerate(items):
        at = _where(index, single)
        if not isinstance(item, dict) or "value" not in item:
            refused.append(
                Refusal(
                    index, 400, [{"pointer": at, "message": "a message is an object with value"}]
                )
            )
            continue
        unknown = sorted(set(item) - {"value", "idempotency_key"})
        if unknown:
            refused.append(
                Refusal(
                    index,
                    400,
                    [{"pointer": f"{at}/{unknown[0]}", "message": "unknown member of a message"}],
                )
            )
            continue
        value = item["value"]
        idem = item.get("idempotency_key")
        if idem is None and header_key is not None:
            idem = header_key if single else f"{header_key}:{index}"
        if idem is not None and (
            not isinstance(idem, str) or not 0 < len(idem) <= MAX_IDEMPOTENCY_KEY or "\x00" in idem
        ):
            refused.append(
                Refusal(
                    index,
                    400,
                    [
                        {
                            "pointer": f"{at}/idempotency_key",
                            "message": f"must be a string of 1 to {MAX_IDEMPOTENCY_KEY} "
                            "characters, without NUL",
                        }
                    ],
                )
            )
            continue
        encoded = orjson.dumps(value)
        if len(encoded) > topic.max_message_bytes:
            refused.append(
                Refusal(
                    index,
                    413,
                    [
                        {
                            "pointer": f"{at}/value",
                            "message": f"the message is {len(encoded)} bytes; topic {topic.name} "
                            f"takes at most {topic.max_message_bytes}",
                        }
                    ],
                )
            )
            continue
        errors = topic.contract.errors(value, f"{at}/value", MAX_ERRORS)
        key: str | None = None
        if not errors and topic.key_pointer:
            found = resolve_pointer(value, topic.key_pointer)
            if (isinstance(found, str) and 0 < len(found) <= MAX_KEY and "\x00" not in found) or (
                isinstance(found, int | float) and not isinstance(found, bool)
            ):
                key = str(found)
            else:
                errors = [
                    {
                        "pointer": f"{at}/value{topic.key_pointer}",
                        "message": f"the key field of topic {topic.name} is missing, or not "
                        f"a number or a string of 1 to {MAX_KEY} characters without NUL",
                    }
                ]
        if errors:
            refused.append(Refusal(index, 422, errors))
            continue
        accepted.append(
            Candidate(
                index=index,
                value=encoded,
                key=key,
                partition=partition_for(key, topic.partitions),
                idempotency_key=idem,
            )
        )
    return accepted, refused


def _earlier(
    connection: Any, topic: str, producer: str, keys: list[str]
) -> dict[str, tuple[str, int]]:
    """Idempotency keys this producer used on this topic: key -> (message id, partition)."""
    table = Message.__table__  # type: ignore[attr-defined]
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(keys), 500):
        rows = connection.execute(
            select(table.c.idempotency_key, table.c.id, table.c.partition)
            .where(table.c.topic == topic)
            .where(table.c.producer == producer)
            .where(table.c.idempotency_key.in_(keys[start : start + 500]))
        )
        for idem, message_id, partition in rows:
            found[idem] = (message_id, partition)
    return found


def store(
    engine: Engine,
    *,
    topic: str,
    producer: str,
    request_id: str,
    candidates: list[Candidate],
    record: Record,
) -> None:
    """Commit the new messages and the publish's record in one transaction.

    Candidates whose idempotency key was used before become duplicates naming the earlier
    message (their `id` and `partition` are replaced). The record's details list the ids.
    """
    for attempt in (1, 2):
        try:
            _store_once(engine, topic, producer, request_id, candidates, record)
            return
        except IntegrityError:
            # Another request stored the same idempotency key between our look and our insert:
            # look again, and this time its messages are duplicates.
            if attempt == 2:
                raise


def _store_once(
    engine: Engine,
    topic: str,
    producer: str,
    request_id: str,
    candidates: list[Candidate],
    record: Record,
) -> None:
    now = utcnow()
    with engine.begin() as connection:
        keys = [c.idempotency_key for c in candidates if c.idempotency_key is not None]
        earlier = _earlier(connection, topic, producer, keys) if keys else {}
        seen: dict[str, Candidate] = {}
        rows = []
        for candidate in candidates:
            idem = candidate.idempotency_key
            if idem is not None and idem in earlier:
                candidate.id, candidate.partition = earlier[idem]
                candidate.duplicate = True
                continue
            if idem is not None and idem in seen:  # the same key twice in one batch
                first = seen[idem]
                candidate.id, candidate.partition, candidate.duplicate = (
                    first.id,
                    first.partition,
                    True,
                )
                continue
            if idem is not None:
                seen[idem] = candidate
            rows.append(
                {
                    "id": candidate.id,
                    "topic": topic,
                    "partition": candidate.partition,
                    "key": candidate.key,
                    "producer": producer,
                    "idempotency_key": idem,
                    "request_id": request_id,
                    "value": candidate.value.decode(),
                    "created_at": now,
                }
            )
        if rows:
            connection.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
        details = dict(record.details or {})
        details["messages"] = [c.id for c in candidates]
        details["duplicates"] = sum(c.duplicate for c in candidates)
        row = record.row()
        row["details"] = details
        connection.execute(insert(ExchangeRecord.__table__), [row])  # type: ignore[attr-defined]
