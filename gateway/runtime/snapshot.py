"""The registry as the data plane sees it: in memory, compiled, rebuilt when the revision moves.

The hot path never queries the database for the registry: keys, services, routes, grants and
compiled validators come from an immutable snapshot, swapped whole when any replica changes the
registry (the revision row), so a request sees one consistent registry from start to end.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlmodel import Session, select

from connectors.base import Connector
from gateway.catalog.lifecycle import NOT_ANNOUNCED, Lifecycle, lifecycle_of
from gateway.runtime.tokens import TokenState, load_tokens
from messaging.entries import SubscriptionEntry, TopicEntry, decode_secret
from registry.crud.subscriptions import open_secrets
from registry.limits import Quota, RateLimit
from registry.models import (
    Agency,
    ApiKey,
    Consumer,
    Grant,
    Principal,
    Route,
    Service,
    Subscription,
    Topic,
)
from registry.models import Connector as ConnectorRow
from registry.projection import FieldTree, compile_fields
from registry.revision import current
from registry.sealing import SealingError
from registry.types import Delivery, GrantStatus, ServiceStatus, SubscriptionStatus, as_utc
from schemas import store as schema_store
from schemas.cache import Compiled, ValidatorCache
from schemas.errors import SchemaError
from schemas.models import SchemaRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: Route
    label: str  # "POST /cong-dan/xac-thuc", as recorded in the audit log
    pattern: re.Pattern[str]
    # Contracts: each a compiled validator and its schema with $refs inlined (for error
    # locations, and for typing SOAP replies).
    params: Compiled | None
    request: Compiled | None
    response: Compiled | None
    # A Warning header value when a contract the route names is deprecated (computed at load).
    contract_warning: bytes | None
    subject_pointer: str | None


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    name: str
    version: str
    status: ServiceStatus
    agency_code: str
    personal_data: bool
    connector: Connector
    routes: tuple[CompiledRoute, ...]
    title: str = ""
    description: str = ""
    lifecycle: Lifecycle = NOT_ANNOUNCED


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_hash: str
    consumer: str
    agency_code: str
    expires_at: datetime | None
    revoked: bool
    active: bool


@dataclass(frozen=True, slots=True)
class GrantEntry:
    id: int
    status: GrantStatus
    versions: frozenset[str]
    purposes: frozenset[str]
    fields: FieldTree | None
    valid_from: datetime | None
    valid_until: datetime | None
    reason: str | None
    legal_basis: str | None
    rate_limit: RateLimit | None = None  # registry/limits.py
    quota: Quota | None = None

    def covers(self, version: str) -> bool:
        return "*" in self.versions or version in self.versions

    def in_force(self, now: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    # Live management keys (key id -> hash): only to tell a caller who sends one to the data
    # plane that it is not a consumer key.
    management_keys: dict[str, str] = field(default_factory=dict)
    services: dict[tuple[str, str], ServiceEntry] = field(default_factory=dict)
    grants: dict[tuple[str, str], tuple[GrantEntry, ...]] = field(default_factory=dict)
    # Published services whose connector could not be built, with the reason (an operator's
    # problem: answered 503, listed by /readyz).
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    topics: dict[str, TopicEntry] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionEntry] = field(default_factory=dict)
    tokens: TokenState = field(
        default_factory=TokenState
    )  # bearer tokens (gateway/exchange/tokens)
    agencies: dict[str, str] = field(default_factory=dict)  # code -> name, for the catalogue


def _contract(
    session: Session, validators: ValidatorCache, ref: SchemaRef | None
) -> Compiled | None:
    if ref is None:
        return None
    version = schema_store.get_version(
        session=session, subject=ref.subject, version=ref.version, deleted=True
    )
    return validators.get(session=session, version=version)


def _compile_route(
    session: Session, validators: ValidatorCache, svc: Service, route: Route
) -> CompiledRoute:
    params = _contract(session, validators, route.params_schema)
    request = _contract(session, validators, route.request_schema)
    response = _contract(session, validators, route.response_schema)
    return CompiledRoute(
        route=route,
        label=f"{route.method.value} {route.path}",
        pattern=compile_path(route.path),
        params=params,
        request=request,
        response=response,
        contract_warning=_warning(params, request, response),
        subject_pointer=route.subject_pointer or svc.subject_pointer,
    )


def _warning(*contracts: Compiled | None) -> bytes | None:
    old = [f"{c.subject}/{c.version}" for c in contracts if c is not None and c.deprecated]
    if not old:
        return None
    return f'299 - "deprecated schema version {", ".join(old)}"'.encode()


def compile_path(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_][a-z0-9_]*\})", template)
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def connector_fingerprint(row: ConnectorRow) -> str:
    """Changes whenever anything that shapes the connector's client changes."""
    data = row.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load(
    session: Session,
    *,
    validators: ValidatorCache,
    connectors: dict[str, Connector],
    broken: dict[str, str] | None = None,
    connector_headers: dict[str, tuple[str, dict[str, str]]] | None = None,
) -> Snapshot:
    """Read the registry; `connectors` maps connector names to live connectors already built."""
    revision = current(session)
    consumers = {c.id: c for c in session.exec(select(Consumer))}
    keys: dict[str, KeyEntry] = {}
    for key in session.exec(select(ApiKey)):
        consumer = consumers.get(key.consumer_id)
        if consumer is None:
            continue
        keys[key.key_id] = KeyEntry(
            key_hash=key.key_hash,
            consumer=consumer.name,
            agency_code=consumer.agency_code,
            expires_at=as_utc(key.expires_at),
            revoked=key.revoked_at is not None,
            active=consumer.active,
        )

    management_keys = {
        p.key_id: p.key_hash
        for p in session.exec(select(Principal).where(Principal.revoked_at == None))  # noqa: E711
    }

    services: dict[tuple[str, str], ServiceEntry] = {}
    unavailable: dict[tuple[str, str], str] = {}
    for svc in session.exec(select(Service)):
        if svc.status in (ServiceStatus.DRAFT, ServiceStatus.RETIRED):
            continue
        connector = connectors.get(svc.connector)
        if connector is None:
            reason = (broken or {}).get(svc.connector, "its connector is missing")
            unavailable[(svc.name, svc.version)] = f"connector {svc.connector}: {reason}"
            continue
        try:
            routes = [
                _compile_route(session, validators, svc, route) for route in svc.route_models()
            ]
        except (SchemaError, ValueError) as exc:
            unavailable[(svc.name, svc.version)] = f"contract: {exc}"
            continue
        services[(svc.name, svc.version)] = ServiceEntry(
            name=svc.name,
            version=svc.version,
            status=svc.status,
            agency_code=svc.agency_code,
            personal_data=svc.personal_data,
            connector=connector,
            routes=tuple(routes),
            title=svc.title,
            description=svc.description,
            lifecycle=lifecycle_of(svc),
        )

    grants: dict[tuple[str, str], list[GrantEntry]] = {}
    for grant in session.exec(select(Grant)):
        assert grant.id is not None
        grants.setdefault((grant.consumer, grant.service), []).append(
            GrantEntry(
                id=grant.id,
                status=grant.status,
                versions=frozenset(grant.versions),
                purposes=frozenset(grant.purposes),
                fields=compile_fields(grant.fields),
                valid_from=as_utc(grant.valid_from),
                valid_until=as_utc(grant.valid_until),
                reason=grant.reason,
                legal_basis=grant.legal_basis,
                rate_limit=None if grant.rate_limit is None else RateLimit(**grant.rate_limit),
                quota=None if grant.quota is None else Quota(**grant.quota),
            )
        )
    topics = _topics(session, validators)
    return Snapshot(
        revision=revision,
        keys=keys,
        management_keys=management_keys,
        services=services,
        grants={k: tuple(v) for k, v in grants.items()},
        unavailable=unavailable,
        topics=topics,
        subscriptions=_subscriptions(session, topics, connector_headers or {}),
        tokens=load_tokens(session, consumers),
        agencies={a.code: a.name for a in session.exec(select(Agency))},
    )


def _topics(session: Session, validators: ValidatorCache) -> dict[str, TopicEntry]:
    topics: dict[str, TopicEntry] = {}
    for topic in session.exec(select(Topic)):
        try:
            contract = _contract(session, validators, topic.schema_ref)
        except (SchemaError, ValueError) as exc:  # refused at publish time as unavailable
            log.error("topic %s has no usable schema: %s", topic.name, exc)
            continue
        assert contract is not None
        topics[topic.name] = TopicEntry(
            name=topic.name,
            agency_code=topic.agency_code,
            partitions=topic.partitions,
            key_pointer=topic.key_pointer,
            max_message_bytes=topic.max_message_bytes,
            retention_hours=topic.retention_hours,
            schema_label=f"{topic.schema_subject}/{topic.schema_version}",
            contract=contract,
            publishers=frozenset(topic.publishers),
            subscribers=frozenset(topic.subscribers),
        )
    return topics


def _subscriptions(
    session: Session,
    topics: dict[str, TopicEntry],
    connector_headers: dict[str, tuple[str, dict[str, str]]],
) -> dict[str, SubscriptionEntry]:
    """Subscriptions of known topics; a push subscription's URL from its connector's base URL."""
    found: dict[str, SubscriptionEntry] = {}
    for sub in session.exec(select(Subscription)):
        topic = topics.get(sub.topic)
        if topic is None:
            continue
        url, headers = None, {}
        if sub.connector is not None:
            base, headers = connector_headers.get(sub.connector, (None, {}))
            if base is None:
                log.error("subscription %s: connector %s is missing", sub.name, sub.connector)
                continue
            url = base.rstrip("/") + sub.path
        try:
            signing_keys = tuple(decode_secret(s) for s in open_secrets(session, sub))
        except SealingError as exc:  # never pushed unsigned: left out, as a broken connector
            log.error("subscription %s: %s", sub.name, exc)
            continue
        found[sub.name] = SubscriptionEntry(
            name=sub.name,
            topic=sub.topic,
            partitions=topic.partitions,
            consumer=sub.consumer,
            delivery=Delivery(sub.delivery),  # stored as plain strings
            status=SubscriptionStatus(sub.status),
            generation=sub.replay_generation,
            retry=sub.retry_schedule(),
            created_ms=int(as_utc(sub.created_at).timestamp() * 1000),  # type: ignore[union-attr]
            filter=sub.message_filter(),
            url=url,
            connector_headers=headers,
            secrets=signing_keys,
        )
    return found
