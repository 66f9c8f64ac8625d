"""Errors of messaging, mapped from the brokers' clients at one place per backend.

    MessagingError              root; `topic` names the hub topic when the failure is one topic's
    ├── Transient               a retry may help: wait, then try again
    │   ├── BrokerUnavailable   the broker cannot be reached (refused connection, no broker, a
    │   │   │                   closed client) or answered with an error a retry may clear
    │   │   ├── BrokerTimeout   no answer within the timeout (a paused or overloaded broker)
    │   │   └── NotAcknowledged it answered a produce without storing every message (no leader,
    │   │                       not enough in-sync replicas, a topic it had lost)
    │   └── DatabaseUnavailable the hub's database did not answer: the outbox, or the embedded
    │                           broker's log (down, or locked past the timeout)
    └── Terminal                a retry will not help until someone changes the topic, on the
        │                       broker or in the hub
        ├── TopicMisconfigured  the broker's topic does not fit the hub's: fewer partitions than
        │                       the hub's topic (a message for a partition the topic lacks)
        ├── TopicRefused        the broker refuses to create the topic: an invalid name, a
        │                       replication factor or configuration it cannot honour, a policy
        ├── MessageTooLarge     a message exceeds what the broker takes for the topic
        ├── MessageRejected     the broker or the database refuses a message's content (an
        │                       invalid record or timestamp, a value a column cannot hold)
        └── NotAuthorized       the broker's ACLs refuse the hub this topic (or creating it)

Translation: `messaging/kafka_broker.py` maps kafka-python's errors (`_translate`), and
`messaging/database_broker.py` maps SQLAlchemy's (`translate`); every broker call raises only
these. An error neither recognises as terminal is transient: retrying a terminal failure costs a
retry, calling a passing failure terminal would stop a topic for nothing. The relay's own queries
(outbox, lease, set-aside rows) go through the same `translate` (`Relay._query`): a database that
fails them is DatabaseUnavailable. Delivery's own (positions, leases) are not broker calls either:
whatever they raise is treated as transient (retried after a backoff, and logged).

Who reads the marker: the relay backs off and retries on Transient and sets the topic aside on
Terminal (messaging/set_aside.py: its messages wait in the outbox, the other topics flow);
delivery backs off per subscription; the gateway answers 503 (with Retry-After only for
Transient). Messages are for operators: what failed, on which topic, and what to change.
"""

from __future__ import annotations


class MessagingError(Exception):
    """A broker or outbox operation that did not complete."""

    def __init__(self, detail: str, *, topic: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.topic = topic  # the hub topic (not the Kafka name) when the failure is one topic's

    def __repr__(self) -> str:
        topic = f", topic={self.topic!r}" if self.topic else ""
        return f"{type(self).__name__}({self.detail!r}{topic})"


class Transient(MessagingError):
    """A retry may help: the broker or the database is away, slow, or between leaders."""


class Terminal(MessagingError):
    """A retry will not help until the topic is changed (on the broker or in the hub)."""


class BrokerUnavailable(Transient):
    """The broker did not answer or acknowledge (down, paused, unreachable): try again later."""


class BrokerTimeout(BrokerUnavailable):
    """No answer within the timeout."""


class NotAcknowledged(BrokerUnavailable):
    """The broker answered a produce without storing every message of it."""


class DatabaseUnavailable(Transient):
    """The hub's database did not answer (down, or locked past the timeout)."""


class TopicMisconfigured(Terminal):
    """The broker's topic does not fit the hub's (fewer partitions)."""


class TopicRefused(Terminal):
    """The broker refuses to create the topic."""


class MessageTooLarge(Terminal):
    """A message exceeds what the broker takes for the topic."""


class MessageRejected(Terminal):
    """The broker or the database refuses a message's content."""


class NotAuthorized(Terminal):
    """The broker's ACLs refuse the hub this topic, or creating it."""


def terminal_cause(error: BaseException) -> Terminal | None:
    """The terminal error in `error`, also inside an exception group (a task group's), if any."""
    if isinstance(error, Terminal):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = terminal_cause(inner)
            if found is not None:
                return found
    return None
