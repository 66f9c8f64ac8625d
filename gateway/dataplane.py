"""The synchronous exchange: `ANY /api/{service}/{version}/{path}`, as a pure ASGI handler.

authenticate -> service and route -> grant and purpose -> read and validate the request ->
connector -> validate the answer -> keep the granted fields -> commit the exchange record ->
answer. Every call, refused or not, leaves one exchange record, committed before the answer.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from audit.errors import AuditUnavailable
from audit.records import RecordKind, new_record_id
from connectors import errors as ce
from connectors.base import UpstreamRequest
from gateway.problems import PROBLEM_CONTENT_TYPE, Problem
from gateway.projection import project
from gateway.runtime import Runtime
from gateway.snapshot import CompiledRoute, GrantEntry, ServiceEntry
from registry import keys
from registry.types import ServiceStatus, pointer, resolve_pointer, utcnow
from schemas.nesting import too_deep

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

MAX_ERRORS = 50
# Deeper documents are refused: real ones stay far below, and deeper ones break tools further on
# (orjson writes at most ~254 levels, a validator cannot describe an error ~1000 levels deep).
MAX_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_HEX = frozenset("0123456789abcdef")


def valid_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def _trace(traceparent: str | None) -> tuple[str, str]:
    """(trace id, traceparent to send upstream): continue the caller's trace or start one."""
    span = f"{random.getrandbits(64):016x}"
    if traceparent:
        parts = traceparent.strip().split("-")
        if (
            len(parts) == 4
            and len(parts[0]) == 2
            and len(parts[1]) == 32
            and len(parts[2]) == 16
            and len(parts[3]) == 2
            and set(parts[1]) <= _HEX
            and parts[0] != "ff"
            and parts[1] != "0" * 32
        ):
            return parts[1], f"00-{parts[1]}-{span}-{parts[3]}"
    trace_id = f"{random.getrandbits(128):032x}"
    return trace_id, f"00-{trace_id}-{span}-01"


class Exchange:
    """What one call accumulates for its audit record."""

    __slots__ = (
        "agency",
        "attempts",
        "consumer",
        "error",
        "grant_id",
        "provider_status",
        "purpose",
        "request_body",
        "request_id",
        "route",
        "service",
        "started",
        "subject_hash",
        "trace_id",
        "upstream_latency_us",
        "version",
    )

    def __init__(self, request_id: str, trace_id: str) -> None:
        self.started = time.perf_counter_ns()
        self.request_id = request_id
        self.trace_id = trace_id
        self.consumer: str | None = None
        self.agency: str | None = None
        self.service: str | None = None
        self.version: str | None = None
        self.route: str | None = None
        self.purpose: str | None = None
        self.grant_id: int | None = None
        self.subject_hash: str | None = None
        self.provider_status: int | None = None
        self.attempts: int | None = None
        self.upstream_latency_us: int | None = None
        self.error: str | None = None
        self.request_body = b""

    def record(self, status: int, response_body: bytes) -> dict[str, Any]:
        return {
            "id": new_record_id(),
            "kind": RecordKind.EXCHANGE.value,
            "time": utcnow(),
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "consumer": self.consumer,
            "agency": self.agency,
            "service": self.service,
            "version": self.version,
            "route": self.route,
            "purpose": self.purpose,
            "grant_id": self.grant_id,
            "subject_hash": self.subject_hash,
            "provider_status": self.provider_status,
            "hub_status": status,
            "latency_us": (time.perf_counter_ns() - self.started) // 1000,
            "upstream_latency_us": self.upstream_latency_us,
            "request_size": len(self.request_body),
            "response_size": len(response_body),
            "request_sha256": hashlib.sha256(self.request_body).hexdigest(),
            "response_sha256": hashlib.sha256(response_body).hexdigest(),
            "attempts": self.attempts,
            "error": self.error[:1000] if self.error else None,
        }


def _connector_problem(exc: ce.ConnectorError, connector: str) -> Problem:
    attempts = f" after {exc.attempts} attempt{'s' if exc.attempts != 1 else ''}"
    extra: dict[str, Any] = {"attempts": exc.attempts}
    if exc.provider_status is not None:
        extra["provider_status"] = exc.provider_status
    if isinstance(exc, ce.RequestNotMappable):
        return Problem(
            400,
            "request-not-mappable",
            "The request cannot be sent to the provider",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.SoapFault):
        extra["fault"] = exc.body
        return Problem(
            exc.status,
            "provider-fault",
            "The provider answered with a fault",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.ProviderRejected):
        status = exc.provider_status or 400
        if isinstance(exc.body, dict):
            extra["provider_detail"] = exc.body
        return Problem(
            status,
            "provider-rejected",
            "The provider rejected the request",
            f"{connector} answered {status}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamTimeout):
        return Problem(
            504,
            "provider-timeout",
            "The provider did not answer in time",
            f"{connector}: {exc.detail}{attempts}",
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamOverloaded):
        headers: dict[str, str] = {}
        status = 503 if exc.provider_status in (429, 503) else 502
        if status == 503 and exc.retry_after is not None:
            headers["retry-after"] = str(max(1, round(exc.retry_after)))
        return Problem(
            status,
            "provider-unavailable",
            "The provider is unavailable",
            f"{connector}: {exc.detail}{attempts}",
            headers=headers,
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamUnavailable):
        return Problem(
            502,
            "provider-unreachable",
            "The provider could not be reached",
            f"{connector}: {exc.detail}{attempts}",
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamAuthFailed):
        return Problem(
            502,
            "provider-auth-failed",
            "The provider refused the hub's credentials",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    return Problem(
        502,
        "provider-bad-response",
        "The provider's answer was unusable",
        f"{connector}: {exc.detail}{attempts}",
        extra=extra,
    )


def _too_deep(value: Any) -> bool:
    return too_deep(value, MAX_DEPTH)


def _contract_errors(validator: Any, instance: Any) -> list[dict[str, str]]:
    """Where the provider broke its contract, without echoing its (ungranted) values."""
    if validator.is_valid(instance):
        return []
    errors = []
    for error in validator.iter_errors(instance):
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        errors.append(
            {
                "pointer": pointer(*error.instance_path),
                "message": f"fails '{keyword}' at schema {pointer(*error.schema_path)}",
            }
        )
        if len(errors) >= MAX_ERRORS:
            break
    return errors


def authenticate(headers: dict[str, str], known: dict[str, Any], pepper: str, exchange: Any) -> Any:
    """The caller's key entry (consumer API key in X-API-Key), or a 401/403 problem.

    `exchange` receives the consumer and agency as soon as they are known, so that refused
    calls are recorded with who made them.
    """
    presented = headers.get("x-api-key")
    challenge = {"www-authenticate": 'ApiKey header="X-API-Key"'}
    if not presented:
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "send the consumer's API key in the X-API-Key header",
            headers=challenge,
        )
    parsed = keys.parse_key(presented)
    entry = known.get(parsed[0]) if parsed else None
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    stored = entry.key_hash if entry is not None else "0" * 64
    matches = keys.secret_matches(parsed[1] if parsed else presented, stored, pepper=pepper)
    if entry is None or not matches:
        raise Problem(
            401,
            "invalid-key",
            "Invalid API key",
            "the API key is unknown or malformed",
            headers=challenge,
        )
    exchange.consumer = entry.consumer
    exchange.agency = entry.agency_code
    if entry.revoked:
        raise Problem(
            401,
            "revoked-key",
            "Revoked API key",
            "this API key has been revoked",
            headers=challenge,
        )
    if entry.expires_at is not None and entry.expires_at <= utcnow():
        raise Problem(
            401, "expired-key", "Expired API key", "this API key has expired", headers=challenge
        )
    if not entry.active:
        raise Problem(
            403,
            "consumer-disabled",
            "Consumer disabled",
            f"the consumer {entry.consumer} is disabled",
        )
    return entry


class DataPlane:
    """The ASGI app behind `/api/`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pepper = runtime.settings.key_pepper
        self.max_body = runtime.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        presented_id = headers.get("x-request-id")
        request_id = (
            presented_id if presented_id and valid_request_id(presented_id) else new_record_id()
        )
        trace_id, traceparent = _trace(headers.get("traceparent"))
        exchange = Exchange(request_id, trace_id)
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            status, body, extra_headers = await self._exchange(
                scope, receive, headers, exchange, traceparent
            )
            content_type = b"application/json"
        except Problem as problem:
            status, body = problem.status, problem.body(request_id)
            content_type = PROBLEM_CONTENT_TYPE.encode()
            exchange.error = exchange.error or problem.detail
            extra_headers = [(k.encode(), v.encode()) for k, v in problem.headers.items()]
        except Exception as exc:  # a defect: answer a problem, record it, never a bare 500
            # The route's template, not the path: a path can hold a personal identifier.
            log.exception(
                "data plane failure on %s (request %s)",
                exchange.route or f"{scope['method']} an unmatched path",
                request_id,
            )
            failure = Problem(
                500,
                "internal-error",
                "Internal error",
                "the hub failed to handle this exchange; quote its request id to the operator",
            )
            status, body = failure.status, failure.body(request_id)
            content_type = PROBLEM_CONTENT_TYPE.encode()
            exchange.error = f"internal: {type(exc).__name__}"
            extra_headers = []
        try:
            await self.runtime.writer.write(exchange.record(status, body))
        except AuditUnavailable:
            withheld = Problem(
                503,
                "audit-unavailable",
                "The exchange could not be recorded",
                "the audit log could not commit this exchange's record, so its answer is "
                "withheld; retry later",
            )
            status, body = withheld.status, withheld.body(request_id)
            content_type = PROBLEM_CONTENT_TYPE.encode()
            extra_headers = []
        response_headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *extra_headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def _exchange(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        exchange: Exchange,
        traceparent: str,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        snapshot = self.runtime.snapshot
        # The target is recorded even for calls refused before it is looked up.
        parts = scope["path"][5:].split("/", 2)  # after "/api/"
        name = parts[0]
        version = parts[1] if len(parts) > 1 else ""
        rest = "/" + parts[2] if len(parts) == 3 else "/"
        exchange.service, exchange.version = name[:63] or None, version[:8] or None
        key = self._authenticate(headers, snapshot.keys, exchange)
        service, route, path_params = self._locate(
            scope["method"], name, version, rest, snapshot.services, exchange
        )
        grant = self._authorise(
            snapshot.grants.get((key.consumer, service.name), ()), service, exchange
        )
        method = scope["method"]
        raw = await self._read_body(scope, receive, headers, method)
        exchange.request_body = raw
        body = self._parse_body(raw, headers, method, route)
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        # Whose data is asked for is known before any later refusal, so that a data subject
        # learns of refused attempts on their data too.
        if route.subject_pointer:
            document = {"path": path_params, "query": dict(query), "body": body}
            subject = resolve_pointer(document, route.subject_pointer)
            if isinstance(subject, str | int) and str(subject).strip():
                exchange.subject_hash = self.runtime.subject_hash(str(subject))
        purpose = headers.get("x-purpose")
        exchange.purpose = purpose[:63] if purpose else None
        if service.personal_data:
            self._check_purpose(purpose, grant)

        errors: list[dict[str, str]] = []
        if route.params is not None:
            params: dict[str, Any] = dict(query)
            params.update(path_params)
            errors += route.params.errors(params, "/params", MAX_ERRORS)
        if route.request is not None:
            errors += route.request.errors(body, "/body", MAX_ERRORS)
        if errors:
            raise Problem(
                422,
                "schema-violation",
                "The request does not match the service's schema",
                f"{len(errors)} error{'s' if len(errors) > 1 else ''} in the request",
                errors=errors,
            )

        field = route.route.request_id_field
        if field and isinstance(body, dict):
            body = {**body, field: exchange.request_id}
        elif field and body is None:
            body = {field: exchange.request_id}

        upstream_headers = {
            "x-request-id": exchange.request_id,
            "traceparent": traceparent,
            "x-lgsp-consumer": key.consumer,
            "x-lgsp-agency": key.agency_code,
        }
        if purpose:
            upstream_headers["x-purpose"] = purpose
        started = time.perf_counter_ns()
        try:
            answer = await service.connector.call(
                UpstreamRequest(
                    route=route.route,
                    path_params=path_params,
                    query=query,
                    body=body,
                    headers=upstream_headers,
                    response_schema=route.response and route.response.schema,
                )
            )
        except ce.ConnectorError as exc:
            exchange.upstream_latency_us = (time.perf_counter_ns() - started) // 1000
            exchange.provider_status = exc.provider_status
            exchange.attempts = exc.attempts
            exchange.error = f"{type(exc).__name__}: {exc.detail}"
            raise _connector_problem(exc, service.connector.name) from None
        exchange.upstream_latency_us = (time.perf_counter_ns() - started) // 1000
        exchange.provider_status = answer.status
        exchange.attempts = answer.attempts
        if _too_deep(answer.body):
            exchange.error = f"answer nested more than {MAX_DEPTH} levels deep"
            raise Problem(
                502,
                "provider-bad-response",
                "The provider's answer was unusable",
                f"{service.connector.name}: the answer is nested more than {MAX_DEPTH} levels deep",
            )
        if route.response is not None:
            contract = _contract_errors(route.response.validator, answer.body)
            if contract:
                exchange.error = f"response outside its schema: {contract[0]['pointer']}"
                raise Problem(
                    502,
                    "provider-contract-violation",
                    "The provider's answer does not match the service's schema",
                    f"{service.connector.name} answered outside the response schema "
                    f"({len(contract)} error{'s' if len(contract) > 1 else ''})",
                    errors=contract,
                )
        out = orjson.dumps(project(answer.body, grant.fields))
        extra: list[tuple[bytes, bytes]] = []
        if service.status is ServiceStatus.DEPRECATED:
            extra.append((b"deprecation", b"true"))
        if route.contract_warning is not None:
            extra.append((b"warning", route.contract_warning))
        return answer.status, out, extra

    # ------------------------------------------------------------ steps

    def _authenticate(
        self, headers: dict[str, str], known: dict[str, Any], exchange: Exchange
    ) -> Any:
        return authenticate(headers, known, self.pepper, exchange)

    def _locate(
        self,
        method: str,
        name: str,
        version: str,
        rest: str,
        services: dict[tuple[str, str], ServiceEntry],
        exchange: Exchange,
    ) -> tuple[ServiceEntry, CompiledRoute, dict[str, str]]:
        if not name or not version:
            raise Problem(
                404, "unknown-service", "Unknown service", "call /api/{service}/{version}/{path}"
            )
        service = services.get((name, version))
        if service is None and (name, version) in self.runtime.snapshot.unavailable:
            log.error(
                "%s/%s called but unavailable: %s",
                name,
                version,
                self.runtime.snapshot.unavailable[(name, version)],
            )
            raise Problem(
                503,
                "service-unavailable",
                "Service unavailable",
                f"{name}/{version} is published but cannot reach its provider: the hub's "
                "operators have been alerted",
            )
        if service is None:
            known = sorted(v for (n, v) in services if n == name)
            detail = (
                f"service {name} has no published version {version} (published: {', '.join(known)})"
                if known
                else f"no published service is called {name}"
            )
            raise Problem(404, "unknown-service", "Unknown service or version", detail)
        allowed: list[str] = []
        for route in service.routes:
            match = route.pattern.match(rest)
            if match is None:
                continue
            if route.route.method.value == method:
                exchange.route = route.label
                return service, route, match.groupdict()
            allowed.append(route.route.method.value)
        if allowed:
            raise Problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                f"{rest} of {name}/{version} answers {', '.join(sorted(set(allowed)))}",
                headers={"allow": ", ".join(sorted(set(allowed)))},
            )
        raise Problem(
            404,
            "unknown-route",
            "Unknown route",
            f"{name}/{version} has no route for {method} {rest}",
        )

    def _authorise(
        self, grants: tuple[GrantEntry, ...], service: ServiceEntry, exchange: Exchange
    ) -> GrantEntry:
        now = utcnow()
        relevant = [g for g in grants if g.covers(service.version)]
        for grant in relevant:
            if grant.status == "approved" and grant.in_force(now):
                exchange.grant_id = grant.id
                return grant
        consumer = exchange.consumer
        target = f"{service.name}/{service.version}"
        refused = [g for g in relevant if g.status == "refused"]
        if refused:
            grant = refused[-1]
            exchange.grant_id = grant.id
            raise Problem(
                403,
                "grant-refused",
                "Sharing agreement refused",
                f"the grant of {target} to {consumer} was refused: {grant.reason}",
                extra={
                    "grant_id": grant.id,
                    "reason": grant.reason,
                    "legal_basis": grant.legal_basis,
                },
            )
        if any(g.status == "approved" for g in relevant):
            raise Problem(
                403,
                "grant-not-in-force",
                "Sharing agreement not in force",
                f"the grant of {target} to {consumer} is outside its validity period",
            )
        if relevant:
            raise Problem(
                403,
                "grant-pending",
                "Sharing agreement not approved yet",
                f"the grant of {target} to {consumer} awaits the data owner's decision",
            )
        raise Problem(
            403,
            "no-grant",
            "No sharing agreement",
            f"{consumer} holds no grant for {target}; request one from its owner",
        )

    @staticmethod
    def _check_purpose(purpose: str | None, grant: GrantEntry) -> None:
        if purpose and purpose in grant.purposes:
            return
        allowed = ", ".join(sorted(grant.purposes)) or "none"
        if not purpose:
            raise Problem(
                403,
                "purpose-required",
                "Purpose required",
                f"this service carries personal data: send X-Purpose (allowed: {allowed})",
            )
        if purpose not in grant.purposes:
            raise Problem(
                403,
                "purpose-not-granted",
                "Purpose not granted",
                f"the purpose {purpose!r} is not in the grant (allowed: {allowed})",
            )

    async def _read_body(
        self, scope: Scope, receive: Receive, headers: dict[str, str], method: str
    ) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise Problem(
                413,
                "body-too-large",
                "Request body too large",
                f"the body may be at most {self.max_body} bytes",
            )
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Problem(
                    400,
                    "client-disconnected",
                    "Client disconnected",
                    "the request body ended early",
                )
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise Problem(
                    413,
                    "body-too-large",
                    "Request body too large",
                    f"the body may be at most {self.max_body} bytes",
                )
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    @staticmethod
    def _parse_body(raw: bytes, headers: dict[str, str], method: str, route: CompiledRoute) -> Any:
        if not raw:
            if route.request is not None and method in BODY_METHODS:
                raise Problem(
                    400,
                    "body-required",
                    "Request body required",
                    f"{route.label} takes a JSON body",
                )
            return None
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not (
            content_type.startswith("application/") and content_type.endswith("+json")
        ):
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send the body as application/json, not {content_type or 'untyped'}",
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Problem(
                400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {exc}"
            ) from None
        # A document of n levels takes at least 2n bytes: short bodies need no look.
        if len(raw) > 2 * MAX_DEPTH and _too_deep(body):
            raise Problem(
                400,
                "too-deep",
                "Document too deep",
                f"the body is nested more than {MAX_DEPTH} levels deep",
            )
        return body
