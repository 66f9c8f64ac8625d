"""Start a simulator by name (what `lgsp simulate <name>` calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from simulators import civil_status, documents, dossier, population, portal

SIMULATORS: dict[str, Callable[..., ASGIApp]] = {
    "population": population.create_app,
    "dossier": dossier.create_app,
    "civil-status": civil_status.create_app,
    "portal": portal.create_app,
    "documents": documents.create_app,
}


def build(name: str, **options: Any) -> ASGIApp:
    """The app of simulator `name`, configured with `options` (its create_app keywords)."""
    try:
        factory = SIMULATORS[name]
    except KeyError:
        known = ", ".join(sorted(SIMULATORS))
        raise ValueError(f"unknown simulator {name!r}; known: {known}") from None
    return factory(**options)


def serve(name: str, *, host: str, port: int, **options: Any) -> None:
    """Serve simulator `name` until interrupted (blocking)."""
    uvicorn.run(build(name, **options), host=host, port=port, ws="none", log_level="info")
