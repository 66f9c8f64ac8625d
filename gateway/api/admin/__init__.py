"""The management API under /admin: registry objects, principals and manifests."""

from fastapi import APIRouter

from gateway.api.admin import (
    agencies,
    callers,
    connectors,
    consumers,
    grants,
    manifests,
    principals,
    schemas,
    services,
    subscriptions,
    topics,
)
from gateway.api.deps import KnownQueryOnly

router = APIRouter(prefix="/admin", dependencies=[KnownQueryOnly])
for _module in (
    agencies,
    connectors,
    schemas,
    callers,  # before services: /services/{name}/callers is not a version called "callers"
    services,
    consumers,
    grants,
    topics,
    subscriptions,
    principals,
    manifests,
):
    router.include_router(_module.router)
