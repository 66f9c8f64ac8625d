"""What the fault tests share: a hub in an OS process of its own, which a test can SIGKILL, and
the zero-loss accounting every fault test (and the order property test) ends with.

The hub runs as `lgsp serve` does (`python -m gateway.cli serve`), configured by `LGSP_*`
variables, in a session of its own so that a SIGKILL to its process group leaves nothing behind
and gives it no chance to flush, commit or release anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.settings import Settings
from registry import keys
from tests.conftest import RunningHub, free_port
from tests.wait import wait_until

READY_SECONDS = 60.0  # a loaded 2-core machine starts a hub (migrations, snapshot) slowly


# --------------------------------------------------------------------------- zero-loss accounting


@dataclass(frozen=True, slots=True)
class Push:
    """One push the receiver saw, and what it answered (None: no answer reached the hub)."""

    webhook_id: str
    body: bytes
    status: int | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Tally:
    """What the accounting found, for the test's own further assertions and messages."""

    delivered: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    copies: Counter[str] = field(default_factory=Counter)  # 2xx pushes per message id

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.copies.values() if n > 1)


def check_zero_loss(
    accepted: Mapping[str, Any],
    pushes: Sequence[Push],
    *,
    order: Mapping[str, Sequence[str]] | None = None,
    dead: Mapping[str, Mapping[str, Any]] | None = None,
    exactly_once: bool = False,
    explain: Callable[[list[str]], str] | None = None,
) -> Tally:
    """Assert the promise of the messaging runtime, for one subscription:

    - every message the hub accepted (answered 202: `accepted`, id -> value as published) was
      delivered (a 2xx push) or dead-lettered (`dead`, id -> dead letter) with its reason,
      attempts and first and last error, and not both;
    - nothing was pushed that the hub had not accepted, and every push of an id carries that
      message's value: a duplicate carries the same webhook-id as the original, never a new one;
    - with `order` (key -> ids in publish order): per key, the first successful push of each
      message comes in publish order (dead-lettered ones left out);
    - with `exactly_once`: no message was successfully pushed twice.

    `explain` says what the hub knows of lost messages (their attempts, the positions), for
    the failure's message.
    """
    dead = dead or {}
    tally = Tally(dead=set(dead))
    strangers = sorted({p.webhook_id for p in pushes} - set(accepted))
    assert not strangers, f"{len(strangers)} pushed messages were never accepted: {strangers[:5]}"
    ids_of_value: dict[bytes, set[str]] = defaultdict(set)
    for push in pushes:
        value = orjson.loads(push.body)
        assert value == accepted[push.webhook_id], (
            f"webhook-id {push.webhook_id} carried {value}, "
            f"but that message is {accepted[push.webhook_id]}"
        )
        ids_of_value[orjson.dumps(value, option=orjson.OPT_SORT_KEYS)].add(push.webhook_id)
        if push.delivered:
            tally.copies[push.webhook_id] += 1
    renamed = {value: ids for value, ids in ids_of_value.items() if len(ids) > 1}
    assert not renamed, f"one message pushed under several webhook-ids: {list(renamed.items())[:3]}"
    tally.delivered = set(tally.copies)
    strange_dead = sorted(set(dead) - set(accepted))
    assert not strange_dead, f"dead letters of messages never accepted: {strange_dead[:5]}"
    both = sorted(tally.delivered & set(dead))
    assert not both, f"{len(both)} messages both delivered and dead-lettered: {both[:5]}"
    for message_id, letter in dead.items():
        assert letter.get("reason"), f"dead letter {message_id} has no reason: {letter}"
        assert letter.get("attempts", 0) >= 1, f"dead letter {message_id}: {letter}"
        assert letter.get("first_error") and letter.get("last_error"), (
            f"dead letter {message_id} lacks its first or last error: {letter}"
        )
    lost = sorted(set(accepted) - tally.delivered - set(dead))
    if lost:
        context = ""
        if explain is not None:
            try:
                context = "\n" + explain(lost)
            except Exception as exc:  # the loss is the failure; its context is a bonus
                context = f"\n(no context: {exc!r})"
        raise AssertionError(
            f"{len(lost)} of {len(accepted)} accepted messages were neither delivered nor "
            f"dead-lettered, e.g. {[accepted[i] for i in lost[:5]]}{context}"
        )
    if exactly_once:
        twice = {i: n for i, n in tally.copies.items() if n > 1}
        assert not twice, f"{len(twice)} messages delivered more than once: {list(twice)[:5]}"
    if order is not None:
        key_of = {message_id: key for key, ids in order.items() for message_id in ids}
        assert set(key_of) == set(accepted), "`order` must name every accepted message once"
        firsts: dict[str, list[str]] = defaultdict(list)
        seen: set[str] = set()
        for push in pushes:
            if push.delivered and push.webhook_id not in seen:
                seen.add(push.webhook_id)
                firsts[key_of[push.webhook_id]].append(push.webhook_id)
        for key, ids in order.items():
            expected = [i for i in ids if i not in dead]
            got = firsts.get(key, [])
            assert got == expected, (
                f"key {key}: delivered in the order {[accepted[i] for i in got]}, "
                f"published as {[accepted[i] for i in expected]}"
            )
    return tally


# --------------------------------------------------------------------------- a hub process


@dataclass
class HubProcess:
    """`lgsp serve` on a loopback port; started, killed and started again on one database."""

    database_url: str
    port: int
    admin_key: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running_hub(self) -> RunningHub:
        """The handle the channel helpers take (they only call its HTTP API)."""
        return RunningHub(
            url=self.url,
            admin_key=self.admin_key,
            settings=Settings(database_url=self.database_url),
            hub=None,  # type: ignore[arg-type]  # in another process: reached over HTTP only
        )

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: SIGKILL reaches every child
            )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:  # fails the wait at once
                raise RuntimeError(f"the hub exited with {process.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(ready, timeout=READY_SECONDS, interval=0.1, what="the hub to answer /readyz")
        except AssertionError as timed_out:
            self.kill()
            raise AssertionError(f"{timed_out}\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL, no warning: nothing is flushed, committed or released."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]


@contextmanager
def hub_process(
    database_url: str,
    *,
    broker: str = "database",
    kafka_bootstrap: str | None = None,
    lease_seconds: float = 2.0,
    **settings: str,
) -> Iterator[HubProcess]:
    """A started hub process, killed when the block ends.

    Leases are short (`lease_seconds`): a killed hub's relay and delivery leases expire soon,
    so the next hub on the database takes them over within the test's patience.
    """
    env = {
        **os.environ,
        "LGSP_DATABASE_URL": database_url,
        "LGSP_BOOTSTRAP_ADMIN_KEY": (admin_key := keys.issue_key(pepper="unused").key),
        "LGSP_REGISTRY_POLL_SECONDS": "0.2",
        "LGSP_LEASE_SECONDS": str(lease_seconds),
        "LGSP_BROKER": broker,
        "LGSP_LOG_LEVEL": "warning",
        **{f"LGSP_{name.upper()}": value for name, value in settings.items()},
    }
    if kafka_bootstrap is not None:
        env["LGSP_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    with tempfile.NamedTemporaryFile(prefix="lgsp-hub-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    hub = HubProcess(database_url, free_port(), admin_key, env, log_path)
    try:
        hub.start()
        yield hub
    finally:
        hub.kill()
        log_path.unlink(missing_ok=True)
