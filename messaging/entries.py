"""Topics and subscriptions as the run time sees them: immutable, compiled, from the snapshot."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from registry.models import MessageFilter, RetrySchedule
from registry.types import Delivery, SubscriptionStatus, resolve_pointer
from schemas.cache import Compiled


@dataclass(frozen=True, slots=True)
class TopicEntry:
    name: str
    agency_code: str
    partitions: int
    key_pointer: str | None
    max_message_bytes: int
    retention_hours: int
    schema_label: str  # "ho-so.trang-thai/1"
    contract: Compiled
    publishers: frozenset[str]
    subscribers: frozenset[str]


@dataclass(frozen=True, slots=True)
class SubscriptionEntry:
    name: str
    topic: str
    partitions: int
    consumer: str
    delivery: Delivery
    status: SubscriptionStatus
    generation: int  # the replay generation: a change restarts delivery from stored positions
    retry: RetrySchedule
    created_ms: int  # delivery starts with messages accepted from then on
    filter: MessageFilter | None = None
    url: str | None = None  # push: the connector's base URL + the subscription's path
    connector_headers: dict[str, str] = field(default_factory=dict)  # the connector's auth
    secrets: tuple[bytes, ...] = ()  # decoded signing keys, newest first

    def accepts(self, document: object) -> bool:
        """Whether the filter lets this message through (no filter: every message)."""
        if self.filter is None:
            return True
        value = resolve_pointer(document, self.filter.pointer)
        return any(value == wanted and type(value) is type(wanted) for wanted in self.filter.values)


def decode_secret(secret: str) -> bytes:
    """A Standard Webhooks secret (`whsec_` + base64) as the HMAC key."""
    return base64.b64decode(secret.removeprefix("whsec_"))
