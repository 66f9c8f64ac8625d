"""An OpenAPI 3.1 document for one service version, generated from its routes and their
registry contracts (the compiled schemas of the snapshot), as a consumer sees it.

Each contract becomes a component (`#/components/schemas/<subject>.v<version>`) with the
$refs left in it rebased there; every operation lists the problem+json answers the data plane
can give it, the X-Purpose header (an enum of the caller's granted purposes; required when
personal data flows), X-Request-Id, and both ways to authenticate: an API key and an OAuth2
client-credentials token whose scope names the service version.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.runtime.snapshot import CompiledRoute, ServiceEntry
from schemas.cache import Compiled

OPENAPI_VERSION = "3.1.0"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: what was wrong, and where",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

# Why the data plane answers each problem status (the texts of the responses).
PROBLEMS = {
    400: "The body is not JSON, or a body the route takes is missing",
    401: "No credentials, or an unknown, expired or revoked key or token",
    403: "No approved grant in force for this version, or a purpose it does not allow",
    404: "The provider found nothing, or no such route",
    413: "The body is larger than the hub accepts",
    415: "The body is not application/json",
    422: "The request does not match the service's contract (errors point at each violation)",
    429: "Over the grant's rate limit or quota; Retry-After says when to come back",
    502: "The provider failed or answered outside the contract",
    503: "The provider is unavailable, at its limit of calls at once, or its circuit is open; "
    "Retry-After says when to come back",
    504: "The provider did not answer in time",
}
ALWAYS = (401, 403, 404, 429, 502, 503, 504)
RETRY_AFTER = (429, 503)
# The IETF httpapi rate-limit headers (gateway/exchange/limits.py), on grants that have a limit.
LIMIT_HEADERS = {
    "RateLimit": {"$ref": "#/components/headers/RateLimit"},
    "RateLimit-Policy": {"$ref": "#/components/headers/RateLimitPolicy"},
}
WITH_BODY = (400, 413, 415)

_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")
_PATH_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def component_name(contract: Compiled) -> str:
    return _COMPONENT_NAME.sub("_", f"{contract.subject}.v{contract.version}")


def _rebased(node: Any, base: str) -> Any:
    """`node` with local $refs pointing under `base`; `$id` and `$schema` dropped (the
    component's base is the document), and a $ref the registry could not inline (outside the
    document) dropped too, leaving its siblings (a looser schema, never a broken one)."""
    if isinstance(node, list):
        return [_rebased(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$id", "$schema"):
            continue
        if key == "$ref" and isinstance(value, str):
            if value.startswith("#"):
                out[key] = base + value[1:]
            continue
        out[key] = _rebased(value, base)
    return out


class _Builder:
    def __init__(self, service: ServiceEntry, hub_url: str, purposes: list[str]) -> None:
        self.service = service
        self.hub_url = hub_url.rstrip("/")
        self.purposes = purposes
        self.schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
        self.scope = f"{service.name}:{service.version}"

    def ref(self, contract: Compiled) -> dict[str, Any]:
        name = component_name(contract)
        if name not in self.schemas:
            self.schemas[name] = _rebased(contract.schema, f"#/components/schemas/{name}")
        return {"$ref": f"#/components/schemas/{name}"}

    def parameters(self, route: CompiledRoute) -> list[dict[str, Any]]:
        in_path = _PATH_PARAM.findall(route.route.path)
        schema = route.params.schema if route.params is not None else None
        properties: dict[str, Any] = {}
        required: list[str] = []
        if isinstance(schema, dict):
            properties = schema.get("properties") or {}
            required = list(schema.get("required") or [])
        base = f"#/components/schemas/{component_name(route.params)}" if route.params else ""
        found: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _rebased(properties.get(name, {"type": "string"}), base),
            }
            for name in in_path
        ]
        for name, prop in properties.items():
            if name in in_path:
                continue
            found.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": _rebased(prop, base),
                }
            )
        found.append({"$ref": "#/components/parameters/XPurpose"})
        found.append({"$ref": "#/components/parameters/XRequestId"})
        return found

    def operation(self, route: CompiledRoute) -> dict[str, Any]:
        method = route.route.method.value
        op: dict[str, Any] = {
            "operationId": _operation_id(method, route.route.path),
            "summary": route.label,
            "parameters": self.parameters(route),
            "security": [{"apiKey": []}, {"oauth2": [self.scope]}],
            "responses": self.responses(route),
        }
        if self.service.lifecycle.deprecated_at is not None:
            op["deprecated"] = True
        if route.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.ref(route.request)}},
            }
        elif method in BODY_METHODS:
            op["requestBody"] = {"required": False, "content": {"application/json": {}}}
        return op

    def responses(self, route: CompiledRoute) -> dict[str, Any]:
        answer: dict[str, Any] = {"description": "The provider's answer (the granted fields)"}
        if route.response is not None:
            answer["content"] = {"application/json": {"schema": self.ref(route.response)}}
        else:
            answer["content"] = {"application/json": {}}
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/XRequestId"}}
        if self.service.lifecycle.deprecated_at is not None:
            headers["Deprecation"] = {
                "description": "RFC 9745: when this version was (or will be) deprecated",
                "schema": {"type": "string"},
            }
        if self.service.lifecycle.sunset_at is not None:
            headers["Sunset"] = {
                "description": "RFC 8594: when this version stops answering",
                "schema": {"type": "string"},
            }
        answer["headers"] = headers | LIMIT_HEADERS
        statuses = set(ALWAYS)
        method = route.route.method.value
        if method in BODY_METHODS or route.request is not None:
            statuses.update(WITH_BODY)
        if route.params is not None or route.request is not None:
            statuses.add(422)
        statuses.update(route.route.fault_status.values())
        out: dict[str, Any] = {"200": answer}
        for status in sorted(statuses):
            problem_headers: dict[str, Any] = {
                "X-Request-Id": {"$ref": "#/components/headers/XRequestId"}
            }
            if status in RETRY_AFTER:
                problem_headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
            if status == 429:
                problem_headers |= LIMIT_HEADERS
            out[str(status)] = {
                "description": PROBLEMS.get(status, "Refused by the provider"),
                "headers": problem_headers,
                "content": {"application/problem+json": {"schema": PROBLEM_REF}},
            }
        return out

    def purpose(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 63}
        if self.purposes:
            schema = {"type": "string", "enum": self.purposes}
        personal = self.service.personal_data
        return {
            "name": "X-Purpose",
            "in": "header",
            "required": personal and bool(self.purposes),
            "description": (
                "The purpose of use, one the caller's grant allows"
                + (" (required: personal data flows)" if personal else "")
            ),
            "schema": schema,
        }

    def document(self) -> dict[str, Any]:
        service = self.service
        paths: dict[str, dict[str, Any]] = {}
        for route in service.routes:
            item = paths.setdefault(route.route.path, {})
            item[route.route.method.value.lower()] = self.operation(route)
        info: dict[str, Any] = {
            "title": service.title or f"{service.name} {service.version}",
            "version": service.version,
            "description": service.description,
            "x-lgsp-agency": service.agency_code,
            "x-lgsp-status": service.status.value,
            "x-lgsp-personal-data": service.personal_data,
        }
        return {
            "openapi": OPENAPI_VERSION,
            "info": info,
            "servers": [{"url": f"{self.hub_url}/api/{service.name}/{service.version}"}],
            "security": [{"apiKey": []}, {"oauth2": [self.scope]}],
            "paths": paths,
            "components": {
                "schemas": self.schemas,
                "parameters": {
                    "XPurpose": self.purpose(),
                    "XRequestId": {
                        "name": "X-Request-Id",
                        "in": "header",
                        "required": False,
                        "description": "Echoed back, passed upstream and recorded (one is "
                        "generated when absent)",
                        "schema": {"type": "string", "pattern": "^[!-~]{1,128}$"},
                    },
                },
                "headers": {
                    "XRequestId": {
                        "description": "The exchange's request id, as recorded",
                        "schema": {"type": "string"},
                    },
                    "RetryAfter": {
                        "description": "Seconds to wait before calling again",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    "RateLimit": {
                        "description": "What the grant's rate limit and quota leave "
                        '(IETF httpapi draft: `"grant";r=<left>;t=<seconds to reset>`); '
                        "sent when the grant has a limit",
                        "schema": {"type": "string"},
                    },
                    "RateLimitPolicy": {
                        "description": "The grant's rate limit and quota "
                        '(IETF httpapi draft: `"grant";q=<requests>;w=<seconds>`); '
                        "sent when the grant has a limit",
                        "schema": {"type": "string"},
                    },
                },
                "securitySchemes": {
                    "apiKey": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "X-API-Key",
                        "description": "The consumer application's API key",
                    },
                    "oauth2": {
                        "type": "oauth2",
                        "description": "An access token of the hub (client credentials)",
                        "flows": {
                            "clientCredentials": {
                                "tokenUrl": f"{self.hub_url}{TOKEN_PATH}",
                                "scopes": {self.scope: f"Call {service.name} {service.version}"},
                            }
                        },
                    },
                },
            },
        }


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{words}"


def service_document(service: ServiceEntry, *, hub_url: str, purposes: list[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `service` for a caller whose grant allows `purposes`."""
    return _Builder(service, hub_url, purposes).document()
