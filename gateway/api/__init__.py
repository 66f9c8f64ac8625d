"""The hub's HTTP APIs for people and tools, on FastAPI: admin (the registry), audit (records
and proofs), the Confluent-compatible schema registry, the consumers' topic API, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.api.errors import install_problem_handlers
from gateway.runtime import Runtime


def create_api(runtime: Runtime) -> FastAPI:
    """FastAPI for everything but the data plane: admin, audit, health."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="LGSP Hub",
        summary="Provincial data-integration hub: admin, audit and catalogue APIs",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    from gateway.api import admin, audit, health, schema_registry
    from gateway.exchange import topics

    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(audit.router)
    app.include_router(schema_registry.router)
    app.include_router(topics.router)
    return app
