"""HTTP plumbing shared by the REST simulators: problem answers, JSON bodies, a request log."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.personal_id import is_well_formed

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://lgsp.laichau.gov.vn/problems/simulator/"


class Problem(Exception):
    """An RFC 9457 problem the handler wants to answer with; raised, then rendered once."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_MEDIA_TYPE, headers=self.headers
        )


async def problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


class Validation:
    """Collects `{pointer, message}` errors and raises one 422 problem holding all of them."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, pointer: str, message: str) -> None:
        self.errors.append({"pointer": pointer, "message": message})

    def raise_if_any(self) -> None:
        if self.errors:
            raise Problem(
                422,
                "Validation failed",
                f"{len(self.errors)} field(s) are missing or invalid",
                kind="validation",
                errors=self.errors,
            )


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Problem(400, "Malformed JSON", "the body must be a JSON object")
    return body


def personal_id_query(request: Request) -> str | None:
    """The optional ?so_dinh_danh= filter of a search, refused (422) when malformed."""
    number = request.query_params.get("so_dinh_danh")
    if number is not None and not is_well_formed(number):
        check = Validation()
        check.add("/so_dinh_danh", "must be a 12-digit personal identification number")
        check.raise_if_any()
    return number


def non_empty_string(value: object, *, max_length: int = 200) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= max_length


def is_int_in(value: object, low: int, high: int) -> bool:
    """An integer (not a bool) within [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class RequestLog:
    """What reached a simulator, so tests can check what the hub forwarded."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, **fields: Any) -> None:
        self.entries.append(fields)

    def record_request(self, request: Request, **fields: Any) -> None:
        self.record(
            method=request.method,
            path=request.url.path,
            x_request_id=request.headers.get("x-request-id"),
            x_lgsp_consumer=request.headers.get("x-lgsp-consumer"),
            x_purpose=request.headers.get("x-purpose"),
            **fields,
        )

    def routes(self, path: str = "/_sim/requests") -> list[Route]:
        async def read(request: Request) -> Response:
            return JSONResponse(self.entries)

        async def clear(request: Request) -> Response:
            self.entries.clear()
            return Response(status_code=204)

        return [Route(path, read, methods=["GET"]), Route(path, clear, methods=["DELETE"])]


async def healthz(request: Request) -> Response:
    """Liveness of the simulator."""
    return JSONResponse({"status": "ok"})


HEALTH_ROUTE = Route("/healthz", healthz, methods=["GET"])
