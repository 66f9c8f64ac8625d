"""RFC 9457 problem responses: one shape for every error the hub answers, never a stack trace."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_TYPE_BASE = "https://lgsp.laichau.gov.vn/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in the gateway to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind  # last segment of the type URI, e.g. "schema-violation"
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def document(self, request_id: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if request_id:
            doc["request_id"] = request_id
        if self.errors is not None:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc

    def body(self, request_id: str | None) -> bytes:
        return dump_json(self.document(request_id))

    def response(self, request_id: str | None) -> Response:
        """The problem as an answer of the FastAPI side (the data plane sends `body` itself)."""
        return Response(
            self.body(request_id),
            status_code=self.status,
            media_type=PROBLEM_CONTENT_TYPE,
            headers=self.headers,
        )


def dump_json(data: Any) -> bytes:
    """JSON bytes; integers beyond 64 bits (a counterexample may hold one) take the slow path."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
