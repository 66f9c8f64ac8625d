"""The synchronous exchange: `ANY /api/{service}/{version}/{path}`, as a pure ASGI handler.

authenticate -> service and route -> grant and purpose -> read and validate the request ->
connector -> validate the answer -> keep the granted fields -> commit the exchange record ->
answer. Every call, refused or not, leaves one exchange record, committed before the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from audit.records import RecordKind
from connectors import errors as ce
from connectors.base import UpstreamRequest
from gateway.exchange import bodies, calls, consumers, grants, limits, providers, tokens
from gateway.problems import PROBLEM_CONTENT_TYPE, Problem
from gateway.runtime import Runtime
from gateway.runtime.snapshot import CompiledRoute, ServiceEntry
from registry.projection import project
from registry.types import resolve_pointer
from schemas.nesting import too_deep

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DataPlane:
    """The ASGI app behind `/api/`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pepper = runtime.settings.key_pepper
        self.verifier = tokens.Verifier.from_settings(runtime.settings)
        self.max_body = runtime.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        request_id = calls.request_id(headers.get("x-request-id"))
        trace_id, traceparent = calls.trace_context(headers.get("traceparent"))
        call = calls.Call(kind=RecordKind.EXCHANGE, request_id=request_id, trace_id=trace_id)
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            status, body, extra_headers = await self._exchange(
                scope, receive, headers, call, traceparent
            )
            content_type = b"application/json"
        except Problem as problem:
            status, body = problem.status, problem.body(request_id)
            content_type = PROBLEM_CONTENT_TYPE.encode()
            call.error = call.error or problem.detail
            extra_headers = [(k.encode(), v.encode()) for k, v in problem.headers.items()]
            extra_headers += self._lifecycle(call)
        except Exception as exc:  # a defect: answer a problem, record it, never a bare 500
            # The route's template, not the path: a path can hold a personal identifier.
            log.exception(
                "data plane failure on %s (request %s)",
                call.route or f"{scope['method']} an unmatched path",
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
            call.error = f"internal: {type(exc).__name__}"
            extra_headers = []
        # details: what the limits decided (gateway/exchange/limits.py), if they did.
        record = call.finish(status, body, details=call.details)
        withheld = await calls.recorded(self.runtime.writer, record)
        if withheld is not None:
            status, body = withheld.status, withheld.body(request_id)
            content_type = PROBLEM_CONTENT_TYPE.encode()
            extra_headers = [(k.encode(), v.encode()) for k, v in withheld.headers.items()]
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
        call: calls.Call,
        traceparent: str,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        snapshot = self.runtime.snapshot
        # The target is recorded even for calls refused before it is looked up.
        parts = scope["path"][5:].split("/", 2)  # after "/api/"
        name = parts[0]
        version = parts[1] if len(parts) > 1 else ""
        rest = "/" + parts[2] if len(parts) == 3 else "/"
        call.service, call.version = name[:63] or None, version[:8] or None
        key = consumers.authenticate(
            headers, snapshot, self.pepper, call, verifier=self.verifier, target=(name, version)
        )
        service, route, path_params = self._locate(
            scope["method"], name, version, rest, snapshot.services, call
        )
        grant = grants.authorise(
            snapshot.grants.get((key.consumer, service.name), ()), service, call
        )
        method = scope["method"]
        raw = await bodies.read_body(receive, headers, self.max_body)
        call.request_body = raw
        body = self._parse_body(raw, headers, method, route)
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        # Whose data is asked for is known before any later refusal, so that a data subject
        # learns of refused attempts on their data too.
        if route.subject_pointer:
            document = {"path": path_params, "query": dict(query), "body": body}
            subject = resolve_pointer(document, route.subject_pointer)
            if isinstance(subject, str | int) and str(subject).strip():
                call.subject_hash = self.runtime.subject_hash(str(subject))
        purpose = headers.get("x-purpose")
        call.purpose = purpose[:63] if purpose else None
        if service.personal_data:
            grants.check_purpose(purpose, grant)
        verdict = await limits.admit(
            self.runtime.engine,
            grant_id=grant.id,
            rate=grant.rate_limit,
            quota=grant.quota,
            call=call,
        )

        errors: list[dict[str, str]] = []
        if route.params is not None:
            params: dict[str, Any] = dict(query)
            params.update(path_params)
            errors += route.params.errors(params, "/params", providers.MAX_ERRORS)
        if route.request is not None:
            errors += route.request.errors(body, "/body", providers.MAX_ERRORS)
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
            body = {**body, field: call.request_id}
        elif field and body is None:
            body = {field: call.request_id}

        upstream_headers = {
            "x-request-id": call.request_id,
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
            call.upstream_latency_us = (time.perf_counter_ns() - started) // 1000
            call.provider_status = exc.provider_status
            call.attempts = exc.attempts
            call.error = f"{type(exc).__name__}: {exc.detail}"
            raise providers.connector_problem(exc, service.connector.name) from None
        call.upstream_latency_us = (time.perf_counter_ns() - started) // 1000
        call.provider_status = answer.status
        call.attempts = answer.attempts
        if answer.upstream:  # a failover URL served it (0: the first, base_url)
            call.details = {"upstream": answer.upstream}
        if too_deep(answer.body, bodies.MAX_DEPTH):
            call.error = f"answer nested more than {bodies.MAX_DEPTH} levels deep"
            raise Problem(
                502,
                "provider-bad-response",
                "The provider's answer was unusable",
                f"{service.connector.name}: the answer is nested more than {bodies.MAX_DEPTH} "
                "levels deep",
            )
        if route.response is not None:
            contract = providers.contract_errors(route.response.validator, answer.body)
            if contract:
                call.error = f"response outside its schema: {contract[0]['pointer']}"
                raise Problem(
                    502,
                    "provider-contract-violation",
                    "The provider's answer does not match the service's schema",
                    f"{service.connector.name} answered outside the response schema "
                    f"({len(contract)} error{'s' if len(contract) > 1 else ''})",
                    errors=contract,
                )
        out = orjson.dumps(project(answer.body, grant.fields))
        extra = [*verdict.headers, *service.lifecycle.headers]
        if route.contract_warning is not None:
            extra.append((b"warning", route.contract_warning))
        return answer.status, out, extra

    # ------------------------------------------------------------ steps

    def _lifecycle(self, call: calls.Call) -> tuple[tuple[bytes, bytes], ...]:
        """A refused call to a deprecated version learns of its deprecation too."""
        entry = self.runtime.snapshot.services.get((call.service or "", call.version or ""))
        return entry.lifecycle.headers if entry is not None else ()

    def _locate(
        self,
        method: str,
        name: str,
        version: str,
        rest: str,
        services: dict[tuple[str, str], ServiceEntry],
        call: calls.Call,
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
                call.route = route.label
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
        return bodies.parse_json(raw, headers.get("content-type", ""))
