"""Agencies (cơ quan): created by administrators, referenced by everything an agency owns."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from registry.crud.diff import created, diff
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import (
    Agency,
    AgencyCreate,
    AgencyUpdate,
    Connector,
    Consumer,
    Principal,
    Service,
    Topic,
)


def spec(agency: Agency) -> dict[str, Any]:
    """The agency as a manifest writes it."""
    return AgencyCreate.model_validate(agency.model_dump()).model_dump(mode="json")


def get_agency(*, session: Session, code: str) -> Agency:
    agency = session.get(Agency, code)
    if agency is None:
        raise NotFound.of("agency", code)
    return agency


def list_agencies(*, session: Session) -> list[Agency]:
    return list(session.exec(select(Agency).order_by(col(Agency.code))))


def create_agency(*, session: Session, data: AgencyCreate) -> tuple[Agency, dict[str, Any]]:
    if session.get(Agency, data.code) is not None:
        raise Conflict(f"agency {data.code} already exists")
    agency = Agency.model_validate(data.model_dump())
    session.add(agency)
    session.flush()
    return agency, created(data.model_dump(mode="json"))


def replace_agency(*, session: Session, agency: Agency, data: AgencyCreate) -> dict[str, Any]:
    """Make `agency` match `data`; the changed fields, {field: [old, new]}."""
    changes = diff(spec(agency), data.model_dump(mode="json"))
    if changes:
        agency.sqlmodel_update(data.model_dump(exclude={"code"}))
        session.add(agency)
        session.flush()
    return changes


def update_agency(*, session: Session, agency: Agency, data: AgencyUpdate) -> dict[str, Any]:
    merged = {**spec(agency), **data.model_dump(exclude_unset=True)}
    try:
        full = AgencyCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_agency(session=session, agency=agency, data=full)


def references(session: Session, code: str) -> list[str]:
    """What still belongs to the agency, as `kind name, ...` phrases."""
    found: list[str] = []
    owned: list[tuple[str, Any, Any]] = [
        ("connectors", Connector.name, Connector.agency_code),
        ("services", Service.name, Service.agency_code),
        ("consumers", Consumer.name, Consumer.agency_code),
        ("principals", Principal.name, Principal.agency_code),
        ("topics", Topic.name, Topic.agency_code),
    ]
    for kind, name, agency_code in owned:
        names = list(session.exec(select(name).where(agency_code == code).limit(6)))
        if names:
            shown = ", ".join(sorted(set(map(str, names)))[:5])
            found.append(f"{kind} {shown}{', ...' if len(names) > 5 else ''}")
    return found


def delete_agency(*, session: Session, agency: Agency) -> None:
    used = references(session, agency.code)
    if used:
        raise Conflict(f"agency {agency.code} is still referenced by {'; '.join(used)}")
    session.delete(agency)
    session.flush()
