"""Active health checks of providers: `GET {base_url}{health_path}` every `interval` seconds.

Each hub process checks the connectors it holds (one asyncio task per connector with a
`health_path`; every base URL of the connector is checked). What a process learns it keeps in
memory: with several workers or replicas each one checks and reports for itself, which costs a
provider one request per interval per process and shows what that process sees.

A base URL is `unknown` until `healthy_threshold` checks in a row succeed (then `healthy`) or
`unhealthy_threshold` checks in a row fail (then `unhealthy`). A connector is healthy when one
of its URLs is (a failover URL still serves), unhealthy when all are, unknown otherwise. Checks
are information for operators: they neither open the circuit breaker nor refuse calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.http_connector import HttpConnector
from registry.connector_settings import HealthCheck
from registry.types import utcnow

log = logging.getLogger(__name__)

HISTORY = 50  # checks kept per connector, newest last


class Health(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class Check:
    """One health check of one base URL."""

    time: datetime
    url: int  # index in the connector's base_urls
    ok: bool
    status: int | None  # the provider's HTTP status, when it answered
    error: str | None  # what failed, in the words of connectors/errors.py
    latency_ms: float


@dataclass(slots=True)
class Tracker:
    """The state of one base URL, moved by consecutive outcomes past a threshold."""

    policy: HealthCheck
    state: Health = Health.UNKNOWN
    since: datetime = field(default_factory=utcnow)
    successes: int = 0  # in a row
    failures: int = 0  # in a row
    last_error: str | None = None

    def observe(self, ok: bool, error: str | None, now: datetime) -> None:
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.policy.healthy_threshold:
                self._move(Health.HEALTHY, now)
        else:
            self.successes, self.failures = 0, self.failures + 1
            self.last_error = error
            if self.failures >= self.policy.unhealthy_threshold:
                self._move(Health.UNHEALTHY, now)

    def _move(self, state: Health, now: datetime) -> None:
        if state is not self.state:
            self.state, self.since = state, now


def overall(trackers: list[Tracker]) -> Health:
    states = {t.state for t in trackers}
    if Health.HEALTHY in states:
        return Health.HEALTHY
    if states == {Health.UNHEALTHY}:
        return Health.UNHEALTHY
    return Health.UNKNOWN


@dataclass(slots=True)
class Watch:
    connector: HttpConnector
    trackers: list[Tracker]
    history: deque[Check] = field(default_factory=lambda: deque(maxlen=HISTORY))
    task: asyncio.Task[None] | None = None

    def report(self) -> dict[str, Any]:
        state = overall(self.trackers)
        changed = [t.since for t in self.trackers if t.state is state] or [
            min(t.since for t in self.trackers)
        ]
        errors = [t.last_error for t in self.trackers if t.last_error and t.failures]
        return {
            "state": state.value,
            "since": min(changed),
            "last_error": errors[0] if errors else None,
            "urls": [
                {
                    "url": url,
                    "state": t.state.value,
                    "since": t.since,
                    "last_error": t.last_error if t.failures else None,
                }
                for url, t in zip(self.connector.upstreams.urls, self.trackers, strict=True)
            ],
            "history": [asdict(check) for check in self.history],
        }


class HealthMonitor:
    """The health-check tasks of this process, one per connector with a health path."""

    def __init__(
        self, *, now: Callable[[], datetime] = utcnow, sleep: Callable[[float], Any] = asyncio.sleep
    ) -> None:
        self._watches: dict[str, Watch] = {}
        self._now = now
        self._sleep = sleep

    def sync(self, connectors: Mapping[str, Connector]) -> None:
        """Check what `connectors` holds now: a new or rebuilt connector starts unknown."""
        for name, watch in list(self._watches.items()):
            if connectors.get(name) is not watch.connector:
                self._forget(name)
        for name, connector in connectors.items():
            if name in self._watches or not isinstance(connector, HttpConnector):
                continue
            if connector.config.health_path is None:
                continue
            policy = connector.config.health
            watch = Watch(connector, [Tracker(policy) for _ in connector.upstreams.urls])
            watch.task = asyncio.create_task(self._run(watch), name=f"health-{name}")
            self._watches[name] = watch

    def report(self, name: str) -> dict[str, Any] | None:
        """The connector's health, or None when it has no health check (here)."""
        watch = self._watches.get(name)
        return watch.report() if watch is not None else None

    def summary(self) -> dict[str, dict[str, Any]]:
        """Every checked connector's state and since when, by name."""
        out = {}
        for name, watch in sorted(self._watches.items()):
            report = watch.report()
            out[name] = {k: report[k] for k in ("state", "since", "last_error")}
        return out

    async def stop(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _forget(self, name: str) -> None:
        watch = self._watches.pop(name)
        if watch.task is not None:
            watch.task.cancel()

    async def _run(self, watch: Watch) -> None:
        policy = watch.connector.config.health
        urls = range(len(watch.trackers))
        while True:
            await asyncio.gather(*(self._check(watch, url) for url in urls))
            await self._sleep(policy.interval)

    async def _check(self, watch: Watch, url: int) -> None:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            status = await watch.connector.check_health(url)
        except ConnectorError as exc:
            status, error = exc.provider_status, exc.detail
        except Exception as exc:  # a defect must not stop the checks of this connector
            log.exception("health check of %s failed", watch.connector.name)
            error = f"internal: {type(exc).__name__}"
        now = self._now()
        ok = error is None
        watch.trackers[url].observe(ok, error, now)
        took = round((time.perf_counter() - started) * 1000, 1)
        watch.history.append(Check(now, url, ok, status, error, took))
