"""The auditors' API under /audit: records (search, counts, exports, data-subject reports) and
the log's integrity (keys, signed checkpoints, inclusion and consistency proofs)."""

from fastapi import APIRouter

from gateway.api.audit import proofs, records
from gateway.api.deps import KnownQueryOnly

router = APIRouter(dependencies=[KnownQueryOnly])
router.include_router(records.router)
router.include_router(proofs.router)
