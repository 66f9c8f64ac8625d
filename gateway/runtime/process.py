"""What one hub process holds while it runs: engine, audit writer, registry snapshot, connectors,
and the messaging relay and delivery workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlmodel import Session, select

from audit import retention
from audit.keys import default_key_file, load_signers
from audit.log import AuditLog
from audit.records import subject_hash
from audit.writer import AuditWriter
from connectors.auth import build_auth
from connectors.base import Connector
from connectors.factory import create_connector
from connectors.health import HealthMonitor
from gateway.db import make_engine, migrate
from gateway.db.sealing import attach_ring
from gateway.exchange.limits import limited, unwrapped
from gateway.runtime.snapshot import Snapshot, connector_fingerprint, load
from gateway.settings import Settings
from messaging import operations
from messaging.broker import Broker
from messaging.brokers import create_broker
from messaging.delivery import DeliveryManager
from messaging.leases import Leases, holder_name
from messaging.push import HttpPusher
from messaging.relay import Relay
from messaging.threads import Threads
from registry import principals, signing_keys
from registry.crud import connectors
from registry.models import Connector as ConnectorRow
from registry.revision import current
from registry.sealing import KeyRing, ring_of
from schemas.cache import ValidatorCache

log = logging.getLogger(__name__)

CONNECTOR_GRACE_SECONDS = 60.0
# a replaced connector stays open for requests still using it


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        attach_ring(self.engine, settings)  # before the migrations: 0014 seals with it
        self.writer = AuditWriter(self.engine, batch_max=settings.audit_batch_max)
        self.audit_key_file = settings.audit_key_file or default_key_file(settings.database_url)
        self.audit_log = AuditLog(
            self.engine,
            signers=load_signers(
                self.audit_key_file,
                name=settings.audit_origin,
                generate=settings.environment == "development",
            ),
            origin=settings.audit_origin,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
            retention_days=settings.audit_retention_days,
            writer=self.writer,
        )
        self.validators = ValidatorCache()
        self.snapshot = Snapshot(revision=-1)
        self._subject_key = settings.subject_hmac_key.encode()
        self._connectors: dict[str, tuple[str, Connector]] = {}
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._loading: asyncio.Future[tuple[Snapshot, list[Connector]] | None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        # Active health checks of the providers, by this process (connectors/health.py).
        self.health = HealthMonitor()
        # Messaging: the broker, the outbox relay and push delivery (started with the process).
        self.broker: Broker = create_broker(
            settings.broker,
            engine=self.engine,
            bootstrap=settings.kafka_bootstrap,
            prefix=settings.kafka_topic_prefix,
            on_created=self._topic_created,
        )
        self.leases = Leases(self.engine, holder=holder_name(), seconds=settings.lease_seconds)
        self.threads = Threads()
        self.relay = Relay(
            self.engine,
            self.broker,
            self.leases,
            lambda: self.snapshot.topics,
            revision=lambda: self.snapshot.revision,
            threads=self.threads,
            batch=settings.relay_batch,
            on_appended=lambda: self.delivery.appended(),
        )
        self.pusher = HttpPusher(max_connections=settings.delivery_in_flight)
        self.delivery = DeliveryManager(
            engine=self.engine,
            broker=self.broker,
            leases=self.leases,
            pusher=self.pusher,
            record=self.writer.write,
            on_gone=self._subscription_gone,
            subscriptions=lambda: self.snapshot.subscriptions,
            topics=lambda: self.snapshot.topics,
            threads=self.threads,
            in_flight=settings.delivery_in_flight,
            window=settings.delivery_window,
        )
        self._messaging = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._archiver: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._prepare_database)
        await self.audit_log.start()
        if self.settings.audit_retention_days is not None:
            directory = self.settings.audit_archive_dir or retention.default_archive_dir(
                self.settings.database_url, self.audit_key_file
            )
            self._archiver = asyncio.create_task(
                retention.run_daily(
                    self.engine,
                    retention_days=self.settings.audit_retention_days,
                    directory=directory,
                ),
                name="audit-archiver",
            )
        await self.reload()
        self._poller = asyncio.create_task(self._poll(), name="registry-poller")
        self.relay.start()
        self._messaging = True
        await self.delivery.sync()

    async def stop(self) -> None:
        if self._archiver is not None:
            self._archiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._archiver
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._loading is not None:
            with contextlib.suppress(Exception):
                await self._loading
        self._messaging = False
        await self.relay.stop()
        await self.delivery.stop()
        await self.pusher.aclose()
        await asyncio.to_thread(self.broker.close)  # wakes fetches waiting for messages
        if not await self.threads.idle(10.0):
            log.warning("%d messaging calls still running at shutdown", self.threads.running)
        self.threads.close()
        retiring = list(self._retiring)
        for task in retiring:
            task.cancel()
        await self.health.stop()
        await asyncio.gather(*retiring, return_exceptions=True)
        for _, connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()
        await self.audit_log.stop()  # a signed record that the log stopped, then the last pass
        await self.writer.aclose()
        self.engine.dispose()

    def _prepare_database(self) -> None:
        migrate(self.engine)
        with Session(self.engine) as session:
            signing_keys.ensure_key(session)  # access tokens need a key: EdDSA on first start
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
                self.health.sync(self.connectors())
                for connector in stale:
                    self._retire(connector)
                if self._messaging:
                    await self.delivery.sync()

    def _load_if_changed(self) -> tuple[Snapshot, list[Connector]] | None:
        with Session(self.engine) as session:
            if current(session) == self.snapshot.revision:
                return None
        return self._build()

    def _build(self) -> tuple[Snapshot, list[Connector]]:
        with Session(self.engine) as session:
            live: dict[str, tuple[str, Connector]] = {}
            broken: dict[str, str] = {}
            rows = list(session.exec(select(ConnectorRow)))
            for row in rows:
                fingerprint = connector_fingerprint(row)
                known = self._connectors.get(row.name)
                if known is not None and known[0] == fingerprint:
                    live[row.name] = known
                    continue
                try:
                    opened = connectors.with_secret_opened(row, ring_of(session))
                    live[row.name] = (fingerprint, limited(create_connector(opened), row))
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
                connector_headers={
                    row.name: (row.base_url, _static_headers(row, ring_of(session))) for row in rows
                },
            )
        return snapshot, stale

    def _retire(self, connector: Connector) -> None:
        async def close_later() -> None:
            try:
                await asyncio.sleep(CONNECTOR_GRACE_SECONDS)
            finally:  # also when stop() cancels the wait: its client is closed all the same
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

    async def _subscription_gone(self, name: str, reason: str) -> None:
        """A receiver answered 410 Gone: disable its subscription (recorded), until resumed."""
        await asyncio.to_thread(operations.disable_gone, self.engine, name, reason)
        # Not awaited: the reload stops the very worker that is calling here.
        task = asyncio.create_task(self.reload())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _topic_created(self, topic: str) -> None:
        """The broker had to create `topic` (called in a broker thread, before any record is
        sent to it): if it had a log before, its subscriptions start again at 0."""
        if operations.replay_lost_topic(self.engine, topic):
            # Before returning (and so before any record reaches the new log): workers still
            # at the old positions must not push what they read there.
            self.delivery.log_replaced(topic)
            log.warning("topic %s was created again: its subscriptions resume at 0", topic)
            if self._loop is not None:  # stop the stale workers now, not at the next poll
                self._loop.call_soon_threadsafe(self._reload_soon)

    def _reload_soon(self) -> None:
        task = asyncio.create_task(self.reload())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # ------------------------------------------------------------ helpers for the data plane

    def connectors(self) -> dict[str, Connector]:
        """The live connectors of this process, by name, as built: a connector held to a
        max_in_flight is wrapped for the data plane; health checks and reports see what it
        wraps."""
        return {name: unwrapped(connector) for name, (_, connector) in self._connectors.items()}

    def subject_hash(self, identifier: str) -> str:
        """The keyed hash under which a data subject appears in the audit log."""
        return subject_hash(self._subject_key, identifier)


def _static_headers(row: ConnectorRow, ring: KeyRing) -> dict[str, str]:
    """The connector's fixed credentials (API key, basic) for pushes to it."""
    try:
        opened = connectors.with_secret_opened(row, ring)
        return dict(build_auth(opened.auth_config()).static_headers)
    except Exception:  # a broken connector is reported by the snapshot; push without them
        return {}
