"""Faults and proof: the messaging runtime loses nothing when its parts fail.

Each test publishes through the hub's API while something breaks (the Kafka broker paused or
replaced, the relay stopped, the hub process SIGKILLed, the subscriber down, failing, gone or
slow), then ends with the same accounting (`check_zero_loss`): every message answered 202 is
delivered or dead-lettered with its reason, nothing is delivered that the hub did not accept,
a duplicate carries the same webhook-id, and (where the test says) order per key is kept.

The receiver here answers by the message itself (`mode`: ok, flaky, slow, fail) and can be
stopped and started again on its port; every push it saw is kept with what it answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.runtime import Runtime
from messaging.models import Message
from simulators.server import run_in_thread
from tests.conftest import RunningHub, free_port, start_hub
from tests.integration.conftest import audit_records
from tests.integration.messaging.hub_process import Push, Tally, check_zero_loss, hub_process
from tests.integration.messaging.receiver import Channel, make_channel
from tests.kafka import Broker as TansuServer
from tests.kafka import running_broker
from tests.wait import wait_until

pytestmark = pytest.mark.slow

SLOW_SECONDS = 1.0  # a `slow` message's first answer comes this late (after the hub gave up)
FLAKY_FAILURES = 2  # a `flaky` message is answered 503 this many times first
QUICK = {"delays": [0.05], "jitter": 0, "max_attempts": 100, "timeout": 2}

# --------------------------------------------------------------------------- the receiver


@dataclass
class Hook:
    """What one subscription's endpoint saw, and whether it answers 410 Gone to everything."""

    pushes: list[Push] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # last push of each id
    attempts: Counter[str] = field(default_factory=Counter)
    gone: bool = False

    def delivered(self) -> set[str]:
        return {p.webhook_id for p in self.pushes if p.delivered}


HOOKS: dict[str, Hook] = {}


async def receive(request: Request) -> Response:
    hook = HOOKS.setdefault(request.path_params["tag"], Hook())
    body = await request.body()
    webhook_id = request.headers.get("webhook-id", "")
    hook.attempts[webhook_id] += 1
    mode = orjson.loads(body).get("mode", "ok")
    status = 200
    if hook.gone:
        status = 410
    elif mode == "fail":
        status = 500
    elif mode == "flaky" and hook.attempts[webhook_id] <= FLAKY_FAILURES:
        status = 503
    hook.headers[webhook_id] = dict(request.headers)
    hook.pushes.append(Push(webhook_id, body, status))  # in the order they came
    if mode == "slow" and hook.attempts[webhook_id] == 1:
        await asyncio.sleep(SLOW_SECONDS)  # the hub times out meanwhile: it will push again
    extra = {"Retry-After": "0"} if status == 503 else {}
    return JSONResponse({"status": status}, status_code=status, headers=extra)


class Receiver:
    """The webhook endpoint on a fixed loopback port; `stop` closes the port (connections are
    refused), `start` listens on it again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.app = Starlette(routes=[Route("/hooks/{tag}", receive, methods=["POST"])])
        self._running: contextlib.ExitStack | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        stack = contextlib.ExitStack()
        stack.enter_context(run_in_thread(self.app, port=self.port))
        self._running = stack

    def stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def hook_of(channel: Channel) -> Hook:
    return HOOKS.setdefault(channel.topic.removeprefix("test.t"), Hook())


# --------------------------------------------------------------------------- publishing


@dataclass
class Ledger:
    """What the hub accepted (202): id -> value, and per key the ids in publish order."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, values: list[dict[str, Any]], answer: dict[str, Any]) -> list[str]:
        """The 202's ids; a duplicate of a message already noted (a re-send) is noted once."""
        ids = []
        with self.lock:
            for message in answer["messages"]:
                ids.append(message["id"])
                if message["id"] in self.accepted:
                    continue
                value = values[message["index"]]
                assert message["key"] == value["id"]
                self.accepted[message["id"]] = value
                self.order[value["id"]].append(message["id"])
        return ids

    def __len__(self) -> int:
        with self.lock:
            return len(self.accepted)


def publish(
    client: httpx.Client, channel: Channel, values: list[dict[str, Any]], idem: str | None = None
) -> httpx.Response:
    """One batch; with `idem`, message i carries the idempotency key `{idem}:{i}`."""
    messages = [
        {"value": v, **({"idempotency_key": f"{idem}:{i}"} if idem else {})}
        for i, v in enumerate(values)
    ]
    return client.post(f"/topics/{channel.topic}/messages", json={"messages": messages})


def publish_ok(
    channel: Channel, ledger: Ledger, values: list[dict[str, Any]], url: str | None = None
) -> list[str]:
    with httpx.Client(
        base_url=url or channel.hub.url, headers={"X-API-Key": channel.producer_key}, timeout=30
    ) as client:
        answer = publish(client, channel, values)
    assert answer.status_code == 202, answer.text
    return ledger.note(values, answer.json())


class Burst(threading.Thread):
    """A producer publishing batches back to back (each key in its own sequence of `n`) until
    stopped; what it was answered 202 goes to the ledger. A batch that got no answer (the hub
    died under it) is kept, with its idempotency key, for the test to send again."""

    def __init__(
        self,
        channel: Channel,
        ledger: Ledger,
        *,
        keys: list[str],
        per_key: int = 3,
        pause: float = 0.02,
        idem: str | None = None,
    ) -> None:
        super().__init__(name=f"burst-{keys[0]}", daemon=True)
        self.channel, self.ledger, self.keys = channel, ledger, keys
        self.per_key, self.pause, self.idem = per_key, pause, idem
        self.halt = threading.Event()
        self.go = threading.Event()  # cleared: hold before the next batch
        self.go.set()
        self.holding = threading.Event()
        self.batches = 0  # answered 202
        self.unanswered: list[tuple[str | None, list[dict[str, Any]]]] = []
        self.refused: list[str] = []
        self.errors: list[BaseException] = []
        self._n = 0

    def values(self) -> list[dict[str, Any]]:
        out = []
        for _ in range(self.per_key):
            for key in self.keys:
                out.append({"id": key, "n": self._n})
                self._n += 1
        return out

    def run(self) -> None:
        try:
            with httpx.Client(
                base_url=self.channel.hub.url,
                headers={"X-API-Key": self.channel.producer_key},
                timeout=30,
            ) as client:
                while not self.halt.is_set():
                    if not self.go.is_set():
                        self.holding.set()
                        self.go.wait()
                        continue
                    values = self.values()
                    idem = f"{self.idem}-{self.batches}-{self._n}" if self.idem else None
                    try:
                        answer = publish(client, self.channel, values, idem)
                    except httpx.TransportError:
                        self.unanswered.append((idem, values))
                        return  # the hub is gone: the test sends this batch again
                    if answer.status_code != 202:
                        self.refused.append(f"{answer.status_code} {answer.text[:300]}")
                        return
                    self.ledger.note(values, answer.json())
                    self.batches += 1
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by finish(), not lost in a thread
            self.errors.append(exc)

    def hold(self) -> None:
        """Publish nothing more until `release` (returns once the batch under way is done)."""
        self.holding.clear()
        self.go.clear()
        assert self.holding.wait(timeout=30) or not self.is_alive(), "the producer went on"

    def release(self) -> None:
        self.go.set()

    def finish(self) -> None:
        self.halt.set()
        self.go.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the producer did not stop"
        assert not self.errors, self.errors
        assert not self.refused, self.refused


def dead_letters(channel: Channel) -> dict[str, dict[str, Any]]:
    answer = channel.admin("GET", "/dead-letters", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {item["message_id"]: item for item in answer.json()["items"]}


def positions(channel: Channel) -> dict[str, Any]:
    answer = channel.admin("GET", "/positions")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def wait_settled(
    channel: Channel, ledger: Ledger, *, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """Until every accepted message is delivered or dead-lettered; the dead letters."""
    hook = hook_of(channel)
    dead: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        nonlocal dead
        missing = set(ledger.accepted) - hook.delivered()
        if missing:
            dead = dead_letters(channel)
            missing -= set(dead)
        return not missing

    with contextlib.suppress(AssertionError):  # the accounting says what is missing, precisely
        wait_until(settled, timeout=timeout, interval=0.2, what="every message delivered or dead")
    return dead


def explainer(channel: Channel) -> Callable[[list[str]], str]:
    """What the hub recorded of lost messages: each attempt, and where delivery stands."""

    def explain(lost: list[str]) -> str:
        lines = []
        for message_id in lost[:3]:
            records = audit_records(channel.hub, kind="delivery", message_id=message_id)
            attempts = "; ".join(
                f"#{r['attempts']} {r['hub_status']} {r['error']}" for r in records[:5]
            )
            lines.append(f"{message_id}: {len(records)} attempts recorded: {attempts}")
        positions = channel.admin("GET", "/positions")
        lines.append(f"positions: {positions.text[:1000]}")
        return "\n".join(lines)

    return explain


def settle_and_account(
    channel: Channel,
    ledger: Ledger,
    *,
    timeout: float = 60,
    dead_expected: set[str] | None = None,
    exactly_once: bool = False,
) -> Tally:
    """Wait until everything is delivered or dead-lettered, then the zero-loss accounting;
    dead-lettered are exactly `dead_expected` (none unless said)."""
    dead = wait_settled(channel, ledger, timeout=timeout)
    tally = check_zero_loss(
        ledger.accepted,
        hook_of(channel).pushes,
        order=ledger.order,
        dead=dead,
        exactly_once=exactly_once,
        explain=explainer(channel),
    )
    unexpected = {i: d["reason"] for i, d in dead.items() if i not in (dead_expected or set())}
    assert not unexpected, f"dead-lettered: {unexpected}"
    assert set(dead) == (dead_expected or set())
    return tally


def verify_signatures(channel: Channel) -> None:
    hook = hook_of(channel)
    assert channel.secret is not None
    verifier = Webhook(channel.secret)
    for push in hook.pushes[:: max(1, len(hook.pushes) // 20)]:  # a sample of them
        headers = hook.headers[push.webhook_id]
        assert verifier.verify(push.body, headers) == orjson.loads(push.body)


def keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{secrets.token_hex(2)}-{i}" for i in range(count)]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def new_channel() -> Iterator[Callable[..., Channel]]:
    """`make_channel`, its subscription deleted after the test: its delivery stops, and the
    next tests on the shared hub do not share the machine with it."""
    made: list[Channel] = []

    def make(hub: RunningHub, url: str, **kwargs: Any) -> Channel:
        channel = make_channel(hub, url, **kwargs)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        with contextlib.suppress(httpx.HTTPError):
            channel.admin("DELETE", "")


@dataclass
class KafkaRig:
    """A hub on a Kafka broker of its own, which the test may pause, kill and replace."""

    hub: RunningHub
    broker: TansuServer
    brokers: contextlib.ExitStack  # closed after the hub stopped

    def replace_broker(self) -> None:
        """SIGKILL the broker (still stopped if paused: it runs no more, acknowledges nothing),
        then start an empty one on the same port."""
        self.broker.process.kill()
        self.broker.process.wait(timeout=10)
        self.broker = self.brokers.enter_context(running_broker(self.broker.port))


@pytest.fixture
def kafka_rig(database_urls: Callable[[str], str]) -> Iterator[KafkaRig]:
    with contextlib.ExitStack() as brokers:
        broker = brokers.enter_context(running_broker())
        for hub in start_hub(
            database_urls("sqlite"), broker="kafka", kafka_bootstrap=broker.bootstrap
        ):
            yield KafkaRig(hub, broker, brokers)


# --------------------------------------------------------------------------- Kafka broker faults


def test_kafka_paused_mid_stream_loses_nothing(
    kafka_rig: KafkaRig, receiver: Receiver, new_channel: Callable[..., Channel]
) -> None:
    """SIGSTOP the broker for 3 s while a producer publishes: publishing goes on (the outbox
    holds the messages), and after SIGCONT everything arrives, in order per key."""
    hub, broker = kafka_rig.hub, kafka_rig.broker
    channel = new_channel(hub, receiver.url, retry=QUICK)
    ledger = Ledger()
    burst = Burst(channel, ledger, keys=keys("K", 6))
    burst.start()
    wait_until(lambda: len(hook_of(channel).delivered()) >= 60, what="60 messages delivered")
    broker.pause()
    before = len(ledger)
    time.sleep(3.0)
    during = len(ledger) - before
    broker.resume()
    time.sleep(1.0)
    burst.finish()
    tally = settle_and_account(channel, ledger)
    assert during >= 30, f"only {during} messages were accepted while the broker was paused"
    assert len(tally.delivered) == len(ledger) >= 150
    verify_signatures(channel)


@pytest.mark.parametrize("outage", [1.0, 12.0], ids=["short-outage", "long-outage"])
def test_kafka_killed_with_unsent_outbox_then_a_fresh_broker(
    outage: float,
    kafka_rig: KafkaRig,
    receiver: Receiver,
    new_channel: Callable[..., Channel],
) -> None:
    """Pause the broker, publish (the relay cannot hand anything over), SIGKILL it and start an
    empty one on the same port: every message of that batch arrives, in order per key.

    Messages delivered before the pause set the subscription's positions past 0; the fresh
    broker's log starts again at offset 0. A long outage (more than the broker client's 10 s
    timeout) makes delivery's reads give up: its worker restarts from the stored positions."""
    channel = new_channel(kafka_rig.hub, receiver.url, retry=QUICK)
    names = keys("F", 6)
    before = Ledger()
    publish_ok(channel, before, [{"id": k, "n": n} for n in range(5) for k in names])
    settle_and_account(channel, before)
    wait_until(lambda: positions(channel)["lag"] == 0, what="positions saved past every message")

    kafka_rig.broker.pause()
    checked = Ledger()
    for start in range(100, 160, 20):
        publish_ok(channel, checked, [{"id": k, "n": start + n} for n in range(4) for k in names])
    time.sleep(outage)  # the relay tries: nothing can be acknowledged by a stopped broker
    kafka_rig.replace_broker()
    dead = wait_settled(channel, checked, timeout=30)
    hook = hook_of(channel)
    pushes = [p for p in hook.pushes if p.webhook_id in checked.accepted]
    check_zero_loss(
        checked.accepted, pushes, order=checked.order, dead=dead, explain=explainer(channel)
    )
    assert not dead, {i: d["reason"] for i, d in dead.items()}
    # Nothing else either: each push is of a message accepted before or after the pause.
    check_zero_loss({**before.accepted, **checked.accepted}, hook.pushes)


# --------------------------------------------------------------------------- the relay


@pytest.fixture
def hub_loop(mhub: RunningHub) -> asyncio.AbstractEventLoop:
    """The event loop the hub runs in (where its relay task lives)."""
    task = mhub.hub.runtime.relay._task
    assert task is not None, "the relay is not running"
    return task.get_loop()


def on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine in the hub's event loop (the hub serves in a thread of this process)."""
    asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=15)


def start_relay(runtime: Runtime, loop: asyncio.AbstractEventLoop) -> None:
    async def start() -> None:
        runtime.relay.start()

    on_loop(loop, start)


def stop_relay(runtime: Runtime, loop: asyncio.AbstractEventLoop, *, as_woken: bool) -> None:
    """Stop the relay task; `as_woken`: in the same turn of the loop as a publish wakes it (a
    publish that comes in as the process shuts down)."""
    task = runtime.relay._task

    async def stop() -> None:
        if as_woken:
            runtime.relay.wake()
        await runtime.relay.stop()

    stopping = asyncio.run_coroutine_threadsafe(stop(), loop)
    try:
        stopping.result(timeout=15)
    except TimeoutError:
        stack = io.StringIO()
        assert task is not None
        state = repr(task)
        task.print_stack(file=stack)
        # Cancel it again (and start a relay) so that the next tests on this hub have one.
        loop.call_soon_threadsafe(task.cancel)
        stopping.result(timeout=15)
        start_relay(runtime, loop)
        pytest.fail(
            f"relay.stop() did not return within 15 s: the relay task ({state}) was asked to "
            f"stop and goes on running:\n{stack.getvalue()}"
        )


def outbox(runtime: Runtime, topic: str) -> int:
    table = Message.__table__  # type: ignore[attr-defined]
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.topic == topic, table.c.relayed_at.is_(None))
            ).scalar_one()
        )


def test_relay_stopped_mid_burst_and_started_again(
    mhub: RunningHub,
    receiver: Receiver,
    hub_loop: asyncio.AbstractEventLoop,
    new_channel: Callable[..., Channel],
) -> None:
    """Stop the relay task several times while a producer publishes (a stop may cancel it
    between its send and its mark), start it again: everything arrives in order per key; on
    the embedded log, each message exactly once."""
    runtime: Runtime = mhub.hub.runtime
    channel = new_channel(mhub, receiver.url, retry=QUICK)
    ledger = Ledger()
    burst = Burst(channel, ledger, keys=keys("R", 5), pause=0.005)
    burst.start()
    try:
        for round_ in range(4):
            relayed = runtime.relay.relayed
            wait_until(
                lambda: runtime.relay.relayed > relayed + 20,
                timeout=30,
                what="20 more messages relayed",
            )
            if round_ % 2 == 0:  # in the middle of the burst, at a different moment each time
                time.sleep(0.007 * round_)
                stop_relay(runtime, hub_loop, as_woken=False)
            else:  # idle, as a publish wakes it (a publish coming in as the hub shuts down)
                burst.hold()
                wait_until(
                    lambda: outbox(runtime, channel.topic) == 0,
                    timeout=30,
                    what="the outbox emptied by the relay",
                )
                time.sleep(0.05)
                stop_relay(runtime, hub_loop, as_woken=True)
                burst.release()
            stopped_at = runtime.relay.relayed
            # Three batches accepted since the stop, each of them waking the relay: a relay that
            # ran would have taken some of them (its count would have moved).
            batch = len(burst.keys) * burst.per_key
            wait_until(
                lambda: outbox(runtime, channel.topic) >= 3 * batch,
                timeout=10,
                what=f"{3 * batch} messages accepted since the relay stopped, left in the outbox",
            )
            assert runtime.relay.relayed == stopped_at, "the relay ran while stopped"
            start_relay(runtime, hub_loop)
    finally:
        burst.finish()
    settle_and_account(channel, ledger, exactly_once=runtime.broker.name == "database")
    assert outbox(runtime, channel.topic) == 0


# --------------------------------------------------------------------------- the hub process


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hub_sigkilled_during_a_publish_burst(
    backend: str, database_urls: Callable[[str], str], receiver: Receiver
) -> None:
    """SIGKILL the hub process while three producers publish batches with idempotency keys;
    start a new hub on the same database; each producer sends again the batch it got no answer
    for. Every acknowledged message is delivered, and nothing else arrives."""
    with hub_process(database_urls(backend)) as process:
        channel = make_channel(process.running_hub(), receiver.url, retry=QUICK)
        ledger = Ledger()
        bursts = [
            Burst(channel, ledger, keys=keys(f"P{i}-", 2), per_key=5, pause=0, idem=f"b{i}")
            for i in range(3)
        ]
        for burst in bursts:
            burst.start()
        wait_until(
            lambda: sum(b.batches for b in bursts) >= 30,
            timeout=60,
            what="30 batches accepted",
        )
        wait_until(
            lambda: len(hook_of(channel).delivered()) >= 20,
            timeout=30,
            what="20 messages delivered",
        )
        process.kill()
        for burst in bursts:
            burst.finish()
        unanswered = [batch for burst in bursts for batch in burst.unanswered]
        assert len(unanswered) == len(bursts), "each producer had a batch in flight, or next"
        process.start()
        duplicates = 0
        with httpx.Client(
            base_url=process.url, headers={"X-API-Key": channel.producer_key}, timeout=30
        ) as client:
            for idem, values in unanswered:
                answer = publish(client, channel, values, idem)
                assert answer.status_code == 202, answer.text
                duplicates += sum(m["duplicate"] for m in answer.json()["messages"])
                ledger.note(values, answer.json())
        for burst in bursts:  # and the new hub goes on accepting
            publish_ok(channel, ledger, burst.values(), url=process.url)
        tally = settle_and_account(channel, ledger)
    assert len(tally.delivered) >= 300
    # Informative: how many of the re-sent messages the killed hub had stored already.
    print(f"re-sent {sum(len(v) for _, v in unanswered)}, {duplicates} already stored; "
          f"{tally.duplicates} pushed twice")  # fmt: skip


# --------------------------------------------------------------------------- the subscriber


def test_subscriber_down_for_a_while_then_back(
    mhub: RunningHub, new_channel: Callable[..., Channel]
) -> None:
    """The receiver stops listening (connections refused) for ~3 s while messages keep
    coming; once it listens again everything arrives, in order per key."""
    with receiving() as receiver:
        channel = new_channel(
            mhub,
            receiver.url,
            retry={"delays": [0.2], "jitter": 0, "max_attempts": 100, "timeout": 2},
        )
        ledger = Ledger()
        burst = Burst(channel, ledger, keys=keys("D", 4), pause=0.05)
        burst.start()
        try:
            wait_until(
                lambda: len(hook_of(channel).delivered()) >= 30, what="30 messages delivered"
            )
            receiver.stop()
            down_from = len(ledger)
            # Publishing goes on while the subscriber is down (about 2 s of it).
            wait_until(
                lambda: len(ledger) >= down_from + 40,
                what="40 messages accepted while the subscriber is down",
            )

            def refused() -> list[dict[str, Any]]:
                failed = audit_records(
                    mhub, kind="delivery", subscription=channel.subscription, status=502
                )
                return [r for r in failed if "refused" in (r["error"] or "").lower()]

            wait_until(
                refused, timeout=10, interval=0.2, what="a push refused while the receiver is down"
            )
            receiver.start()
            time.sleep(0.5)
        finally:
            burst.finish()
        settle_and_account(channel, ledger)


def test_failing_slow_and_gone_subscriber_accounts_for_every_message(
    mhub: RunningHub, receiver: Receiver, new_channel: Callable[..., Channel]
) -> None:
    """A mixed run: some messages are answered 500 forever (dead-lettered with their reason),
    some 503 twice, some too slowly at first (timed out, retried: the receiver sees them twice,
    with the same webhook-id); then the receiver answers 410 (subscription disabled, nothing
    pushed while disabled) and, once resumed, everything left arrives."""
    channel = new_channel(
        mhub, receiver.url, retry={"delays": [0.05], "jitter": 0, "max_attempts": 4, "timeout": 0.4}
    )
    hook = hook_of(channel)
    modes = ["ok", "ok", "fail", "flaky", "ok", "slow", "ok", "flaky"]
    ledger = Ledger()
    names = keys("M", 4)
    values = [
        {"id": k, "n": n, "mode": modes[(n + i) % len(modes)]}
        for n in range(8)
        for i, k in enumerate(names)
    ]
    publish_ok(channel, ledger, values)
    dead = wait_settled(channel, ledger)
    failing = {i for i, v in ledger.accepted.items() if v["mode"] == "fail"}
    slow = {i for i, v in ledger.accepted.items() if v["mode"] == "slow"}
    assert set(dead) == failing
    for letter in dead.values():
        assert letter["attempts"] == 4 and "4 attempts" in letter["reason"]
        assert "500" in letter["first_error"] and "500" in letter["last_error"]
        assert letter["topic"] == channel.topic and letter["state"] == "dead"
    assert all(hook.attempts[i] >= 2 for i in slow), "a slow message was not tried again"
    timeouts = audit_records(mhub, kind="delivery", subscription=channel.subscription, status=504)
    assert slow <= {r["message_id"] for r in timeouts}

    # 410 Gone: the subscription is disabled; messages wait, none is pushed, none is lost.
    hook.gone = True
    publish_ok(channel, ledger, [{"id": k, "n": 100, "mode": "ok"} for k in names])
    wait_until(
        lambda: channel.admin("GET", "").json()["status"] == "disabled",
        interval=0.2,
        what="the subscription disabled by the 410s",
    )
    # Pushes of other keys already under way when the first 410 came back may still arrive
    # (each answered 410 too); once the worker has stopped, none may.
    wait_until(
        lambda: channel.subscription not in mhub.hub.runtime.delivery.workers,
        what="the subscription's delivery worker stopped",
    )
    pushed = len(hook.pushes)
    publish_ok(
        channel, ledger, [{"id": k, "n": 101 + n, "mode": "ok"} for n in range(3) for k in names]
    )
    wait_until(
        lambda: channel.in_log() >= len(ledger), what="every accepted message in the topic's log"
    )
    assert channel.subscription not in mhub.hub.runtime.delivery.workers
    assert len(hook.pushes) == pushed, "pushed while the subscription was disabled"
    hook.gone = False
    assert channel.admin("POST", "/resume").status_code == 200
    tally = settle_and_account(channel, ledger, dead_expected=failing)
    assert tally.delivered == set(ledger.accepted) - failing
    assert tally.duplicates >= len(slow), "each slow message arrives twice (same webhook-id)"
    verify_signatures(channel)
