"""The FastAPI side's errors as RFC 9457 problems: raised Problems, invalid input, unknown
paths, and (never a stack trace) anything unexpected."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.problems import Problem
from registry.types import error_location, pointer

log = logging.getLogger(__name__)


def _problem_response(request: Request, problem: Problem) -> Response:
    return problem.response(request.scope.get("state", {}).get("request_id"))


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors():
        loc = error_location(error)
        where = str(loc.pop(0)) if loc else "body"
        prefix = "" if where == "body" else f"/{where}"
        errors.append({"pointer": prefix + pointer(*loc), "message": str(error.get("msg", ""))})
    return errors


async def _malformed(request: Request, error: Mapping[str, Any]) -> Problem:
    """Malformed JSON: where it breaks, as a line and a column of the body (FastAPI gives a
    character offset, which is no JSON pointer)."""
    reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
    loc = list(error.get("loc") or ())
    offset = loc[-1] if loc and isinstance(loc[-1], int) else None
    where = ""
    if offset is not None:
        text = (await request.body()).decode("utf-8", "replace")[:offset]
        line = text.count("\n") + 1
        column = offset - (text.rfind("\n") + 1) + 1
        where = f" at line {line}, column {column}"
    return Problem(
        400,
        "malformed-json",
        "Malformed JSON",
        f"the body is not valid JSON: {reason}{where}",
        errors=[{"pointer": "", "message": f"{reason}{where}"}],
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            return _problem_response(request, await _malformed(request, malformed))
        errors = _validation_errors(exc)
        return _problem_response(
            request,
            Problem(
                422,
                "validation-error",
                "Invalid input",
                f"{len(errors)} error{'s' if len(errors) != 1 else ''} in the input",
                errors=errors,
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 415: "Unsupported media type"}
        title = titles.get(exc.status_code, "Request refused")
        return _problem_response(
            request,
            Problem(
                exc.status_code,
                title.lower().replace(" ", "-"),
                title,
                str(exc.detail),
                headers=dict(exc.headers or {}),
            ),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The route's template, not the path: a path can hold a personal identifier.
        route = getattr(request.scope.get("route"), "path", "an unmatched path")
        log.exception("unexpected error on %s %s", request.method, route)
        return _problem_response(
            request,
            Problem(
                500,
                "internal-error",
                "Internal error",
                "the hub failed to handle this request; its request id is in the logs",
            ),
        )
