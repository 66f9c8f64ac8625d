"""/catalog: the services a consumer may discover, and an OpenAPI document for each version.

Consumers authenticate as on the data plane (`gateway.exchange.consumers.authenticate`); the
answers come from the in-memory snapshot of the registry, with the caller's own grants.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security

from audit.records import RecordKind
from gateway.api.deps import CONSUMER_KEY, CONSUMER_TOKEN, RequestIdDep, RuntimeDep
from gateway.catalog import listing
from gateway.catalog.openapi import service_document
from gateway.exchange import calls, consumers
from gateway.exchange.tokens import Verifier
from gateway.problems import Problem
from gateway.runtime.snapshot import ServiceEntry, Snapshot

router = APIRouter(
    prefix="/catalog",
    tags=["catalogue"],
    dependencies=[Security(CONSUMER_KEY), Security(CONSUMER_TOKEN)],
)


def _caller(
    request: Request, runtime: RuntimeDep, rid: str | None
) -> tuple[Snapshot, consumers.Caller]:
    snapshot = runtime.snapshot
    headers = {k.lower(): v for k, v in request.headers.items()}
    call = calls.Call(kind=RecordKind.EXCHANGE, request_id=rid or calls.request_id(None))
    verifier = Verifier.from_settings(runtime.settings)
    caller = consumers.authenticate(
        headers, snapshot, runtime.settings.key_pepper, call, verifier=verifier
    )
    return snapshot, caller


def _version(snapshot: Snapshot, name: str, version: str) -> ServiceEntry:
    service = snapshot.services.get((name, version))
    if service is not None:
        return service
    known = sorted(v for (n, v) in snapshot.services if n == name)
    detail = (
        f"service {name} has no published version {version} (published: {', '.join(known)})"
        if known
        else f"the catalogue has no service called {name}"
    )
    raise Problem(404, "unknown-service", "Unknown service or version", detail)


@router.get("")
def catalog(request: Request, runtime: RuntimeDep, rid: RequestIdDep) -> dict[str, Any]:
    """The published and deprecated services, with your grant for each version."""
    snapshot, key = _caller(request, runtime, rid)
    services = listing.by_service(snapshot)
    return {
        "consumer": key.consumer,
        "items": [listing.service_entry(snapshot, key, v) for v in services.values()],
    }


@router.get("/{name}/{version}")
def catalog_version(
    request: Request, runtime: RuntimeDep, rid: RequestIdDep, name: str, version: str
) -> dict[str, Any]:
    """One version of a service: lifecycle, routes, your grant, how to request access."""
    snapshot, key = _caller(request, runtime, rid)
    service = _version(snapshot, name, version)
    entry = listing.service_entry(snapshot, key, [service])
    (detail,) = entry.pop("versions")
    return {**entry, **detail}


@router.get("/{name}/{version}/openapi.json")
def catalog_openapi(
    request: Request, runtime: RuntimeDep, rid: RequestIdDep, name: str, version: str
) -> dict[str, Any]:
    """The version's OpenAPI 3.1 document, with the purposes your grant allows."""
    snapshot, key = _caller(request, runtime, rid)
    service = _version(snapshot, name, version)
    purposes = listing.allowed_purposes(snapshot, key.consumer, service)
    return service_document(service, hub_url=str(request.base_url), purposes=purposes)
