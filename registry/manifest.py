"""Declarative manifests: the registry as one document, applied all-or-nothing, and exported.

    apiVersion: lgsp.laichau.gov.vn/v1
    kind: Manifest
    agencies: [...]     # AgencyCreate
    schemas: [...]      # registry.crud.schemas.SubjectSpec: subjects and their declared versions
    connectors: [...]   # ConnectorCreate; auth.secret a string, or absent to keep the stored one
    services: [...]     # ServiceCreate
    consumers: [...]    # ConsumerCreate
    grants: [...]       # GrantCreate + optional status (approved/refused by administrators only)
    topics: [...]       # TopicCreate, with `schema: {subject, version}`
    subscriptions: [...]  # SubscriptionCreate; `secrets` strings, or absent to keep the stored
                        # ones (a new push subscription without any gets one generated: rotate
                        # it through /admin/subscriptions/{name}/secrets to learn one)

Objects are applied in that order, in the caller's transaction; an object equal to the stored one
is `unchanged` and touches nothing. Objects absent from the manifest are left alone: apply never
deletes. `{env: NAME}` secrets are resolved by the client (`lgsp apply`), never by the server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from registry.crud import (
    access,
    agencies,
    connectors,
    consumers,
    grants,
    schemas,
    services,
    subscriptions,
    topics,
)
from registry.crud.diff import diff
from registry.crud.errors import Conflict, Forbidden, Invalid, RegistryError
from registry.models import (
    Agency,
    AgencyCreate,
    Connector,
    ConnectorCreate,
    ConsumerCreate,
    ServiceCreate,
    SubscriptionCreate,
    TopicCreate,
)
from registry.types import GrantStatus
from schemas.errors import SchemaError

API_VERSION = "lgsp.laichau.gov.vn/v1"
KINDS = (
    "agencies",
    "schemas",
    "connectors",
    "services",
    "consumers",
    "grants",
    "topics",
    "subscriptions",
)
M = TypeVar("M", bound=BaseModel)
NEVER_DELETES = "objects absent from the manifest are left as they are: apply never deletes"


class Manifest(BaseModel):
    """The envelope; each object is checked on its own, so errors point into the document."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["lgsp.laichau.gov.vn/v1"] = Field(alias="apiVersion")
    kind: Literal["Manifest"]
    agencies: list[dict[str, Any]] = []
    schemas: list[dict[str, Any]] = []
    connectors: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    consumers: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []


@dataclass
class Outcome:
    """What applying one object did (or would do)."""

    kind: str
    key: str
    action: Literal["create", "update", "unchanged"]
    changes: dict[str, Any] = field(default_factory=dict)
    audit_action: str = ""  # create, update, approve, refuse


def _parse(model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None


def _outcome(kind: str, key: str, created: bool, changes: dict[str, Any]) -> Outcome:
    if created:
        return Outcome(kind, key, "create", changes, "create")
    return Outcome(kind, key, "update" if changes else "unchanged", changes, "update")


def _agency(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    data = _parse(AgencyCreate, raw)
    agency = session.get(Agency, data.code)
    if agency is None:
        access.require_admin(caller, f"creating agency {data.code}")
        _, changes = agencies.create_agency(session=session, data=data)
        return _outcome("agency", data.code, True, changes)
    if diff(agencies.spec(agency), data.model_dump(mode="json")):
        access.require_admin(caller, f"changing agency {data.code}")
    changes = agencies.replace_agency(session=session, agency=agency, data=data)
    return _outcome("agency", data.code, False, changes)


def _schema(session: Session, raw: dict[str, Any], caller: access.Caller) -> list[Outcome]:
    data = _parse(schemas.SubjectSpec, raw)
    done = schemas.apply_subject(session, caller, data)
    if not done:
        return [Outcome("schema", data.subject, "unchanged", {}, "update")]
    return [Outcome("schema", key, action, changes, action) for action, key, changes in done]


def _with_secret(
    session: Session, raw: dict[str, Any], existing: Connector | None
) -> dict[str, Any]:
    """An absent secret keeps the stored one; an unresolved {env: NAME} is refused."""
    raw = _with_tls_key(session, raw, existing)
    auth = raw.get("auth")
    if not isinstance(auth, dict):
        return raw
    secret = auth.get("secret")
    if isinstance(secret, dict):
        raise Invalid.at(
            "/auth/secret",
            f"the secret reference {secret} was not resolved: the client resolves "
            "{env: NAME} from its environment before sending (lgsp apply does)",
        )
    if (
        "secret" not in auth
        and existing is not None
        and existing.secret is not None
        and auth.get("type", "none") == existing.auth_params.get("type")
    ):
        return {**raw, "auth": {**auth, "secret": existing.secret}}
    return raw


def _with_tls_key(
    session: Session, raw: dict[str, Any], existing: Connector | None
) -> dict[str, Any]:
    """The same for the mutual-TLS key: kept while the client certificate stays the same."""
    tls = raw.get("tls")
    if not isinstance(tls, dict):
        return raw
    key = tls.get("client_key")
    if isinstance(key, dict):
        raise Invalid.at(
            "/tls/client_key",
            f"the secret reference {key} was not resolved: the client resolves "
            "{env: NAME} from its environment before sending (lgsp apply does)",
        )
    if (
        "client_key" not in tls
        and existing is not None
        and existing.tls_key is not None
        and existing.tls is not None
        and tls.get("client_cert") == existing.tls.get("client_cert")
    ):
        kept = connectors.opened_tls_key(session, existing)  # checked again as PEM
        return {**raw, "tls": {**tls, "client_key": kept}}
    return raw


def _connector(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    existing = connectors.find_connector(session=session, name=str(raw.get("name", "")))
    data = _parse(ConnectorCreate, _with_secret(session, raw, existing))
    access.require_agency(caller, data.agency_code, f"connector {data.name}")
    if existing is None:
        _, changes = connectors.create_connector(session=session, data=data)
        return _outcome("connector", data.name, True, changes)
    access.require_agency(caller, existing.agency_code, f"connector {data.name}")
    changes = connectors.replace_connector(session=session, connector=existing, data=data)
    return _outcome("connector", data.name, False, changes)


def _service(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    data = _parse(ServiceCreate, raw)
    key = services.key(data)
    connector = services.connector_for(session, data)
    access.require_agency(caller, connector.agency_code, f"service {key}")
    existing = services.find_service(session=session, name=data.name, version=data.version)
    if existing is None:
        _, changes = services.create_service(session=session, data=data)
        return _outcome("service", key, True, changes)
    access.require_agency(caller, existing.agency_code, f"service {key}")
    changes = services.replace_service(session=session, service=existing, data=data)
    return _outcome("service", key, False, changes)


def _consumer(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    data = _parse(ConsumerCreate, raw)
    existing = consumers.find_consumer(session=session, name=data.name)
    if existing is None:
        access.require_admin(caller, f"creating consumer {data.name}")
        _, changes = consumers.create_consumer(session=session, data=data)
        return _outcome("consumer", data.name, True, changes)
    if diff(consumers.spec(existing), data.model_dump(mode="json")):
        access.require_admin(caller, f"changing consumer {data.name}")
    changes = consumers.replace_consumer(session=session, consumer=existing, data=data)
    return _outcome("consumer", data.name, False, changes)


def _grant(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    data = _parse(grants.GrantSpec, raw)
    key = grants.key(data)
    consumer = grants.grant_consumer(session, data.consumer)
    existing = grants.find_grant(session=session, consumer=data.consumer, service=data.service)
    if existing is None:
        access.require_agency(caller, consumer.agency_code, f"consumer {consumer.name}")
        grant, changes = grants.create_grant(
            session=session, data=data.terms(), requested_by=caller.name
        )
        before = "requested"
    else:
        grant, before = existing, existing.status.value
        wanted = grants.spec(existing) | data.terms().model_dump(mode="json")
        if wanted != grants.spec(existing):
            access.require_agency(caller, consumer.agency_code, f"consumer {consumer.name}")
        changes = grants.set_terms(
            session=session, grant=grant, data=data.terms(), changed_by=caller.name
        )
    decided = grants.settle(session=session, grant=grant, spec=data, caller=caller)
    changes.update(decided)
    if "status" in changes:
        old = None if existing is None else before
        changes["status"] = [old, grant.status.value]
        if old == grant.status.value:
            del changes["status"]
    outcome = _outcome("grant", key, existing is None, changes)
    if decided and grant.status is not GrantStatus.REQUESTED:
        outcome.audit_action = "approve" if grant.status is GrantStatus.APPROVED else "refuse"
    return outcome


def _topic(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    data = _parse(TopicCreate, raw)
    access.require_agency(caller, data.agency_code, f"topic {data.name}")
    existing = topics.find_topic(session=session, name=data.name)
    if existing is None:
        _, changes = topics.create_topic(session=session, data=data)
        return _outcome("topic", data.name, True, changes)
    access.require_agency(caller, existing.agency_code, f"topic {data.name}")
    changes = topics.replace_topic(session=session, topic=existing, data=data)
    return _outcome("topic", data.name, False, changes)


def _unresolved_secrets(raw: dict[str, Any]) -> None:
    """Secrets arrive as strings: an {env: NAME} left in is the client's to resolve."""
    given = raw.get("secrets")
    for i, secret in enumerate(given if isinstance(given, list) else []):
        if isinstance(secret, dict):
            raise Invalid.at(
                f"/secrets/{i}",
                f"the secret reference {secret} was not resolved: the client resolves "
                "{env: NAME} from its environment before sending (lgsp apply does)",
            )


def _subscription(session: Session, raw: dict[str, Any], caller: access.Caller) -> Outcome:
    _unresolved_secrets(raw)
    data = _parse(SubscriptionCreate, raw)
    consumer = subscriptions.subscription_consumer(session, data.consumer)
    access.require_agency(caller, consumer.agency_code, f"consumer {consumer.name}")
    existing = subscriptions.find_subscription(session=session, name=data.name)
    if existing is None:
        _, changes, _ = subscriptions.create_subscription(session=session, data=data)
        return _outcome("subscription", data.name, True, changes)
    owner = subscriptions.subscription_consumer(session, existing.consumer)
    access.require_agency(caller, owner.agency_code, f"subscription {data.name}")
    changes = subscriptions.replace_subscription(session=session, subscription=existing, data=data)
    return _outcome("subscription", data.name, False, changes)


Apply = Callable[[Session, dict[str, Any], access.Caller], Outcome | list[Outcome]]
STEPS: Sequence[tuple[str, Apply, Callable[[dict[str, Any]], str]]] = (
    ("agencies", _agency, lambda r: str(r.get("code"))),
    ("schemas", _schema, lambda r: str(r.get("subject"))),
    ("connectors", _connector, lambda r: str(r.get("name"))),
    ("services", _service, lambda r: f"{r.get('name')}/{r.get('version')}"),
    ("consumers", _consumer, lambda r: str(r.get("name"))),
    ("grants", _grant, lambda r: f"{r.get('consumer')}/{r.get('service')}"),
    ("topics", _topic, lambda r: str(r.get("name"))),
    ("subscriptions", _subscription, lambda r: str(r.get("name"))),
)


def _schema_refusal(exc: SchemaError) -> RegistryError:
    """A schema refusal inside a manifest, in the registry's terms (pointers kept)."""
    kind = {409: Conflict, 403: Forbidden}.get(exc.status, Invalid)
    errors = exc.errors or [{"pointer": "", "message": exc.detail}]
    return kind(exc.detail, errors=errors)


def apply_manifest(*, session: Session, manifest: Manifest, caller: access.Caller) -> list[Outcome]:
    """Apply every object in dependency order; the first refusal points into the manifest.

    Nothing is committed here: the caller commits (or rolls back a dry run, or a refusal).
    """
    outcomes: list[Outcome] = []
    for kind, step, identity in STEPS:
        seen: dict[str, int] = {}
        for i, raw in enumerate(getattr(manifest, kind)):
            where = f"/{kind}/{i}"
            ident = identity(raw)
            if ident in seen:
                raise Invalid.at(where, f"{ident} appears twice (see /{kind}/{seen[ident]})")
            seen[ident] = i
            try:
                done = step(session, raw, caller)
            except RegistryError as exc:
                raise exc.under(where) from None
            except SchemaError as exc:
                raise _schema_refusal(exc).under(where) from None
            outcomes.extend(done if isinstance(done, list) else [done])
    return outcomes
