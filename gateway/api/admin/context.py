"""What every admin route shares: its calling context, change recording and error mapping."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

import orjson
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlmodel import Session

from audit.changes import record_change
from gateway.api.deps import Actor, AdminDep, ManagerDep, RequestIdDep, SessionDep
from gateway.problems import Problem
from registry import revision
from registry.crud import errors
from schemas.errors import SchemaError
from schemas.nesting import raw_too_deep

log = logging.getLogger(__name__)
MAX_BODY_NESTING = 200  # far beyond any manifest or schema the registry accepts


@dataclass(frozen=True, slots=True)
class Context:
    """One admin request: its session, caller and request id."""

    session: Session
    actor: Actor
    request_id: str | None

    def record(
        self, action: str, object_type: str, object_key: str, changes: dict[str, Any]
    ) -> None:
        """Bump the revision and add the audit record, in the change's transaction."""
        revision.bump(self.session)
        record_change(
            self.session,
            actor=self.actor.name,
            action=action,
            object_type=object_type,
            object_key=object_key,
            details={"changes": changes} if changes else None,
            request_id=self.request_id,
        )

    def commit(self) -> None:
        self.session.commit()


def _admin(session: SessionDep, actor: AdminDep, rid: RequestIdDep) -> Context:
    return Context(session, actor, rid)


def _manager(session: SessionDep, actor: ManagerDep, rid: RequestIdDep) -> Context:
    return Context(session, actor, rid)


AdminContext = Annotated[Context, Depends(_admin)]
ManagerContext = Annotated[Context, Depends(_manager)]

_STATUS: dict[type[errors.RegistryError], tuple[int, str, str]] = {
    errors.Invalid: (422, "validation-error", "Invalid input"),
    errors.NotFound: (404, "not-found", "Not found"),
    errors.Conflict: (409, "conflict", "Conflict"),
    errors.Forbidden: (403, "forbidden", "Not allowed"),
}


def problem_for(exc: errors.RegistryError) -> Problem:
    status, kind, title = _STATUS.get(type(exc), (400, "bad-request", "Bad request"))
    return Problem(status, kind, title, exc.detail, errors=exc.errors)


def _nul_pointers(node: Any, where: str = "") -> list[str]:
    if isinstance(node, str):
        return [where] if "\x00" in node else []
    if isinstance(node, dict):
        found = [f"{where}/{k}" for k in node if "\x00" in k]
        for k, v in node.items():
            found += _nul_pointers(v, f"{where}/{k.replace('~', '~0').replace('/', '~1')}")
        return found
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _nul_pointers(v, f"{where}/{i}")]
    return []


async def preflight(request: Request) -> None:
    """Refused up front: bodies nested deeper than any registry object (before a recursive
    parser sees them), and NUL characters (PostgreSQL cannot store them in text)."""
    where: list[str] = []
    if "\x00" in request.scope["path"]:
        where.append("/path")
    if "\x00" in unquote(request.scope.get("query_string", b"").decode("latin-1")):
        where.append("/query")
    body = await request.body()
    if raw_too_deep(body, MAX_BODY_NESTING):
        raise Problem(
            400,
            "too-deep",
            "Document nested too deeply",
            f"the body nests more than {MAX_BODY_NESTING} levels of objects and arrays",
        )
    if b"\\u0000" in body:
        with contextlib.suppress(orjson.JSONDecodeError):  # FastAPI answers malformed JSON
            where += _nul_pointers(orjson.loads(body))
    if where:
        raise Problem(
            422,
            "validation-error",
            "Invalid input",
            "NUL characters are not allowed",
            errors=[{"pointer": p, "message": "must not contain NUL characters"} for p in where],
        )


def database_problem(exc: IntegrityError | OperationalError | DataError, path: str) -> Problem:
    """A database refusal as the caller's problem (nothing was changed): 409, 503 or 422."""
    if isinstance(exc, IntegrityError):
        return Problem(
            409,
            "conflict",
            "Conflict",
            "the change conflicts with the registry (a duplicate, or a reference to a "
            "missing or still-used object); nothing was changed",
        )
    if isinstance(exc, OperationalError):
        # Logged without its statement: parameters may hold a connector's secret.
        log.warning("database unavailable on %s: %s", path, type(exc.orig))
        return Problem(
            503,
            "database-unavailable",
            "Database unavailable",
            "the registry database did not answer; nothing was changed, try again",
            headers={"Retry-After": "1"},
        )
    return Problem(
        422,
        "validation-error",
        "Invalid input",
        "a value is out of the range the database can store",
        errors=[],
    )


class AdminRoute(APIRoute):
    """Maps registry refusals and database refusals to problems, at this one boundary."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            await preflight(request)
            try:
                return await handler(request)
            except errors.RegistryError as exc:
                raise problem_for(exc) from None
            except SchemaError as exc:
                raise Problem(
                    exc.status, exc.kind, exc.title, exc.detail, errors=exc.errors, extra=exc.extra
                ) from None
            except (IntegrityError, OperationalError, DataError) as exc:
                raise database_problem(exc, request.url.path) from None

        return guarded
