"""The audit log's integrity API: signing keys, signed checkpoints, inclusion and consistency
proofs (auditors only, read-only). Hashes are standard base64, as in the checkpoints."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from audit import proofs
from audit.errors import ProofError
from audit.proofs import StoredCheckpoint
from gateway.api.deps import AuditorDep, RuntimeDep
from gateway.problems import Problem

router = APIRouter(prefix="/audit", tags=["audit"])

BIGINT_MAX = 2**63 - 1  # tree sizes are BIGINT on PostgreSQL: a larger one overflows
INTEGER_MAX = 2**31 - 1  # checkpoint ids (the cursor) are INTEGER


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class KeyOut(BaseModel):
    key_id: str
    name: str
    vkey: str = Field(description="C2SP signed-note verifier key: name+keyhash+base64(0x01‖key)")
    created_at: datetime
    retired_at: datetime | None


class KeysOut(BaseModel):
    keys: list[KeyOut]


class CheckpointOut(BaseModel):
    size: int
    root: str = Field(description="RFC 9162 root hash, base64")
    time: datetime
    key_id: str
    note: str = Field(description="The checkpoint as a C2SP signed note")


class CheckpointPage(BaseModel):
    items: list[CheckpointOut]
    next_cursor: str | None


class InclusionOut(BaseModel):
    record_id: str
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    checkpoint: CheckpointOut


class ConsistencyOut(BaseModel):
    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    root_from: str
    root_to: str
    proof: list[str]

    model_config = {"populate_by_name": True}


def checkpoint_out(checkpoint: StoredCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        size=checkpoint.size,
        root=b64(checkpoint.root),
        time=checkpoint.time,
        key_id=checkpoint.key_id,
        note=checkpoint.note,
    )


def _problem(exc: ProofError, pointer: str | None = None) -> Problem:
    kinds = {
        404: ("not-found", "Not found"),
        409: ("not-yet", "Not in a checkpoint yet"),
        500: ("log-inconsistent", "The audit log is inconsistent"),
    }
    kind, title = kinds.get(exc.status, ("validation-error", "Invalid input"))
    errors = [{"pointer": pointer, "message": str(exc)}] if pointer and exc.status == 422 else None
    return Problem(exc.status, kind, title, str(exc), errors=errors)


@router.get("/keys", response_model=KeysOut)
def list_keys(_: AuditorDep, runtime: RuntimeDep) -> KeysOut:
    """Every key that has signed checkpoints: the current one and the retired ones."""
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT key_id, name, vkey, created_at, retired_at FROM audit_key")
        ).all()
    keys = [KeyOut.model_validate(r, from_attributes=True) for r in rows]
    keys.sort(key=lambda k: k.created_at)
    return KeysOut(keys=keys)


def _wants_note(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/plain" in accept and "application/json" not in accept


@router.get("/checkpoints/latest", response_model=CheckpointOut)
def latest_checkpoint(request: Request, _: AuditorDep, runtime: RuntimeDep) -> Any:
    """The newest signed checkpoint (`Accept: text/plain`: the signed note alone)."""
    with runtime.engine.connect() as connection:
        checkpoint = proofs.latest_checkpoint(connection)
    if checkpoint is None:
        raise Problem(404, "not-found", "Not found", "the log has no signed checkpoint yet")
    if _wants_note(request):
        return PlainTextResponse(checkpoint.note)
    return checkpoint_out(checkpoint)


@router.get("/checkpoints", response_model=CheckpointPage)
def list_checkpoints(
    _: AuditorDep,
    runtime: RuntimeDep,
    size: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="the checkpoint of this tree size")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> CheckpointPage:
    """Signed checkpoints, newest first; with `size`, the one of exactly that size."""
    if cursor is not None and int(cursor) > INTEGER_MAX:
        message = "the cursor is not one this API returned"
        raise Problem(
            400,
            "bad-cursor",
            "Bad cursor",
            message,
            errors=[{"pointer": "/query/cursor", "message": message}],
        )
    with runtime.engine.connect() as connection:
        if size is not None:
            found = proofs.checkpoint_of_size(connection, size)
            if found is None:
                raise Problem(404, "not-found", "Not found", f"no checkpoint of size {size}")
            return CheckpointPage(items=[checkpoint_out(found)], next_cursor=None)
        page = proofs.checkpoints(
            connection, before_id=int(cursor) if cursor else None, limit=limit + 1
        )
    more = len(page) > limit
    page = page[:limit]
    return CheckpointPage(
        items=[checkpoint_out(c) for c in page],
        next_cursor=str(page[-1].id) if more and page else None,
    )


@router.get("/proofs/inclusion", response_model=InclusionOut)
async def inclusion_proof(
    _: AuditorDep,
    runtime: RuntimeDep,
    record: Annotated[
        str,
        Query(min_length=1, max_length=36, pattern=r"^[^\x00]*$", description="the record's id"),
    ],
    size: Annotated[
        int | None,
        Query(ge=1, le=BIGINT_MAX, description="a checkpoint's size (default: the latest)"),
    ] = None,
) -> InclusionOut:
    """RFC 9162 inclusion proof of one record's leaf in a signed checkpoint."""
    try:
        found = await asyncio.to_thread(proofs.inclusion, runtime.engine, record, size=size)
    except ProofError as exc:
        raise _problem(exc) from None
    return InclusionOut(
        record_id=found.record_id,
        seq=found.seq,
        leaf_index=found.leaf_index,
        tree_size=found.checkpoint.size,
        leaf_hash=b64(found.leaf_hash),
        proof=[b64(p) for p in found.proof],
        checkpoint=checkpoint_out(found.checkpoint),
    )


@router.get("/proofs/consistency", response_model=ConsistencyOut, response_model_by_alias=True)
async def consistency_proof(
    _: AuditorDep,
    runtime: RuntimeDep,
    first: Annotated[int, Query(alias="from", ge=1, le=BIGINT_MAX)],
    second: Annotated[int, Query(alias="to", ge=1, le=BIGINT_MAX)],
) -> Response | ConsistencyOut:
    """RFC 9162 consistency proof between the trees of two sizes (e.g. two checkpoints)."""
    try:
        proof, root_from, root_to = await asyncio.to_thread(
            proofs.consistency, runtime.engine, first, second
        )
    except ProofError as exc:
        raise _problem(exc, "/query/to") from None
    return ConsistencyOut(
        from_size=first,
        to_size=second,
        root_from=b64(root_from),
        root_to=b64(root_to),
        proof=[b64(p) for p in proof],
    )
