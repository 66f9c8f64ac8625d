"""Services: shared APIs published on a connector, with a lifecycle.

draft → published → deprecated → retired, and deprecated → published (un-deprecate).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from registry.crud.connectors import find_connector
from registry.crud.diff import created, diff
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import (
    Connector,
    Grant,
    Service,
    ServiceBase,
    ServiceCreate,
    ServiceUpdate,
)
from registry.types import ConnectorKind, ServiceStatus, utcnow
from schemas import store as schema_store
from schemas.errors import SchemaError
from schemas.models import SchemaRef, VersionState

S = ServiceStatus
TRANSITIONS: dict[ServiceStatus, frozenset[ServiceStatus]] = {
    S.DRAFT: frozenset({S.PUBLISHED}),
    S.PUBLISHED: frozenset({S.DEPRECATED}),
    S.DEPRECATED: frozenset({S.RETIRED, S.PUBLISHED}),
    S.RETIRED: frozenset(),
}
DELETABLE = frozenset({S.DRAFT, S.RETIRED})


def key(service: Service | ServiceCreate) -> str:
    return f"{service.name}/{service.version}"


def spec(service: Service) -> dict[str, Any]:
    """The service as a manifest writes it."""
    data = ServiceBase.model_validate(service, from_attributes=True).model_dump()
    return ServiceCreate.model_validate({**data, "routes": service.routes}).model_dump(mode="json")


def connector_for(session: Session, data: ServiceCreate) -> Connector:
    """The service's connector, checking what its kind asks of the routes."""
    connector = find_connector(session=session, name=data.connector)
    if connector is None:
        raise Invalid.at("/connector", f"there is no connector {data.connector}")
    if connector.kind is ConnectorKind.SOAP:
        for i, route in enumerate(data.routes):
            if not route.operation:
                raise Invalid.at(
                    f"/routes/{i}/operation",
                    f"connector {connector.name} speaks SOAP: each route needs its operation",
                )
    _check_contracts(session, data)
    return connector


CONTRACTS = ("params_schema", "request_schema", "response_schema")


def _check_contracts(session: Session, data: ServiceCreate) -> None:
    """Each route's contracts name registered versions that are not deleted."""
    for i, route in enumerate(data.routes):
        for name in CONTRACTS:
            ref: SchemaRef | None = getattr(route, name)
            if ref is None:
                continue
            where = f"/routes/{i}/{name}"
            try:
                found = schema_store.get_version(
                    session=session, subject=ref.subject, version=ref.version, deleted=True
                )
            except SchemaError as exc:
                raise Invalid.at(where, exc.detail) from None
            if found.state is VersionState.DELETED:
                raise Invalid.at(
                    where, f"schema {ref} was deleted: it cannot be used by a service any more"
                )


def contract_users(*, session: Session, subject: str, version: int) -> list[str]:
    """Services whose routes name this schema version, as `name/version`."""
    found = set()
    for service in session.exec(select(Service)):
        for route in service.routes:
            for name in CONTRACTS:
                ref = route.get(name)
                if ref and ref.get("subject") == subject and ref.get("version") == version:
                    found.add(key(service))
    return sorted(found)


def check_transition(old: ServiceStatus, new: ServiceStatus) -> None:
    if new is old or new in TRANSITIONS[old]:
        return
    allowed = ", ".join(sorted(t.value for t in TRANSITIONS[old])) or "none (retired is final)"
    raise Conflict(
        f"a {old.value} service cannot become {new.value}; from {old.value} the allowed "
        f"transitions are: {allowed}",
        errors=[{"pointer": "/status", "message": f"cannot go from {old.value} to {new.value}"}],
    )


def _dated(service: Service | None, data: ServiceCreate) -> ServiceCreate:
    """A deprecated version has a deprecation date: the one given, the one it had, or now."""
    if data.status is not S.DEPRECATED or data.deprecated_at is not None:
        return data
    since = service.deprecated_at if service is not None else None
    return data.model_copy(update={"deprecated_at": since or utcnow()})


def _store(service: Service, data: ServiceCreate, connector: Connector) -> None:
    service.sqlmodel_update(data.model_dump(exclude={"routes"}))
    if data.status is S.RETIRED and service.retired_at is None:
        service.retired_at = utcnow()
    service.agency_code = connector.agency_code
    service.routes = [r.model_dump(mode="json", exclude_none=True) for r in data.routes]


def find_service(*, session: Session, name: str, version: str) -> Service | None:
    query = select(Service).where(Service.name == name, Service.version == version)
    return session.exec(query).first()


def get_service(*, session: Session, name: str, version: str) -> Service:
    service = find_service(session=session, name=name, version=version)
    if service is None:
        raise NotFound.of("service", f"{name}/{version}")
    return service


def list_services(
    *,
    session: Session,
    status: ServiceStatus | None = None,
    name: str | None = None,
    agency_code: str | None = None,
) -> list[Service]:
    query = select(Service).order_by(col(Service.name), col(Service.version))
    if status is not None:
        query = query.where(Service.status == status)
    if name is not None:
        query = query.where(Service.name == name)
    if agency_code is not None:
        query = query.where(Service.agency_code == agency_code)
    return list(session.exec(query))


def create_service(*, session: Session, data: ServiceCreate) -> tuple[Service, dict[str, Any]]:
    if find_service(session=session, name=data.name, version=data.version) is not None:
        raise Conflict(f"service {key(data)} already exists")
    connector = connector_for(session, data)
    data = _dated(None, data)
    service = Service(
        name=data.name, version=data.version, connector=data.connector, title=data.title,
        agency_code=connector.agency_code,
    )  # fmt: skip
    _store(service, data, connector)
    session.add(service)
    session.flush()
    return service, created(data.model_dump(mode="json"))


def replace_service(*, session: Session, service: Service, data: ServiceCreate) -> dict[str, Any]:
    """Make `service` match `data`; the changed fields."""
    check_transition(service.status, data.status)
    connector = connector_for(session, data)
    data = _dated(service, data)
    changes = diff(spec(service), data.model_dump(mode="json"))
    if connector.agency_code != service.agency_code:
        changes["agency_code"] = [service.agency_code, connector.agency_code]
    if changes:
        _store(service, data, connector)
        session.add(service)
        session.flush()
    return changes


def update_service(*, session: Session, service: Service, data: ServiceUpdate) -> dict[str, Any]:
    merged = {**spec(service), **data.model_dump(exclude_unset=True)}
    try:
        full = ServiceCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_service(session=session, service=service, data=full)


def delete_service(*, session: Session, service: Service) -> None:
    if service.status not in DELETABLE:
        raise Conflict(
            f"service {key(service)} is {service.status.value}: deprecate and retire it "
            "before deleting it (only draft and retired services can be deleted)"
        )
    others = session.exec(
        select(Service.id).where(Service.name == service.name, Service.id != service.id)
    ).first()
    if others is None:
        grants = list(session.exec(select(Grant).where(Grant.service == service.name).limit(6)))
        if grants:
            named = ", ".join(g.consumer for g in grants[:5])
            raise Conflict(
                f"service {key(service)} is still referenced by the grants of consumers {named}"
            )
    session.delete(service)
    session.flush()
