"""Registry operations on an in-memory SQLite database: rules that need no HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydantic import ValidationError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

import audit.records  # noqa: F401 - its tables
from registry import sealing
from registry.crud import agencies, connectors, services
from registry.crud.diff import diff
from registry.crud.errors import Conflict, Forbidden, Invalid, NotFound
from registry.manifest import Manifest, apply_manifest
from registry.models import AgencyCreate, ConnectorCreate, ConnectorUpdate, ServiceCreate
from registry.types import Role, ServiceStatus


@dataclass(frozen=True)
class Caller:
    name: str = "admin"
    role: Role = Role.ADMINISTRATOR
    agency_code: str | None = None


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    sealing.attach(engine, sealing.KeyRing.generate())
    with Session(engine) as session:
        yield session


AGENCY = "000.00.12.H12"
CONNECTOR = {"name": "csdl", "agency_code": AGENCY, "kind": "rest", "base_url": "http://a"}


def test_errors_move_under_a_manifest_pointer() -> None:
    assert Invalid.at("/name", "bad").under("/services/2").errors == [
        {"pointer": "/services/2/name", "message": "bad"}
    ]
    moved = NotFound("gone").under("/grants/0")
    assert isinstance(moved, NotFound) and moved.errors == [
        {"pointer": "/grants/0", "message": "gone"}
    ]
    with pytest.raises(ValidationError) as exc:
        ServiceCreate.model_validate({"name": "s", "version": "1", "connector": "c", "title": "t",
                                      "routes": [{"method": "GET", "path": "x"}]})  # fmt: skip
    pointers = [e["pointer"] for e in Invalid.from_validation(exc.value).errors or []]
    assert pointers == ["/version", "/routes/0/path"]


def test_diff_names_only_what_changed() -> None:
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": [2, 3]}


def test_lifecycle_transitions() -> None:
    S = ServiceStatus
    services.check_transition(S.DRAFT, S.PUBLISHED)
    services.check_transition(S.DEPRECATED, S.PUBLISHED)
    services.check_transition(S.RETIRED, S.RETIRED)
    with pytest.raises(Conflict, match="allowed transitions are: deprecated"):
        services.check_transition(S.PUBLISHED, S.DRAFT)
    with pytest.raises(Conflict, match="retired is final"):
        services.check_transition(S.RETIRED, S.PUBLISHED)


def opened(session: Session, stored: str | None) -> str:
    assert stored is not None and sealing.is_sealed(stored)
    return sealing.ring_of(session).open(stored, context=sealing.connector_context("csdl"))


def test_connector_secret_is_kept_replaced_and_compared(session: Session) -> None:
    agencies.create_agency(session=session, data=AgencyCreate(code=AGENCY, name="Công an"))
    auth = {"type": "api_key", "secret": "s1"}
    row, changes = connectors.create_connector(
        session=session, data=ConnectorCreate.model_validate({**CONNECTOR, "auth": auth})
    )
    assert changes["auth.secret"] == [None, "(changed)"] and "s1" not in str(changes)
    assert "secret" not in connectors.spec(row)["auth"]
    assert connectors.update_connector(
        session=session, connector=row, data=ConnectorUpdate(read_timeout=5)
    ) == {"read_timeout": [10.0, 5.0]}
    assert opened(session, row.secret) == "s1"  # kept, sealed
    with pytest.raises(sealing.NotOpened, match="open it first"):
        row.auth_config()  # a sealed secret is never used as the credential itself
    clear = connectors.with_secret_opened(row, sealing.ring_of(session)).auth_config()
    assert clear.secret is not None and clear.secret.get_secret_value() == "s1"
    patch = ConnectorUpdate.model_validate({"auth": {"type": "api_key", "secret": "s2"}})
    assert connectors.update_connector(session=session, connector=row, data=patch) == {
        "auth.secret": ["(hidden)", "(changed)"]
    }
    assert opened(session, row.secret) == "s2"
    with pytest.raises(Invalid) as exc:
        connectors.replace_connector(
            session=session,
            connector=row,
            data=ConnectorCreate.model_validate({**CONNECTOR, "kind": "soap",
                                                 "options": {"namespace": "urn:x"}}),
        )  # fmt: skip
    assert exc.value.errors == [{"pointer": "/kind", "message": exc.value.detail}]


def test_manifest_is_applied_in_order_and_then_unchanged(session: Session) -> None:
    doc = Manifest.model_validate({
        "apiVersion": "lgsp.laichau.gov.vn/v1", "kind": "Manifest",
        "agencies": [{"code": AGENCY, "name": "Công an"}],
        "connectors": [CONNECTOR],
        "services": [{"name": "dan-cu", "version": "v1", "connector": "csdl", "title": "Dân cư",
                      "routes": [{"method": "GET", "path": "/x"}]}],
    })  # fmt: skip
    first = apply_manifest(session=session, manifest=doc, caller=Caller())
    assert [(o.kind, o.action) for o in first] == [
        ("agency", "create"),
        ("connector", "create"),
        ("service", "create"),
    ]
    again = apply_manifest(session=session, manifest=doc, caller=Caller())
    assert {o.action for o in again} == {"unchanged"}
    integrator = Caller("i", Role.INTEGRATOR, "000.00.13.H13")
    with pytest.raises(Forbidden) as exc:
        apply_manifest(session=session, manifest=doc, caller=integrator)
    assert exc.value.errors and exc.value.errors[0]["pointer"] == "/connectors/0"
