"""What a consumer finds in the catalogue: the published and deprecated services, each version
with its lifecycle dates and the caller's own grant, from the in-memory snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.catalog.lifecycle import catalog_path
from gateway.exchange.consumers import Caller
from gateway.runtime.snapshot import GrantEntry, ServiceEntry, Snapshot
from registry.types import utcnow

GRANT_REQUEST = "POST /admin/grants"


def grant_for(grants: tuple[GrantEntry, ...], version: str, now: datetime) -> GrantEntry | None:
    """The caller's grant that decides a call to `version`: an approved one in force first, then
    the latest of the others that cover the version."""
    relevant = [g for g in grants if g.covers(version)]
    for grant in relevant:
        if grant.status == "approved" and grant.in_force(now):
            return grant
    return max(relevant, key=lambda g: g.id) if relevant else None


def grant_state(grant: GrantEntry | None, now: datetime) -> str:
    """none, requested, refused, approved, or not-in-force (approved, outside its period)."""
    if grant is None:
        return "none"
    if grant.status == "approved" and not grant.in_force(now):
        return "not-in-force"
    return str(grant.status)


def allowed_purposes(snapshot: Snapshot, consumer: str, service: ServiceEntry) -> list[str]:
    """The purposes of use the caller's grant in force allows for this version."""
    grant = grant_for(snapshot.grants.get((consumer, service.name), ()), service.version, utcnow())
    if grant is None or grant_state(grant, utcnow()) != "approved":
        return []
    return sorted(grant.purposes)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def version_entry(snapshot: Snapshot, key: Caller, service: ServiceEntry) -> dict[str, Any]:
    now = utcnow()
    grant = grant_for(snapshot.grants.get((key.consumer, service.name), ()), service.version, now)
    state = grant_state(grant, now)
    path = catalog_path(service.name, service.version)
    entry: dict[str, Any] = {
        "version": service.version,
        "status": service.status.value,
        "deprecated_at": _iso(service.lifecycle.deprecated_at),
        "sunset_at": _iso(service.lifecycle.sunset_at),
        "personal_data": service.personal_data,
        "routes": [{"method": r.route.method.value, "path": r.route.path} for r in service.routes],
        "grant": {
            "state": state,
            "id": grant.id if grant else None,
            "purposes": sorted(grant.purposes) if grant and state == "approved" else [],
            "valid_from": _iso(grant.valid_from) if grant else None,
            "valid_until": _iso(grant.valid_until) if grant else None,
        },
        "links": {
            "self": path,
            "openapi": f"{path}/openapi.json",
            "api": f"/api/{service.name}/{service.version}",
        },
    }
    if state != "approved":
        entry["request_access"] = _request_access(key, service)
    return entry


def _request_access(key: Caller, service: ServiceEntry) -> dict[str, Any]:
    grant = {"consumer": key.consumer, "service": service.name, "versions": [service.version]}
    if service.personal_data:
        grant["purposes"] = ["<purpose of use>"]
    return {
        "how": (
            f"an integrator of your agency ({key.agency_code}) requests a grant (sharing "
            f"agreement) through the admin API or a manifest; the owner agency "
            f"({service.agency_code}) approves or refuses it"
        ),
        "endpoint": GRANT_REQUEST,
        "body": grant,
        "manifest": {"grants": [grant]},
    }


def service_entry(snapshot: Snapshot, key: Caller, versions: list[ServiceEntry]) -> dict[str, Any]:
    """One service and every published or deprecated version of it (newest last)."""
    latest = versions[-1]
    return {
        "name": latest.name,
        "title": latest.title,
        "description": latest.description,
        "agency": {
            "code": latest.agency_code,
            "name": snapshot.agencies.get(latest.agency_code, latest.agency_code),
        },
        "personal_data": any(v.personal_data for v in versions),
        "versions": [version_entry(snapshot, key, v) for v in versions],
    }


def _version_order(version: str) -> tuple[int, str]:
    digits = version[1:]
    return (int(digits), version) if digits.isdigit() else (0, version)


def by_service(snapshot: Snapshot) -> dict[str, list[ServiceEntry]]:
    """Published and deprecated versions by service name, in version order."""
    found: dict[str, list[ServiceEntry]] = {}
    for (name, _), entry in sorted(snapshot.services.items()):
        found.setdefault(name, []).append(entry)
    for versions in found.values():
        versions.sort(key=lambda e: _version_order(e.version))
    return found
