"""Topics and subscriptions set aside after a terminal error, when to try them again, and what
operators see of them.

A terminal error (messaging/errors.py) will come back on every retry until someone changes the
topic, on the broker or in the hub. Rather than retrying it every second, and for the relay
holding every topic behind it, the topic (or a subscription's delivery) is set aside:

- a row in `messaging_set_aside` says why (the error's class and sentence), since when, how
  many tries failed and, for a topic, how many of its messages wait in the outbox;
- setting aside writes one registry-change record (actor `hub`, action `set-aside`) and an
  error log line; each later failure only updates the row; the first success deletes it,
  with a record `resumed` and a warning log line;
- it is tried again 5 s later, then after doubling waits up to a minute, and at once when the
  registry changes (an operator's fix bumps the revision): whoever sees the change calls
  `registry_changed`, which makes everything set aside due, also what fails a try begun before.

The state lives in the database, not in the process: the relay and each delivery run in one
replica at a time (a lease), /readyz is asked of any replica, and a replica that takes a lease
over loads what was set aside (`load`), tries it at once and records nothing new unless the
outcome changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit.changes import record_change
from messaging.errors import Terminal
from messaging.models import Message, SetAside, SetAsideKind
from registry.types import as_utc, utcnow

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 60.0
_TABLE = SetAside.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Held:
    """One thing set aside, as the process that retries it sees it."""

    attempts: int
    retry_at: float  # monotonic: when it is due again
    changes: int  # the book's registry changes when its failed try began: a later one makes it due


class SetAsideBook:
    """What one job (the relay: topics; delivery: subscriptions) set aside; its rows, records
    and retry times. Methods that touch the database block: call them in a thread."""

    def __init__(
        self,
        engine: Engine,
        kind: SetAsideKind,
        *,
        first_seconds: float = RETRY_FIRST_SECONDS,
        max_seconds: float = RETRY_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.first_seconds = first_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self.held: dict[str, Held] = {}
        self.changes = 0  # registry changes seen (`registry_changed`)
        self._changed = asyncio.Event()

    def registry_changed(self) -> None:
        """The registry changed (an operator's fix, perhaps): everything set aside is due now,
        and so is what fails a try that began before the change. Call it in the event loop."""
        self.changes += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones."""
        return float(min(self.max_seconds, self.first_seconds * 2 ** max(0, attempts - 1)))

    def waiting(self) -> set[str]:
        """The names not to try now: set aside, not yet due, and the registry unchanged."""
        now = self.clock()
        return {
            name
            for name, held in list(self.held.items())  # a copy: threads may add meanwhile
            if held.retry_at > now and held.changes == self.changes
        }

    def wait_seconds(self, name: str) -> float:
        """How long until `name` is due again (0 when it is not set aside)."""
        held = self.held.get(name)
        return 0.0 if held is None else max(0.0, held.retry_at - self.clock())

    async def until_due(self, name: str, *, tried: int) -> None:
        """Wait until `name`, whose failed try began at `tried` changes, is due again: its
        retry time (`first_seconds` when unknown, as after a failure the database did not
        record), or a registry change (one during the try counts)."""
        changed = self._changed
        if self.changes != tried:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.wait_seconds(name) or self.first_seconds):
                await changed.wait()

    def load(self) -> None:
        """Take over what was set aside (by this job in another replica, or before a restart):
        each is due at once; a failure keeps its row and adds to its attempts."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_TABLE.c.name, _TABLE.c.attempts).where(_TABLE.c.kind == self.kind.value)
            ).all()
        self.held = {str(row[0]): Held(int(row[1]), self.clock(), self.changes) for row in rows}

    def fail(self, name: str, error: Terminal, *, tried: int, waiting: int | None = None) -> bool:
        """Set `name` aside, or keep it aside after another failed try; True when it was not
        set aside before (then one record and one error line say so). `tried`: `changes` when
        the try began; a registry change since then makes it due at once."""
        held = self.held.get(name)
        attempts = held.attempts + 1 if held is not None else 1
        reason = error.detail[:1000]
        now = utcnow()
        with Session(self.engine) as session:
            row = session.get(SetAside, (self.kind.value, name))
            new = row is None
            if row is None:
                row = SetAside(kind=self.kind, name=name, error="", reason="", since=now)
            else:
                attempts = max(attempts, row.attempts + 1)
            row.error = type(error).__name__
            row.reason = reason
            row.last_attempt_at = now
            row.attempts = attempts
            row.waiting = waiting
            session.add(row)
            if new:
                details: dict[str, Any] = {"error": row.error, "reason": reason}
                if waiting is not None:
                    details["waiting"] = waiting
                self._record(session, "set-aside", name, details)
            session.commit()
        self.held[name] = Held(attempts, self.clock() + self.delay(attempts), tried)
        if new:
            log.error(
                "%s %s set aside (%s): %s; %s, retried with backoff and on registry changes",
                self.kind.value, name, type(error).__name__, reason, self._what_waits(waiting),
            )  # fmt: skip
        return new

    def resume(self, name: str) -> None:
        """A try succeeded: if it was set aside (here, or by another replica before a lease
        moved), forget it and say so (record, log). Forgotten here only once the row is gone:
        if the commit fails, it is still set aside, and tried again."""
        with Session(self.engine) as session:
            row = session.get(SetAside, (self.kind.value, name))
            if row is None:
                self.held.pop(name, None)
                return
            since: datetime = row.since
            details = {"error": row.error, "since": since.isoformat(), "tries": row.attempts}
            session.delete(row)
            self._record(session, "resumed", name, details)
            session.commit()
        self.held.pop(name, None)
        log.warning("%s %s resumed: the broker accepts it again", self.kind.value, name)

    def forget(self, keep: set[str]) -> None:
        """Drop the rows of names no longer to be tried (a subscription deleted or paused):
        nothing waits on them any more. No record: the operator's change is recorded."""
        for name in set(self.held) - keep:
            del self.held[name]
        with self.engine.begin() as connection:
            query = delete(_TABLE).where(_TABLE.c.kind == self.kind.value)
            if keep:
                query = query.where(_TABLE.c.name.not_in(sorted(keep)))
            connection.execute(query)

    def _record(self, session: Session, action: str, name: str, details: dict[str, Any]) -> None:
        record_change(
            session,
            actor="hub",
            action=action,
            object_type=self.kind.value,
            object_key=name,
            details=details,
        )

    def _what_waits(self, waiting: int | None) -> str:
        if self.kind is SetAsideKind.TOPIC:
            return f"{waiting} messages wait in the outbox"
        return "its delivery waits"


def listing(engine: Engine) -> list[dict[str, Any]]:
    """What is set aside now, oldest first, for operators (/readyz)."""
    with engine.connect() as connection:
        rows = connection.execute(select(_TABLE).order_by(_TABLE.c.since, _TABLE.c.name)).all()
    return [_public(row) for row in rows]


def topic_state(*, session: Session, topic: str) -> dict[str, Any]:
    """The relay's view of one topic: how many of its messages wait in the outbox now, and
    whether it is set aside (why, since when, how many tries)."""
    messages = Message.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    outbox = connection.execute(
        select(func.count())
        .select_from(messages)
        .where(messages.c.topic == topic, messages.c.relayed_at.is_(None))
    ).scalar_one()
    row = connection.execute(
        select(_TABLE).where(_TABLE.c.kind == SetAsideKind.TOPIC.value, _TABLE.c.name == topic)
    ).first()
    state: dict[str, Any] = {"outbox": int(outbox), "set_aside": row is not None}
    if row is not None:
        state |= {k: v for k, v in _public(row).items() if k not in ("kind", "name")}
    return state


def _public(row: Any) -> dict[str, Any]:
    found = {
        "kind": row.kind,
        "name": row.name,
        "error": row.error,
        "reason": row.reason,
        "since": as_utc(row.since),
        "last_attempt_at": as_utc(row.last_attempt_at),
        "attempts": row.attempts,
    }
    if row.kind == SetAsideKind.TOPIC.value:
        found["waiting"] = row.waiting  # counted at the last attempt
    return found
