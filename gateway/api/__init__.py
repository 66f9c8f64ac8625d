"""The hub's HTTP APIs for people and tools, on FastAPI: admin (the registry), audit (records
and proofs), the Confluent-compatible schema registry, the consumers' topic API, health."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from gateway.api.errors import install_problem_handlers
from gateway.runtime import Runtime

DOCS_ASSETS = "/docs/assets"


def create_api(runtime: Runtime) -> FastAPI:
    """FastAPI for everything but the data plane: admin, audit, schema registry, topics, health."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # Swagger UI at /docs and ReDoc at /redoc with their assets served by the hub: no CDN.
    app = FastAPIOffline(
        title="LGSP Hub",
        summary="Provincial data-integration hub: registry, audit, schema-registry and topic APIs",
        version=importlib.metadata.version("lgsp-hub"),
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    from gateway.api import admin, audit, catalog, health, oauth2, schema_registry
    from gateway.exchange import topics

    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(audit.router)
    app.include_router(schema_registry.router)
    app.include_router(topics.router)
    app.include_router(oauth2.router)
    app.include_router(catalog.router)
    return app
