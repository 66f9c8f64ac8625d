"""The Kafka backend: each hub topic is the Kafka topic `<prefix><topic>`, through kafka-python.

Producing: one producer per broker object, acks=all, one request in flight per connection (a
retried request cannot overtake the next one, so a partition keeps the batch's order), no
idempotence (the test broker, tansu, refuses InitProducerId). Each record carries the message id
and the acceptance time as headers (`lgsp-message-id`, `lgsp-timestamp`) besides the Outgoing's
own, and that time as its timestamp. Its requests, the topics it creates and the readers take a
record of MAX_RECORD_BYTES: the largest message a topic may allow, with its key and headers. A
call either gets every record acknowledged within `timeout_seconds` or raises an error of
messaging/errors.py; after a failure the producer is dropped and the next call starts a new one,
so a paused or replaced broker never wedges it.

Errors: kafka-python's are translated here, once (`_translate`): a topic the broker refuses to
create, a topic with fewer partitions than the hub's, a message too large, an invalid record or
refused ACLs are Terminal and name the hub topic; every other failure is Transient
(BrokerUnavailable, BrokerTimeout, NotAcknowledged).

Topics lost with their broker (a test broker keeps its log in memory; Kafka itself does not
lose them) are created again by `produce` when they had been ensured before, with the
partitions and retention remembered (see `produce`). Callers may still call `ensure_topic`
after a failure (the relay does); it costs one request when the topic exists. A topic that has
fewer partitions than the hub's is checked with the broker itself before it is called
misconfigured (the producer's view may predate an operator's fix), and the producer is then
asked to fetch its metadata again.

Reading: consumers without a group (`assign` + `seek`; no group join to wait for, positions
are the hub's), pooled so that the relay and several delivery threads read at the same time;
each call takes a consumer from the pool, preferably the one that read the same partition last
(whose read-ahead then serves the next call), and gives it back. A fetch past the end of the
log answers nothing (after its wait): a replaced test broker's log starts again at 0, so a
reader whose position is beyond `end_offset` must start over itself.

Where tansu (the test broker) answers differently from Kafka, the answers are checked:
- ListOffsets(latest) answers the last batch's first offset plus one, not the end of the log;
  the end offset is read from a fetch answer's high watermark instead (right on both).
- ListOffsets(timestamp) answers offset 0 whatever the time; the answer is verified by reading
  the records around it and, when wrong, the offset is found by a binary search over the
  records' timestamps (the hub stamps them in acceptance order).
- It acknowledges records for topics it does not have (and drops them), or answers an
  UnknownError for the first records of a topic just created again: `produce` looks its topics
  up after each acknowledgement and sends again what was lost. (When the producer has learnt
  that a topic is gone, it waits for it instead, as with Kafka: after STALL_SECONDS `produce`
  creates it again.)
- Describing or listing topics fails in kafka-python on tansu's ACL fields; metadata comes
  from a plain metadata request instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    BrokerResponseError,
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidRecordError,
    InvalidReplicationAssignmentError,
    InvalidReplicationFactorError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OffsetOutOfRangeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    UnsupportedForMessageFormatError,
)
from kafka.protocol.metadata import MetadataRequest

from messaging.broker import Outgoing, Received, kafka_name
from messaging.errors import (
    BrokerTimeout,
    BrokerUnavailable,
    MessageRejected,
    MessageTooLarge,
    MessagingError,
    NotAcknowledged,
    NotAuthorized,
    Terminal,
    TopicMisconfigured,
    TopicRefused,
)
from messaging.models import MAX_KEY
from registry.models import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

MESSAGE_ID_HEADER = "lgsp-message-id"
TIMESTAMP_HEADER = "lgsp-timestamp"  # milliseconds since the epoch, as the record's timestamp
_OWN_HEADERS = (MESSAGE_ID_HEADER, TIMESTAMP_HEADER)
PRODUCE_ATTEMPTS = 4  # sends of one batch when its topics turn out to be lost, in one call
STALL_SECONDS = 0.5  # a send unacknowledged this long makes produce check for lost topics
FETCH_MAX_WAIT_MS = 100  # how long the broker holds an empty fetch: a wait of 0 costs this
# The largest record the hub sends: a message of the largest size a topic may allow, plus what
# Kafka counts with its value against the producer's max_request_size and the topic's
# max.message.bytes: the key (MAX_KEY characters, up to 4 bytes each in UTF-8), the headers
# (about 160 bytes) and the record's and its batch's framing (61 bytes and a few varints).
# kafka-python's default max_request_size and Kafka's default max.message.bytes (1 MiB, and
# 1 MiB + 12 bytes) leave no room for them: a message the hub accepted would be refused for good.
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES + 4 * MAX_KEY + 1024
# A reader's fetch answers at most MAX_RECORD_BYTES of records (or one larger batch whole, which
# the hub never writes), and its frame is allowed as much again for the answer's own fields.
# kafka-python's default limit on a frame (1,000,000 bytes) is below one such record: its first
# fetch failed, logged as an error, and closed the connection (a new one forgets the limit).
MAX_FETCH_FRAME_BYTES = 2 * MAX_RECORD_BYTES


def crc32c_accelerated() -> bool:
    """Whether kafka-python checksums records with the `crc32c` C extension (about tenfold
    faster than its pure-Python fallback, which would cap a producer at a few thousand msg/s)."""
    from kafka.record import util

    try:
        import crc32c
    except ImportError:
        return False
    return bool(util.calc_crc32c.__defaults__ == (crc32c.crc32c,))


@dataclass(frozen=True, slots=True)
class _TopicSpec:
    partitions: int
    retention_ms: int


class KafkaBroker:
    """The `kafka` backend of `Broker` (see the module docstring)."""

    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        prefix: str = "lgsp.",
        *,
        timeout_seconds: float = 10.0,
        replication_factor: int = 1,
        client_id: str = "lgsp-hub",
        on_created: Callable[[str], None] | None = None,
    ) -> None:
        if timeout_seconds < 2:
            raise ValueError("timeout_seconds must be at least 2 s")
        if not crc32c_accelerated():
            log.warning(
                "kafka-python checksums in pure Python (the crc32c package is missing): "
                "producing and consuming will be about tenfold slower"
            )
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self._replication = replication_factor
        self._client_id = client_id
        # A request gets half the budget, so a failed one can be retried once within it.
        self._request_ms = int(timeout_seconds * 500)
        self._lock = threading.Lock()
        self._producer: Any = None
        self._admin: Any = None
        self._admin_lock = threading.Lock()  # one administrative request at a time
        self._metadata: Any = None  # a plain client for metadata lookups
        self._metadata_lock = threading.Lock()
        self._idle: list[Any] = []  # consumers not in use
        self._topics: dict[str, _TopicSpec] = {}  # what ensure_topic was asked, to recreate
        self._closed = False
        # Told when this process had to create a topic: a log lost with its broker (or
        # deleted) starts again at offset 0, and stored positions are then stale.
        self._on_created = on_created

    # ----------------------------------------------------------------------------- topics

    def ensure_topic(self, topic: str, partitions: int, retention_ms: int) -> None:
        spec = _TopicSpec(partitions, retention_ms)
        with self._lock:
            self._topics[topic] = spec
        self._create(topic, spec, time.monotonic() + self.timeout_seconds)

    def _create(self, topic: str, spec: _TopicSpec, deadline: float) -> bool:
        """Create the topic unless it exists (True when it was missing); wait until the
        producer's metadata shows its partitions."""
        name = kafka_name(self.prefix, topic)
        new = NewTopic(
            name,
            num_partitions=spec.partitions,
            replication_factor=self._replication,
            topic_configs={
                "retention.ms": str(spec.retention_ms),
                "max.message.bytes": str(MAX_RECORD_BYTES),
            },
        )
        for attempt in (1, 2):  # a client that knew a broker now gone fails at once: renew it
            try:
                with self._admin_lock:
                    self._admin_client().create_topics([new], timeout_ms=self._request_ms)
                created = True
                break
            except TopicAlreadyExistsError:
                created = False
                break
            except KafkaError as error:
                self._drop_admin()
                failure = _translate(error, f"Kafka did not create {name}", topic=topic)
                if (
                    isinstance(failure, Terminal)
                    or attempt == 2
                    or deadline - time.monotonic() < self._request_ms / 1000
                ):
                    raise failure from error
        producer = self._producer_client()
        asked = False
        while True:
            try:
                known = set(producer.partitions_for(name) or ())
            except KafkaError as error:
                raise _translate(error, f"no metadata for topic {name}", topic=topic) from error
            if set(range(spec.partitions)) <= known:
                if created and self._on_created is not None:
                    self._on_created(topic)  # before any record is sent to the new log
                return created
            if not asked:
                # The producer's view may predate a change (an operator who recreated the topic
                # with more partitions): ask the broker itself before calling it misconfigured.
                asked = True
                described = self._describe({topic}, deadline)
                have = len(known) if described is None else described.get(topic)
                if have and have < spec.partitions and not created:
                    # Made elsewhere with fewer partitions: producing to the others would fail.
                    raise TopicMisconfigured(
                        f"Kafka topic {name} has {have} partitions, the hub topic "
                        f"{spec.partitions}: add partitions to it (kafka-topics --alter)",
                        topic=topic,
                    )
                _refresh_metadata(producer)
            if time.monotonic() >= deadline:
                raise BrokerTimeout(f"Kafka shows no partitions of {name} yet", topic=topic)
            time.sleep(0.05)

    def _recreate(self, topics: set[str], deadline: float) -> set[str]:
        """Create again the ones of `topics` that were ensured before; those that were missing."""
        with self._lock:
            known = {topic: self._topics[topic] for topic in topics if topic in self._topics}
        created = set()
        for topic, spec in sorted(known.items()):
            if self._create(topic, spec, deadline):
                log.warning("Kafka had lost topic %s; created it again", topic)
                created.add(topic)
        return created

    def _missing(self, topics: set[str], deadline: float) -> set[str]:
        """The ones of `topics` the broker does not have."""
        described = self._describe(topics, deadline)
        return set() if described is None else topics - set(described)

    def _describe(self, topics: set[str], deadline: float) -> dict[str, int] | None:
        """How many partitions the broker has for each of `topics` it has, by a metadata
        request of their own (the producer's view of the cluster may be older than the broker
        it talks to); None from a broker too old to be asked without creating them."""
        names = {kafka_name(self.prefix, topic): topic for topic in topics}
        with self._metadata_lock:
            client = self._metadata
            try:
                if client is None:
                    client = self._metadata = KafkaClient(**self._client_config())
                wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
                node = client.least_loaded_node()
                if node is None or not client.await_ready(node, timeout_ms=wait_ms):
                    raise KafkaTimeoutError("no broker to ask for metadata")
                version = client.api_version(MetadataRequest, max_version=7)
                if version < 4:  # older requests would create the topics: trust the ack
                    return None
                future = client.send(
                    node,
                    MetadataRequest[version](topics=sorted(names), allow_auto_topic_creation=False),
                )
                client.poll(future=future, timeout_ms=wait_ms)
                if not future.is_done:
                    raise KafkaTimeoutError("no answer to a metadata request")
                if future.failed():
                    raise future.exception
            except KafkaError as error:
                self._metadata = None
                _close_quietly(client, None)
                raise _translate(error, "no metadata from Kafka") from error
        # Versions 4 to 7: each topic is (error_code, name, is_internal, partitions).
        present = {entry[1]: len(entry[3]) for entry in future.value.topics if entry[0] == 0}
        return {topic: present[name] for name, topic in names.items() if name in present}

    # ---------------------------------------------------------------------------- produce

    def produce(self, batch: Sequence[Outgoing]) -> None:
        """Send the batch and wait for every acknowledgement; then make sure its topics exist.

        A broker started afresh (tansu keeps its log in memory) lacks the topics: it may
        acknowledge their records and drop them, answer an error, or the producer may wait for
        the topic. So the topics are looked up after the sends, created again when missing (if
        they were ensured before), and their records sent once more. That makes no duplicate:
        records sent to a topic that did not exist cannot be read, and what a topic created
        again in this call already holds is read first and not sent again.
        """
        deadline = time.monotonic() + self.timeout_seconds
        pending = list(batch)
        recreated: set[str] = set()
        for attempt in range(1, PRODUCE_ATTEMPTS + 1):
            if not pending:
                return
            failed, error = self._send(pending, deadline, careful=recreated)
            try:
                missing = self._missing({message.topic for message in pending}, deadline)
            except MessagingError as unavailable:
                raise error or unavailable from None
            if not missing and not failed:
                return
            with self._lock:
                unknown = sorted(topic for topic in missing if topic not in self._topics)
            if unknown:
                raise BrokerUnavailable(f"Kafka has no topic {unknown}: ensure_topic first")
            # tansu may refuse the first records of a topic it has just created again.
            lost = missing | recreated
            if attempt == PRODUCE_ATTEMPTS or any(m.topic not in lost for m in failed):
                raise error or NotAcknowledged(f"Kafka lost topics {sorted(missing)} again")
            created = self._recreate(missing, deadline)  # none if metadata was only late
            again = {id(message) for message in failed}
            pending = [m for m in pending if m.topic in created or id(m) in again]
            # A topic created again in this call holds only what was sent since; tansu stores
            # some records it answers an error for: those are not sent twice.
            earlier = {(m.topic, m.partition) for m in pending if m.topic in recreated - created}
            if earlier:
                stored = self._message_ids(earlier)
                pending = [m for m in pending if m.message_id not in stored]
            recreated |= created
            time.sleep(0.05 * attempt)

    def _message_ids(self, partitions: set[tuple[str, int]]) -> set[str]:
        """The message ids in these partitions (of topics just created: a few records)."""
        ids: set[str] = set()
        for topic, partition in sorted(partitions):
            tp = TopicPartition(kafka_name(self.prefix, topic), partition)
            with self._consumer(tp) as consumer:
                offset, end = 0, self._end(consumer, tp)
                while offset < end:
                    records = self._read_from(consumer, tp, offset)
                    if not records:
                        break
                    ids.update(_received(topic, record).message_id for record in records)
                    offset = records[-1].offset + 1
        return ids

    def _send(
        self, batch: Sequence[Outgoing], deadline: float, *, careful: set[str] | None = None
    ) -> tuple[list[Outgoing], MessagingError | None]:
        """The messages that were not acknowledged, with the first error (translated, naming
        the topic of the message it came from).

        Messages of `careful` topics (created again in this call) go one at a time: tansu may
        refuse a topic's first records and store the next ones, and those stored after a
        refused one would come before it once it is sent again. One at a time, a refusal
        stops its partition, and everything behind it is sent again in order. A message the
        producer refuses before sending it (too large) stops the batch there for the same
        reason: nothing behind it is sent.
        """
        if careful:
            slow = [m for m in batch if m.topic in careful]
            if slow:
                rest = [m for m in batch if m.topic not in careful]
                fast_failed, fast_error = self._send(rest, deadline) if rest else ([], None)
                slow_failed, slow_error = self._send_in_order(slow, deadline)
                return fast_failed + slow_failed, fast_error or slow_error
        producer = self._producer_client()
        futures = []
        error: MessagingError | None = None
        try:
            for message in batch:
                future = producer.send(
                    kafka_name(self.prefix, message.topic),
                    value=message.value,
                    key=None if message.key is None else message.key.encode(),
                    partition=message.partition,
                    timestamp_ms=message.timestamp_ms,
                    headers=_headers(message),
                )
                futures.append(future)
                if future.is_done and future.failed():
                    break  # refused before any send: what follows waits behind it
        except (KafkaError, AssertionError) as refused:
            # No metadata for the topic within max_block_ms; or kafka-python's checks of its
            # arguments (asserts), of which the hub can fail only the partition's.
            message = batch[len(futures)]
            error = _translate(refused, "Kafka refused a message", topic=message.topic)
        try:
            producer.flush(timeout=STALL_SECONDS)  # sends now rather than after linger_ms
        except KafkaTimeoutError:
            # The producer may be waiting for a topic that a broker started afresh lacks:
            # create it, and the producer's retries deliver. A broker that does not answer
            # lets the sends time out instead.
            with suppress(MessagingError):
                self._recreate({message.topic for message in batch}, deadline)
        failed = list(batch[len(futures) :])
        for message, future in zip(batch, futures, strict=False):
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaError as unacknowledged:
                failed.append(message)
                error = error or _translate(
                    unacknowledged, "Kafka did not acknowledge", topic=message.topic, producing=True
                )
        if failed:
            self._drop_producer(producer)
        return failed, error

    def _send_in_order(
        self, batch: Sequence[Outgoing], deadline: float
    ) -> tuple[list[Outgoing], MessagingError | None]:
        """Each message acknowledged before the next of its partition is sent."""
        failed: list[Outgoing] = []
        error: MessagingError | None = None
        stopped: set[tuple[str, int]] = set()
        for message in batch:
            if (message.topic, message.partition) in stopped:
                failed.append(message)
                continue
            one, refused = self._send([message], deadline)
            if one:
                failed += one
                error = error or refused
                stopped.add((message.topic, message.partition))
        return failed, error

    def _producer_client(self) -> Any:
        with self._lock:
            if self._closed:
                raise BrokerUnavailable("the Kafka broker client is closed")
            if self._producer is None:
                try:
                    self._producer = KafkaProducer(
                        **self._client_config(),
                        acks="all",
                        enable_idempotence=False,
                        max_in_flight_requests_per_connection=1,
                        linger_ms=5,
                        batch_size=256 * 1024,
                        max_request_size=MAX_RECORD_BYTES,
                        delivery_timeout_ms=int(self.timeout_seconds * 1000) - 500,
                        max_block_ms=self._request_ms,
                        allow_auto_create_topics=False,  # the hub creates them, with partitions
                    )
                except KafkaError as error:
                    raise _translate(error, "cannot reach Kafka") from error
            return self._producer

    def _client_config(self) -> dict[str, Any]:
        """What every client of this broker shares: bounded waits, quick reconnection."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self._client_id,
            "request_timeout_ms": self._request_ms,
            "api_version_auto_timeout_ms": self._request_ms,
            "reconnect_backoff_max_ms": 1000,
        }

    def _drop_producer(self, producer: Any) -> None:
        """Forget the producer and stop its sends at once; it is closed in the background.

        Its unacknowledged batches must never reach the broker later: the caller sends the
        same messages again through a new producer, and a batch the old one retried into a
        broker that came back would land among them, out of order (seen after a 12 s outage
        with a replaced broker). kafka-python's close() flushes first, waiting for those very
        batches, so the sender is force-closed (pending batches aborted, nothing more sent)
        and its thread awaited before the caller goes on.
        """
        with self._lock:
            if self._producer is producer:
                self._producer = None
        sender = getattr(producer, "_sender", None)  # kafka-python 2.x; no public way to abort
        if sender is not None:
            sender.force_close()
            sender.join(STALL_SECONDS)
        threading.Thread(
            target=_close_quietly,
            args=(producer, self.timeout_seconds),
            name="kafka-producer-close",
            daemon=True,
        ).start()

    # ------------------------------------------------------------------------------- read

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_records: int, wait_seconds: float
    ) -> list[Received]:
        """Messages from `offset` on. An empty answer reflects a fetch the broker answered
        during this call; Kafka holds an empty fetch up to FETCH_MAX_WAIT_MS, so a call with
        nothing to read lasts at least about that long, whatever `wait_seconds`."""
        tp = TopicPartition(kafka_name(self.prefix, topic), partition)
        deadline = time.monotonic() + wait_seconds
        give_up = deadline + self.timeout_seconds
        with self._consumer(tp) as consumer:
            timeout_ms = 0
            while True:
                try:
                    if timeout_ms == 0:
                        polled = _start_reading(consumer, tp, offset, max_records)
                    else:
                        polled = consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
                except OffsetOutOfRangeError:
                    start = int(consumer.beginning_offsets([tp])[tp])
                    if offset < start:  # removed by retention: read from the oldest kept
                        offset, timeout_ms = start, 0
                        continue
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    return []  # past the end: nothing there
                records = [r for r in polled.get(tp, ()) if r.offset >= offset]
                if records:
                    return [_received(topic, record) for record in records]
                now = time.monotonic()
                if self._closed:
                    return []
                if now >= deadline and consumer.highwater(tp) is not None:
                    return []  # the broker answered this call: nothing there yet
                if now >= give_up:
                    raise BrokerUnavailable(f"Kafka did not answer a fetch of {tp}")
                timeout_ms = max(1, int(((deadline - now) if now < deadline else 0.02) * 1000))

    def end_offset(self, topic: str, partition: int) -> int:
        tp = TopicPartition(kafka_name(self.prefix, topic), partition)
        with self._consumer(tp) as consumer:
            return self._end(consumer, tp)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int:
        tp = TopicPartition(kafka_name(self.prefix, topic), partition)
        with self._consumer(tp) as consumer:
            end = self._end(consumer, tp)
            start = int(consumer.beginning_offsets([tp])[tp])
            if start >= end:
                return end
            found = consumer.offsets_for_times({tp: timestamp_ms})[tp]
            guess = end if found is None else int(found.offset)
            if self._first_at_or_after(consumer, tp, guess, timestamp_ms, start, end):
                return guess
            log.debug("offsets_for_times answered %s for %s at %s: searching", found, tp, guess)
            return self._search(consumer, tp, timestamp_ms, start, end)

    def _end(self, consumer: Any, tp: Any) -> int:
        """The end of the log, from the high watermark of a fetch of its last record (tansu's
        ListOffsets answers the start of the last batch plus one)."""
        latest = int(consumer.end_offsets([tp])[tp])
        if latest == 0:
            return 0
        give_up = time.monotonic() + self.timeout_seconds
        try:
            _start_reading(consumer, tp, latest - 1, 1)
            while consumer.highwater(tp) is None:
                if time.monotonic() >= give_up:
                    raise BrokerUnavailable(f"Kafka did not answer a fetch of {tp}")
                consumer.poll(timeout_ms=50, max_records=1)
        except OffsetOutOfRangeError:
            return latest  # the last record is gone: Kafka's answer is the end
        return max(latest, int(consumer.highwater(tp)))

    def _read_from(self, consumer: Any, tp: Any, offset: int) -> list[Any]:
        """The records the broker returns from `offset` on (one fetch's worth)."""
        give_up = time.monotonic() + self.timeout_seconds
        polled = _start_reading(consumer, tp, offset, None)
        while True:
            records = [r for r in polled.get(tp, ()) if r.offset >= offset]
            if records:
                return records
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater <= offset:
                return []
            if time.monotonic() >= give_up:
                raise BrokerUnavailable(f"Kafka did not answer a fetch of {tp}")
            polled = consumer.poll(timeout_ms=50)

    def _first_at_or_after(
        self, consumer: Any, tp: Any, offset: int, timestamp_ms: int, start: int, end: int
    ) -> bool:
        """Whether `offset` is the first one stamped at or after the time."""
        if not start <= offset <= end:
            return False
        records = self._read_from(consumer, tp, max(start, offset - 1))
        before = [r for r in records if r.offset < offset]
        after = [r for r in records if r.offset >= offset]
        if offset > start and (not before or _timestamp(before[-1]) >= timestamp_ms):
            return False
        return offset == end or bool(after and _timestamp(after[0]) >= timestamp_ms)

    def _search(self, consumer: Any, tp: Any, timestamp_ms: int, start: int, end: int) -> int:
        """Binary search for the first record stamped at or after the time; each probe reads a
        fetch's worth of records, and the answer is often inside one."""
        low, high = start, end  # the answer lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            records = self._read_from(consumer, tp, middle)
            if not records:
                high = middle
                continue
            first = next((r for r in records if _timestamp(r) >= timestamp_ms), None)
            if first is None:
                low = min(records[-1].offset + 1, high)
            elif first is records[0]:
                high = middle
            else:
                return int(first.offset)  # the record before it, in this read, is older
        return low

    @contextmanager
    def _consumer(self, tp: Any) -> Iterator[Any]:
        """A pooled consumer assigned to `tp` for the duration of one call, preferably the one
        that read `tp` last (its read-ahead is then still good); one that failed is closed."""
        with self._lock:
            if self._closed:
                raise BrokerUnavailable("the Kafka broker client is closed")
            consumer = None
            for index, idle in enumerate(self._idle):
                if idle.assignment() == {tp}:
                    consumer = self._idle.pop(index)
                    break
            else:
                if self._idle:
                    consumer = self._idle.pop(0)  # the longest idle
        if consumer is None:
            try:
                consumer = KafkaConsumer(
                    **self._client_config(),
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="none",  # out of range is an answer, not a jump
                    allow_auto_create_topics=False,  # the hub creates topics, with partitions
                    fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                    fetch_max_bytes=MAX_RECORD_BYTES,
                    max_partition_fetch_bytes=MAX_RECORD_BYTES,
                    receive_message_max_bytes=MAX_FETCH_FRAME_BYTES,
                )
            except KafkaError as error:
                raise _translate(error, "cannot reach Kafka") from error
        healthy = False
        try:
            if consumer.assignment() != {tp}:
                consumer.assign([tp])
            yield consumer
            healthy = True
        except KafkaError as error:
            topic = tp.topic[len(self.prefix) :]
            raise _translate(error, f"Kafka read of {tp.topic} failed", topic=topic) from error
        finally:
            with self._lock:
                keep = healthy and not self._closed
                if keep:
                    self._idle.append(consumer)
            if not keep:
                _close_quietly(consumer, None)

    # ------------------------------------------------------------------------------ admin

    def _admin_client(self) -> Any:
        with self._lock:
            if self._closed:
                raise BrokerUnavailable("the Kafka broker client is closed")
            if self._admin is None:
                self._admin = KafkaAdminClient(**self._client_config())
            return self._admin

    def _drop_admin(self) -> None:
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            _close_quietly(admin, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
            admin, self._admin = self._admin, None
            idle, self._idle = self._idle, []
        with self._metadata_lock:
            metadata, self._metadata = self._metadata, None
        if producer is not None:
            _close_quietly(producer, self.timeout_seconds)
        for client in [admin, metadata, *idle]:
            if client is not None:
                _close_quietly(client, None)


# kafka-python's errors that a retry does not clear, by what the operator has to change. Every
# other error is transient: kafka-python's own `retriable` flag is not used, as it calls errors
# transient brokers answer while they recover (UnknownError, from tansu) final.
_TERMINAL: tuple[tuple[tuple[type[Exception], ...], type[Terminal]], ...] = (
    ((MessageSizeTooLargeError, RecordListTooLargeError), MessageTooLarge),
    ((AuthorizationError,), NotAuthorized),  # the topic's, the cluster's (to create topics)
    (
        (
            InvalidTopicError,
            InvalidPartitionsError,
            InvalidReplicationFactorError,
            InvalidReplicationAssignmentError,
            InvalidConfigurationError,
            PolicyViolationError,
        ),
        TopicRefused,
    ),
    (
        (InvalidRecordError, InvalidTimestampError, UnsupportedForMessageFormatError),
        MessageRejected,
    ),
    # kafka-python checks its arguments with assert; the hub's can fail only the partition's.
    ((AssertionError,), TopicMisconfigured),
)


def _translate(
    error: Exception, doing: str, *, topic: str | None = None, producing: bool = False
) -> MessagingError:
    """kafka-python's error as messaging's (the one place where they are translated)."""
    detail = f"{doing}: {error!r}"
    translated: MessagingError
    for kinds, terminal in _TERMINAL:
        if isinstance(error, kinds):
            translated = terminal(detail, topic=topic)
            break
    else:
        if isinstance(error, KafkaTimeoutError | RequestTimedOutError):
            translated = BrokerTimeout(detail, topic=topic)
        elif producing and isinstance(error, BrokerResponseError):
            translated = NotAcknowledged(detail, topic=topic)
        else:
            translated = BrokerUnavailable(detail, topic=topic)
    translated.__cause__ = error
    return translated


def _refresh_metadata(producer: Any) -> None:
    """Have the producer fetch the cluster's metadata now, not when it next expires (minutes):
    its view of a topic may predate an operator's change. (kafka-python has no public call.)"""
    with suppress(Exception):
        producer._metadata.request_update()
        producer._sender.wakeup()


def _headers(message: Outgoing) -> list[tuple[str, bytes]]:
    own = [
        (MESSAGE_ID_HEADER, message.message_id.encode()),
        (TIMESTAMP_HEADER, str(message.timestamp_ms).encode()),
    ]
    return own + [(k, v.encode()) for k, v in message.headers.items() if k not in _OWN_HEADERS]


def _timestamp(record: Any) -> int:
    for key, value in record.headers or ():
        if key == TIMESTAMP_HEADER and value.isdigit():
            return int(value)
    return int(record.timestamp)


def _received(topic: str, record: Any) -> Received:
    headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
    message_id = headers.pop(MESSAGE_ID_HEADER, None)
    headers.pop(TIMESTAMP_HEADER, None)
    return Received(
        topic=topic,
        partition=int(record.partition),
        offset=int(record.offset),
        key=None if record.key is None else record.key.decode(errors="replace"),
        value=bytes(record.value or b""),
        # A record written by someone else than the hub: still a stable id.
        message_id=message_id or f"kafka-{record.partition}-{record.offset}",
        timestamp_ms=_timestamp(record),
        headers=headers,
    )


def _start_reading(consumer: Any, tp: Any, offset: int, max_records: int | None) -> Any:
    """Position the consumer (assigned to `tp` alone) at `offset` and take what it has already
    fetched from there. Afterwards its high watermark for `tp` is known only once the broker
    has answered a fetch during this call, which tells "nothing there" from "not asked yet".
    kafka-python keeps that watermark in the partition's state and has no call to forget it."""
    state = consumer._subscription.assignment[tp]
    position = getattr(state.position, "offset", state.position)  # older releases: an int
    if position != offset:
        consumer.seek(tp, offset)
    polled = consumer.poll(timeout_ms=0, max_records=max_records)  # answers already received
    state.highwater = None
    return polled


def _close_quietly(client: Any, timeout: float | None) -> None:
    with suppress(Exception):
        if timeout is None:
            client.close()
        else:
            client.close(timeout=timeout)
