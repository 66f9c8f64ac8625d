"""/admin/schemas: subjects, their immutable versions, compatibility rules and checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.admin.context import AdminRoute, Context, ManagerContext
from gateway.api.deps import ActorDep, RequestIdDep, SessionDep, WritesRegistry
from registry.crud import schemas as ops
from schemas import store
from schemas.compatibility import Level, Policy
from schemas.models import VersionState

router = APIRouter(tags=["schemas"], route_class=AdminRoute)


def _reader(session: SessionDep, actor: ActorDep, rid: RequestIdDep) -> Context:
    return Context(session, actor, rid)


ReaderContext = Annotated[Context, Depends(_reader)]
Deleted = Annotated[bool, Query(description="include soft-deleted versions")]


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Any = Field(alias="schema", description="the JSON Schema document")
    references: list[dict[str, Any]] = []


class CompatibilityCheck(VersionCreate):
    level: Level | None = Field(default=None, description="default: the subject's own")
    policy: Policy | None = None
    version: int | None = Field(default=None, ge=1, description="check against this one only")


class StateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: VersionState


class ConfigChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compatibility: Level | None = None
    policy: Policy | None = None


def _config_json(subject: str | None, config: store.Config) -> dict[str, Any]:
    return {
        "subject": subject,
        "compatibility": config.level.value,
        "policy": config.policy.value,
        "inherited": subject is not None and not (config.level_set or config.policy_set),
    }


def _version_json(ctx: Context, found: store.Registered) -> dict[str, Any]:
    return {**found.to_json(), "used_by": ops.users(ctx.session, found.subject, found.version)}


def _deprecation(response: Response, found: store.Registered) -> None:
    if found.state is VersionState.DEPRECATED:
        response.headers["Deprecation"] = "true"
        response.headers["Warning"] = (
            f'299 - "schema {found.subject}/{found.version} is deprecated"'
        )


@router.get("/schemas")
def list_subjects(ctx: ReaderContext, deleted: Deleted = False, prefix: str = "") -> Any:
    """Subjects with their latest version and compatibility rule."""
    out = []
    for subject in store.subjects(session=ctx.session, deleted=deleted, prefix=prefix):
        found = store.versions(session=ctx.session, subject=subject, deleted=True)
        live = [v for v in found if v.state is not VersionState.DELETED]
        config = store.config(session=ctx.session, subject=subject)
        out.append(
            {
                "subject": subject,
                "latest": live[-1].version if live else None,
                "versions": len(live),
                "compatibility": config.level.value,
                "policy": config.policy.value,
                "owner": found[0].owner,
            }
        )
    return out


@router.post("/schemas/{subject}/versions", status_code=201, dependencies=[WritesRegistry])
def register_version(
    ctx: ManagerContext, subject: str, data: VersionCreate, response: Response
) -> Any:
    """Register a schema as the subject's next version (the same content returns the existing
    version with 200); refused with 409 and each break when the subject's rule forbids it."""
    found, created = register(ctx, subject, data.schema_, data.references)
    if not created:
        response.status_code = 200
    return found.to_json()


@router.get("/schemas/{subject}/versions")
def list_versions(ctx: ReaderContext, subject: str, deleted: Deleted = False) -> Any:
    """The subject's versions, oldest first."""
    return [
        {k: v for k, v in found.to_json().items() if k != "schema"}
        for found in store.versions(session=ctx.session, subject=subject, deleted=deleted)
    ]


@router.get("/schemas/{subject}/versions/{version}")
def get_version(
    ctx: ReaderContext, subject: str, version: str, response: Response, deleted: Deleted = False
) -> Any:
    """One version (a number or `latest`), with what uses it."""
    found = store.get_version(
        session=ctx.session, subject=subject, version=version, deleted=deleted
    )
    _deprecation(response, found)
    return _version_json(ctx, found)


@router.get("/schemas/{subject}/versions/{version}/schema")
def get_schema(ctx: ReaderContext, subject: str, version: str, response: Response) -> Any:
    """Only the schema document of a version."""
    found = store.get_version(session=ctx.session, subject=subject, version=version, deleted=True)
    _deprecation(response, found)
    return found.schema


@router.patch("/schemas/{subject}/versions/{version}", dependencies=[WritesRegistry])
def patch_version(ctx: ManagerContext, subject: str, version: str, data: StateChange) -> Any:
    """Deprecate a version (still served, with a warning) or make it active again."""
    found = store.get_version(session=ctx.session, subject=subject, version=version, deleted=True)
    change_state(ctx, subject, found.version, data.state)
    return _version_json(
        ctx, store.get_version(session=ctx.session, subject=subject, version=found.version,
                               deleted=True)
    )  # fmt: skip


@router.delete("/schemas/{subject}/versions/{version}", dependencies=[WritesRegistry])
def delete_version(ctx: ManagerContext, subject: str, version: str) -> Any:
    """Soft-delete a version: kept for old records, no longer usable for new contracts.
    Refused while a service, topic or schema uses it."""
    found = store.get_version(session=ctx.session, subject=subject, version=version)
    change_state(ctx, subject, found.version, VersionState.DELETED)
    return {"subject": subject, "version": found.version, "state": "deleted"}


@router.delete("/schemas/{subject}", dependencies=[WritesRegistry])
def remove_subject(ctx: ManagerContext, subject: str) -> Any:
    """Soft-delete every version of the subject (all or nothing)."""
    return {"subject": subject, "deleted": delete_subject(ctx, subject)}


@router.get("/schemas/{subject}/versions/{version}/referencedby")
def referenced_by(ctx: ReaderContext, subject: str, version: str) -> Any:
    """Services and schema versions that use this version."""
    found = store.get_version(session=ctx.session, subject=subject, version=version, deleted=True)
    return ops.users(ctx.session, subject, found.version)


@router.post("/schemas/{subject}/compatibility")
def check_compatibility(ctx: ReaderContext, subject: str, data: CompatibilityCheck) -> Any:
    """Check a candidate without registering it: the verdict, each break with its pointer,
    rule, sentence and a counterexample document."""
    verdict = ops.compatibility(
        ctx.session,
        subject,
        data.schema_,
        data.references,
        level=data.level,
        policy=data.policy,
        against=data.version,
    )
    return verdict.to_json()


@router.post("/schemas/{subject}/diff")
def diff_candidate(ctx: ReaderContext, subject: str, data: CompatibilityCheck) -> Any:
    """The changes from a version (default: the latest) to a candidate, each with whether it
    is backward and forward compatible."""
    old = store.get_version(
        session=ctx.session, subject=subject, version=data.version or store.LATEST
    )
    candidate = store.prepare(session=ctx.session, schema=data.schema_, references=data.references)
    return {
        "subject": subject,
        "version": old.version,
        "changes": store.changes_between(session=ctx.session, old=old, candidate=candidate),
    }


@router.get("/schemas/{subject}/config")
def get_config(ctx: ReaderContext, subject: str) -> Any:
    """The compatibility level and policy in force for the subject."""
    store.check_subject(subject)
    return _config_json(subject, store.config(session=ctx.session, subject=subject))


@router.put("/schemas/{subject}/config", dependencies=[WritesRegistry])
def put_config(ctx: ManagerContext, subject: str, data: ConfigChange) -> Any:
    """Set the subject's level and/or policy."""
    set_config(ctx, subject, data.compatibility, data.policy)
    return _config_json(subject, store.config(session=ctx.session, subject=subject))


@router.delete("/schemas/{subject}/config", dependencies=[WritesRegistry])
def delete_config(ctx: ManagerContext, subject: str) -> Any:
    """Drop the subject's own rule: it follows the global default again."""
    clear_config(ctx, subject)
    return _config_json(subject, store.config(session=ctx.session, subject=subject))


@router.get("/schema-config")
def get_global_config(ctx: ReaderContext) -> Any:
    """The global default level and policy."""
    return _config_json(None, store.config(session=ctx.session))


@router.put("/schema-config", dependencies=[WritesRegistry])
def put_global_config(ctx: ManagerContext, data: ConfigChange) -> Any:
    """Set the global default (administrators)."""
    set_config(ctx, None, data.compatibility, data.policy)
    return _config_json(None, store.config(session=ctx.session))


# ---------------------------------------------------------------- shared with /subjects


def register(
    ctx: Context, subject: str, schema: Any, references: Any, schema_type: str = "JSON"
) -> tuple[store.Registered, bool]:
    found, created = ops.register(ctx.session, ctx.actor, subject, schema, references, schema_type)
    if created:
        ctx.record("create", "schema", f"{subject}/{found.version}", {"id": [None, found.id]})
        ctx.commit()
    return found, created


def delete_subject(ctx: Context, subject: str) -> list[int]:
    deleted = ops.delete_subject(ctx.session, ctx.actor, subject)
    for number in deleted:
        ctx.record("delete", "schema", f"{subject}/{number}", {"state": ["active", "deleted"]})
    ctx.commit()
    return deleted


def set_config(
    ctx: Context, subject: str | None, level: Level | None, policy: Policy | None
) -> None:
    changes = ops.set_config(ctx.session, ctx.actor, subject, level, policy)
    if changes:
        ctx.record("update", "schema-config", subject or "(global)", changes)
        ctx.commit()


def clear_config(ctx: Context, subject: str) -> None:
    changes = ops.delete_config(ctx.session, ctx.actor, subject)
    if changes:
        ctx.record("delete", "schema-config", subject, changes)
        ctx.commit()


def change_state(ctx: Context, subject: str, version: int, state: VersionState) -> None:
    changes = ops.change_state(ctx.session, ctx.actor, subject, version, state)
    if changes:
        action = {"deleted": "delete", "deprecated": "deprecate"}.get(state.value, "update")
        ctx.record(action, "schema", f"{subject}/{version}", changes)
        ctx.commit()
