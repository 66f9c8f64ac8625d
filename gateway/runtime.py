"""What one hub process holds while it runs: engine, audit writer, registry snapshot, connectors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging

from sqlmodel import Session, select

from audit.writer import AuditWriter
from connectors.base import Connector
from connectors.factory import create_connector
from gateway.db import make_engine
from gateway.migrate import migrate
from gateway.settings import Settings
from gateway.snapshot import Snapshot, connector_fingerprint, load
from registry import principals
from registry.models import Connector as ConnectorRow
from registry.revision import current
from schemas.cache import ValidatorCache

log = logging.getLogger(__name__)

CONNECTOR_GRACE_SECONDS = 60.0
# a replaced connector stays open for requests still using it


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.writer = AuditWriter(self.engine, batch_max=settings.audit_batch_max)
        self.validators = ValidatorCache()
        self.snapshot = Snapshot(revision=-1)
        self._subject_key = settings.subject_hmac_key.encode()
        self._connectors: dict[str, tuple[str, Connector]] = {}
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._loading: asyncio.Future[tuple[Snapshot, list[Connector]] | None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_database)
        await self.reload()
        self._poller = asyncio.create_task(self._poll(), name="registry-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._loading is not None:
            with contextlib.suppress(Exception):
                await self._loading
        for task in list(self._retiring):
            task.cancel()
        for _, connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()
        await self.writer.aclose()
        self.engine.dispose()

    def _prepare_database(self) -> None:
        migrate(self.engine)
        if self.settings.bootstrap_admin_key:
            with Session(self.engine) as session:
                principals.ensure_bootstrap(
                    session, key=self.settings.bootstrap_admin_key, pepper=self.settings.key_pepper
                )

    # ------------------------------------------------------------ registry snapshot

    async def reload(self) -> None:
        """Rebuild the snapshot if the registry's revision moved since the last one."""
        async with self._reload_lock:
            # The database work runs in a thread that a cancelled caller cannot stop: it is
            # kept, so that stop() waits for it before closing the engine under it.
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load_if_changed))
            loaded = await asyncio.shield(self._loading)
            if loaded is not None:
                self.snapshot, stale = loaded
                for connector in stale:
                    self._retire(connector)

    def _load_if_changed(self) -> tuple[Snapshot, list[Connector]] | None:
        with Session(self.engine) as session:
            if current(session) == self.snapshot.revision:
                return None
        return self._build()

    def _build(self) -> tuple[Snapshot, list[Connector]]:
        with Session(self.engine) as session:
            live: dict[str, tuple[str, Connector]] = {}
            broken: dict[str, str] = {}
            for row in session.exec(select(ConnectorRow)):
                fingerprint = connector_fingerprint(row)
                known = self._connectors.get(row.name)
                if known is not None and known[0] == fingerprint:
                    live[row.name] = known
                    continue
                try:
                    live[row.name] = (fingerprint, create_connector(row))
                except Exception as exc:  # one bad row must not take the whole registry down
                    log.error("connector %s cannot be built: %s", row.name, exc)
                    broken[row.name] = str(exc) or type(exc).__name__
            stale = [
                c
                for name, (fp, c) in self._connectors.items()
                if live.get(name, ("", None))[1] is not c
            ]
            self._connectors = live
            snapshot = load(
                session,
                validators=self.validators,
                connectors={name: c for name, (_, c) in live.items()},
                broken=broken,
            )
        return snapshot, stale

    def _retire(self, connector: Connector) -> None:
        async def close_later() -> None:
            await asyncio.sleep(CONNECTOR_GRACE_SECONDS)
            await connector.aclose()

        task = asyncio.create_task(close_later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_seconds)
            try:
                await self.reload()
            except Exception as exc:  # a passing database fault: keep serving the last snapshot
                log.warning(
                    "registry reload failed, keeping revision %s: %s", self.snapshot.revision, exc
                )

    # ------------------------------------------------------------ helpers for the data plane

    def subject_hash(self, identifier: str) -> str:
        """The keyed hash under which a data subject appears in the audit log."""
        normalised = identifier.strip()
        return hmac.new(self._subject_key, normalised.encode(), hashlib.sha256).hexdigest()
