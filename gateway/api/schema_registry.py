"""A Confluent Schema Registry-compatible subset at the hub's root, over the same registry, so
that confluent-kafka's SchemaRegistryClient and JSON serializer work against the hub unchanged.

Errors use Confluent's body (`{"error_code", "message"}`), not problem+json: that is what the
clients parse. Any principal's key reads (as Basic password, Bearer token or X-API-Key);
integrators and administrators write. Only JSON Schema is accepted; deletion is soft only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from gateway.api.admin import schemas as shared
from gateway.api.admin.context import (
    Context,
    ManagerContext,
    database_problem,
    preflight,
    problem_for,
)
from gateway.api.deps import ActorDep, RequestIdDep, SessionDep, WritesRegistry
from gateway.problems import Problem, dump_json
from registry.crud import schemas as ops
from registry.crud.errors import RegistryError
from schemas import store
from schemas.compatibility import Verdict
from schemas.errors import SchemaError, SchemaInvalid
from schemas.models import VersionState

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def _error(status: int, code: int, message: str) -> Response:
    body = dump_json({"error_code": code, "message": message})
    return Response(body, status_code=status, media_type=MEDIA_TYPE)


class ConfluentRoute(APIRoute):
    """Every refusal in Confluent's error shape, at this one boundary."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                await preflight(request)
                return await handler(request)
            except SchemaError as exc:
                message = exc.detail
                if exc.errors:
                    message += ": " + "; ".join(
                        f"{e['pointer'] or '/'} {e['message']}" for e in exc.errors[:10]
                    )
                return _error(exc.confluent_status, exc.error_code, message)
            except (IntegrityError, OperationalError, DataError) as exc:
                problem = database_problem(exc, request.url.path)
                return _error(problem.status, problem.status * 100 + 1, problem.detail)
            except RegistryError as exc:
                status = problem_for(exc).status
                return _error(status, status * 100 + 1, exc.detail)
            except Problem as exc:
                return _error(exc.status, exc.status * 100 + 1, exc.detail)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = "/".join(str(p) for p in first.get("loc", ())[1:])
                return _error(422, 422, f"invalid input at /{where}: {first.get('msg', '')}")

        return guarded


router = APIRouter(tags=["schema registry (Confluent-compatible)"], route_class=ConfluentRoute)


def _reader(session: SessionDep, actor: ActorDep, rid: RequestIdDep) -> Context:
    return Context(session, actor, rid)


ReaderContext = Annotated[Context, Depends(_reader)]
Flag = Annotated[bool, Query()]


class SchemaBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schema_: str = Field(alias="schema")
    schema_type: str = Field(default="JSON", alias="schemaType")
    references: list[dict[str, Any]] | None = None


class CompatibilityBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    compatibility: str | None = None
    compatibility_policy: str | None = Field(default=None, alias="compatibilityPolicy")


def _parse(body: SchemaBody) -> Any:
    try:
        return json.loads(body.schema_)
    except (ValueError, RecursionError) as exc:
        raise SchemaInvalid.at("/schema", f"the schema string is not JSON: {exc}") from None


def _answer(data: Any) -> Response:
    return Response(dump_json(data), media_type=MEDIA_TYPE)


def _version(found: store.Registered) -> dict[str, Any]:
    return {
        "subject": found.subject,
        "id": found.id,
        "version": found.version,
        "schemaType": found.schema_type,
        "schema": found.content,
        "references": [r.model_dump() for r in found.references],
    }


@router.get("/schemas/types")
def schema_types(ctx: ReaderContext) -> Response:
    """The schema types the registry holds."""
    return _answer(["JSON"])


@router.get("/subjects")
def subjects(
    ctx: ReaderContext,
    deleted: Flag = False,
    subject_prefix: str = Query("", alias="subjectPrefix"),
) -> Response:
    """Subject names."""
    return _answer(store.subjects(session=ctx.session, deleted=deleted, prefix=subject_prefix))


@router.get("/subjects/{subject}/versions")
def versions(ctx: ReaderContext, subject: str, deleted: Flag = False) -> Response:
    """A subject's version numbers."""
    found = store.versions(session=ctx.session, subject=subject, deleted=deleted)
    return _answer([v.version for v in found])


@router.post("/subjects/{subject}/versions", dependencies=[WritesRegistry])
def register(ctx: ManagerContext, subject: str, body: SchemaBody) -> Response:
    """Register a schema (the same content returns the existing id)."""
    found, _ = shared.register(ctx, subject, _parse(body), body.references, body.schema_type)
    return _answer(_version(found))


@router.post("/subjects/{subject}")
def lookup(ctx: ReaderContext, subject: str, body: SchemaBody, deleted: Flag = False) -> Response:
    """Whether the subject already holds this schema, and as which version."""
    store.versions(session=ctx.session, subject=subject, deleted=deleted)  # 40401 if unknown
    candidate = store.prepare(
        session=ctx.session, schema=_parse(body), references=body.references,
        schema_type=body.schema_type,
    )  # fmt: skip
    found = store.find_registered(session=ctx.session, subject=subject, candidate=candidate)
    if found is None:
        return _error(404, 40403, f"schema not found under subject {subject!r}")
    return _answer(_version(found))


@router.get("/subjects/{subject}/versions/{version}")
def get_version(ctx: ReaderContext, subject: str, version: str, deleted: Flag = False) -> Response:
    """One version ('latest' or -1 for the newest)."""
    found = store.get_version(
        session=ctx.session, subject=subject, version=version, deleted=deleted
    )
    return _answer(_version(found))


@router.get("/subjects/{subject}/versions/{version}/schema")
def get_version_schema(ctx: ReaderContext, subject: str, version: str) -> Response:
    """Only the schema of a version."""
    found = store.get_version(session=ctx.session, subject=subject, version=version)
    return Response(found.content, media_type=MEDIA_TYPE)


@router.get("/subjects/{subject}/versions/{version}/referencedby")
def referenced_by(ctx: ReaderContext, subject: str, version: str) -> Response:
    """Ids of the schemas whose references name this version."""
    found = store.get_version(session=ctx.session, subject=subject, version=version, deleted=True)
    ids = []
    for name in store.referenced_by(session=ctx.session, subject=subject, version=found.version):
        other, number = name.rsplit("/", 1)
        ids.append(store.get_version(session=ctx.session, subject=other, version=number).id)
    return _answer(sorted(set(ids)))


@router.delete("/subjects/{subject}/versions/{version}", dependencies=[WritesRegistry])
def delete_version(
    ctx: ManagerContext, subject: str, version: str, permanent: Flag = False
) -> Response:
    """Soft-delete a version (permanent deletion is refused: records keep their schemas)."""
    if permanent:
        return _refuse_permanent()
    found = store.get_version(session=ctx.session, subject=subject, version=version)
    shared.change_state(ctx, subject, found.version, VersionState.DELETED)
    return _answer(found.version)


@router.delete("/subjects/{subject}", dependencies=[WritesRegistry])
def delete_subject(ctx: ManagerContext, subject: str, permanent: Flag = False) -> Response:
    """Soft-delete every version of a subject."""
    if permanent:
        return _refuse_permanent()
    return _answer(shared.delete_subject(ctx, subject))


def _refuse_permanent() -> Response:
    return _error(
        422,
        42206,
        "permanent deletion is not offered: exchange records keep the schemas they were "
        "validated with; a soft delete stops new use",
    )


@router.get("/schemas/ids/{schema_id}")
def schema_by_id(ctx: ReaderContext, schema_id: int) -> Response:
    """A schema by its global id."""
    doc = store.get_document(session=ctx.session, schema_id=schema_id)
    return _answer(
        {"schema": doc.content, "schemaType": doc.schema_type, "references": doc.references}
    )


@router.get("/schemas/ids/{schema_id}/schema")
def schema_only_by_id(ctx: ReaderContext, schema_id: int) -> Response:
    """Only the schema text of a global id."""
    doc = store.get_document(session=ctx.session, schema_id=schema_id)
    return Response(doc.content, media_type=MEDIA_TYPE)


@router.get("/schemas/ids/{schema_id}/versions")
def versions_by_id(ctx: ReaderContext, schema_id: int) -> Response:
    """The subject versions that hold a global id."""
    store.get_document(session=ctx.session, schema_id=schema_id)
    pairs = store.usages_of_document(session=ctx.session, schema_id=schema_id)
    return _answer([{"subject": s, "version": v} for s, v in pairs])


@router.get("/schemas/ids/{schema_id}/subjects")
def subjects_by_id(ctx: ReaderContext, schema_id: int) -> Response:
    """The subjects that hold a global id."""
    store.get_document(session=ctx.session, schema_id=schema_id)
    pairs = store.usages_of_document(session=ctx.session, schema_id=schema_id)
    return _answer(sorted({s for s, _ in pairs}))


def _config(config: store.Config) -> dict[str, Any]:
    return {"compatibilityLevel": config.level.value, "compatibilityPolicy": config.policy.value}


@router.get("/config")
def get_global_config(ctx: ReaderContext) -> Response:
    """The global compatibility level."""
    return _answer(_config(store.config(session=ctx.session)))


@router.put("/config", dependencies=[WritesRegistry])
def put_global_config(ctx: ManagerContext, body: CompatibilityBody) -> Response:
    """Set the global compatibility level (administrators)."""
    level, policy = _levels(body)
    shared.set_config(ctx, None, level, policy)
    return _answer({"compatibility": store.config(session=ctx.session).level.value})


@router.get("/config/{subject}")
def get_config(ctx: ReaderContext, subject: str, default_to_global: Flag = True) -> Response:
    """A subject's compatibility level (its own, or the global default)."""
    config = store.config(session=ctx.session, subject=subject)
    if not default_to_global and not config.level_set:
        return _error(404, 40408, f"subject {subject!r} has no compatibility level of its own")
    return _answer(_config(config))


@router.put("/config/{subject}", dependencies=[WritesRegistry])
def put_config(ctx: ManagerContext, subject: str, body: CompatibilityBody) -> Response:
    """Set a subject's compatibility level (and, as an extension, its policy)."""
    level, policy = _levels(body)
    shared.set_config(ctx, subject, level, policy)
    return _answer(
        {"compatibility": store.config(session=ctx.session, subject=subject).level.value}
    )


@router.delete("/config/{subject}", dependencies=[WritesRegistry])
def delete_config(ctx: ManagerContext, subject: str) -> Response:
    """Drop a subject's own level; answers the level it had."""
    before = store.config(session=ctx.session, subject=subject)
    shared.clear_config(ctx, subject)
    return _answer(_config(before))


def _levels(body: CompatibilityBody) -> tuple[Any, Any]:
    level = store.parse_level(body.compatibility) if body.compatibility else None
    policy = store.parse_policy(body.compatibility_policy) if body.compatibility_policy else None
    if level is None and policy is None:
        raise SchemaInvalid.at("/compatibility", "give a compatibility level")
    return level, policy


def _verdict(verdict: Verdict, verbose: bool) -> Response:
    data: dict[str, Any] = {"is_compatible": verdict.is_compatible is True}
    if verbose:
        data["messages"] = [
            f"{b.rule} at {b.pointer or '/'}: {b.message}"
            + (f" (version {b.version})" if b.version else "")
            + f"; counterexample: {dump_json(b.counterexample).decode()}"
            for b in verdict.breaks
        ] + [f"UNDECIDED {u.rule} at {u.pointer or '/'}: {u.message}" for u in verdict.undecided]
    return _answer(data)


@router.post("/compatibility/subjects/{subject}/versions/{version}")
def compatibility(
    ctx: ReaderContext, subject: str, version: str, body: SchemaBody, verbose: Flag = False
) -> Response:
    """Is the schema compatible with one version of the subject (under its level)?"""
    found = store.get_version(session=ctx.session, subject=subject, version=version)
    verdict = ops.compatibility(
        ctx.session, subject, _parse(body), body.references, against=found.version
    )
    return _verdict(verdict, verbose)


@router.post("/compatibility/subjects/{subject}/versions")
def compatibility_all(
    ctx: ReaderContext, subject: str, body: SchemaBody, verbose: Flag = False
) -> Response:
    """Is the schema compatible with the subject's versions, as its level says?"""
    verdict = ops.compatibility(ctx.session, subject, _parse(body), body.references)
    return _verdict(verdict, verbose)
