"""A real audit log on a fresh database, driven through the hub's writer and integrator, and
an attacker's connection with the append-only triggers off: for the verify, tamper and bundle
tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from audit.log import AuditLog
from audit.notes import Signer, Verifier
from audit.records import Record, new_record_id
from audit.tree import TreeStore
from audit.verify import verify_log
from audit.writer import AuditWriter
from gateway.db import make_engine, migrate
from registry.types import utcnow
from tests.integration.rows import disable_append_only

ORIGIN = "test.lgsp.example/audit"
SUBJECT_KEY = "a-subject-key-for-the-tests-0123456789"


def subject_hash(identifier: str) -> str:
    return hmac.new(SUBJECT_KEY.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def record(n: int, **fields: Any) -> dict[str, Any]:
    """An exchange record as the data plane writes it (with a float and Vietnamese in details)."""
    return {
        "id": new_record_id(),
        "kind": "exchange",
        "time": utcnow(),
        "request_id": f"req-{n}",
        "consumer": "app-mot-cua",
        "agency": "000.00.12.H12",
        "service": "cong-dan",
        "version": "v1",
        "route": "GET /cong-dan/{id}",
        "purpose": "xac-minh",
        "subject_hash": subject_hash(f"0120900{n % 7:05d}"),
        "provider_status": 200,
        "hub_status": 200,
        "latency_us": 1000 + n,
        "details": {"n": n, "ratio": 0.5, "ghi_chú": "Lò Văn Minh", "list": [1, None, True]},
        **fields,
    }


@dataclass
class Log:
    """A real log on a fresh database: records through AuditWriter, leaves through AuditLog."""

    backend: str
    url: str
    engine: Engine
    signer: Signer
    audit: AuditLog

    @property
    def verifier(self) -> Verifier:
        return Verifier.from_vkey(self.signer.vkey)

    def write(self, count: int, **fields: Any) -> None:
        async def run() -> None:
            writer = AuditWriter(self.engine)
            try:
                for n in range(count):
                    await writer.write(Record(**record(n, **fields)))
            finally:
                await writer.aclose()

        asyncio.run(run())

    def checkpoint(self, now: float | None = None) -> int:
        """Integrate everything and sign a checkpoint (at `now`, default the real time)."""
        self.audit.integrate(force_checkpoint=True, now=now)
        return TreeStore(self.engine).state().size

    def seq(self, leaf: int) -> int:
        return TreeStore(self.engine).seqs(leaf, leaf + 1)[0]

    def verify(self, **kwargs: Any) -> Any:
        kwargs.setdefault("origin", ORIGIN)
        return verify_log(self.engine, [self.verifier], **kwargs)

    @contextlib.contextmanager
    def attacker(self) -> Iterator[Connection]:
        """A connection that can change what the hub never changes, as an intruder would."""
        with self.engine.begin() as connection:
            disable_append_only(connection)
            yield connection


def new_log(backend: str, url: str) -> Log:
    engine = make_engine(url)
    migrate(engine)
    signer = Signer.generate(ORIGIN)
    audit = AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=5)

    async def start_and_stop() -> None:  # registers the key, records start and stop
        await audit.start()
        await audit.stop()

    asyncio.run(start_and_stop())
    return Log(backend, url, engine, signer, audit)


def populate(log: Log) -> Log:
    """370 records more, a checkpoint after 40, 30 and 300 of them (two tiles, one partial)."""
    for count in (40, 30, 300):
        log.write(count)
        log.checkpoint()
    return log


def template(log: Log) -> Log:
    """`log`, closed, so that `clone` can copy its database."""
    if log.backend == "sqlite":
        with log.engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    log.engine.dispose()
    return log


def clone(source: Log, request: pytest.FixtureRequest, directory: Path) -> Log:
    """A new database holding a copy of `source`'s (a closed `template`), with its own log."""
    if source.backend == "sqlite":
        copy = directory / "lgsp.db"
        shutil.copy(str(source.engine.url.database), copy)
        url = f"sqlite:///{copy}"
    else:
        base = request.getfixturevalue("postgres_url")
        name = f"lgsp_{secrets.token_hex(4)}"
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.engine.url.database}"')
        head, _, query = base.partition("?")
        url = head.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    engine = make_engine(url)
    audit = AuditLog(engine, signers=[source.signer], origin=ORIGIN, checkpoint_seconds=5)
    return Log(source.backend, url, engine, source.signer, audit)
