"""A service version's lifecycle as callers see it: `Deprecation` (RFC 9745) and `Sunset`
(RFC 8594) headers, computed once per snapshot; and the guard on retiring a version in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

from sqlmodel import Session

from audit import queries
from gateway.problems import Problem
from registry.models import Service
from registry.types import ServiceStatus, as_utc, utcnow


@dataclass(frozen=True, slots=True)
class Lifecycle:
    deprecated_at: datetime | None
    sunset_at: datetime | None
    retired_at: datetime | None
    # Added to every answer of the version's data plane (empty while nothing is announced).
    headers: tuple[tuple[bytes, bytes], ...] = ()


NOT_ANNOUNCED = Lifecycle(None, None, None)


def catalog_path(name: str, version: str) -> str:
    return f"/catalog/{name}/{version}"


def lifecycle_of(service: Service) -> Lifecycle:
    """The version's dates and the headers they give; a deprecation date may lie ahead (RFC
    9745 §2.1: the resource will be deprecated then)."""
    deprecated_at = as_utc(service.deprecated_at)
    sunset_at = as_utc(service.sunset_at)
    headers: list[tuple[bytes, bytes]] = []
    if deprecated_at is not None:
        headers.append((b"deprecation", f"@{int(deprecated_at.timestamp())}".encode()))
        link = f'<{catalog_path(service.name, service.version)}>; rel="deprecation"'
        headers.append((b"link", link.encode()))
    if sunset_at is not None:
        headers.append((b"sunset", format_datetime(sunset_at, usegmt=True).encode()))
    return Lifecycle(
        deprecated_at=deprecated_at,
        sunset_at=sunset_at,
        retired_at=as_utc(service.retired_at),
        headers=tuple(headers),
    )


def guard_retirement(
    session: Session, *, name: str, version: str, days: int, force: bool
) -> list[queries.Caller]:
    """Refuse (409) to retire a version some consumer called in the last `days` days, naming
    them, unless `force`; the callers found (for the record of a forced retirement)."""
    found = queries.callers(
        session, service=name, versions=[version], since=utcnow() - timedelta(days=days)
    )
    if found and not force:
        named = ", ".join(f"{c.consumer} ({c.calls} calls)" for c in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise Problem(
            409,
            "version-in-use",
            "Service version still in use",
            f"{name}/{version} was called in the last {days} days by {named}{more}: ask them to "
            "move to another version, or retire it anyway with force=true",
            errors=[{"pointer": "/status", "message": "the version is still called"}],
            extra={"consumers": [c.consumer for c in found]},
        )
    return found


def retiring(status: ServiceStatus | None, current: ServiceStatus) -> bool:
    return status is ServiceStatus.RETIRED and current is not ServiceStatus.RETIRED
