"""/admin/apply and /admin/export: the registry as a declarative manifest."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.api.admin.context import AdminRoute, ManagerContext
from gateway.api.deps import SettingsDep, WritesRegistry
from gateway.catalog.lifecycle import guard_retirement
from registry import revision
from registry.crud import access
from registry.crud.export import export_manifest
from registry.manifest import NEVER_DELETES, Manifest, apply_manifest

router = APIRouter(tags=["manifests"], route_class=AdminRoute)


class ObjectResult(BaseModel):
    kind: str
    key: str
    action: Literal["create", "update", "unchanged"]
    changes: dict[str, Any]


class ApplyResult(BaseModel):
    dry_run: bool
    applied: bool  # false on a dry run, and when nothing changed
    revision: int
    objects: list[ObjectResult]
    summary: dict[str, int]
    note: str = NEVER_DELETES


@router.post("/apply", response_model=ApplyResult, dependencies=[WritesRegistry])
def apply(
    ctx: ManagerContext,
    settings: SettingsDep,
    manifest: Manifest,
    dry_run: bool = False,
    force: bool = False,
) -> ApplyResult:
    """Apply a manifest all-or-nothing (or, with dry_run, only say what would change);
    retiring a service version called recently needs `force=true`."""
    outcomes = apply_manifest(session=ctx.session, manifest=manifest, caller=ctx.actor)
    for outcome in outcomes:
        old, new = outcome.changes.get("status") or (None, None)
        if outcome.kind == "service" and new == "retired" and old != "retired":
            name, _, version = outcome.key.partition("/")
            forced = guard_retirement(
                ctx.session, name=name, version=version, days=settings.retirement_guard_days,
                force=force,
            )  # fmt: skip
            if forced:
                outcome.changes["forced_retirement"] = {"callers": [c.consumer for c in forced]}
    changed = [o for o in outcomes if o.action != "unchanged"]
    if dry_run or not changed:
        ctx.session.rollback()
    else:
        for outcome in changed:
            ctx.record(outcome.audit_action, outcome.kind, outcome.key, outcome.changes)
        ctx.commit()
    summary = {a: sum(o.action == a for o in outcomes) for a in ("create", "update", "unchanged")}
    return ApplyResult(
        dry_run=dry_run,
        applied=bool(changed) and not dry_run,
        revision=revision.current(ctx.session),
        objects=[ObjectResult(kind=o.kind, key=o.key, action=o.action, changes=o.changes)
                 for o in outcomes],
        summary=summary,
    )  # fmt: skip


@router.get("/export")
def export(ctx: ManagerContext) -> dict[str, Any]:
    """The registry as a manifest (an integrator's: its agency's objects); never a secret."""
    return export_manifest(session=ctx.session, agency_code=access.agency_scope(ctx.actor))
