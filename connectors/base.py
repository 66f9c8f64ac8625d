"""What the gateway hands a connector, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.models import Route


@dataclass(slots=True)
class UpstreamRequest:
    route: Route
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    body: Any  # parsed JSON, or None
    # Passed upstream as they are: X-Request-Id, traceparent, X-LGSP-Consumer, X-LGSP-Agency,
    # X-Purpose. The connector adds its own (auth, SOAPAction, static headers).
    headers: dict[str, str] = field(default_factory=dict)
    # The response contract with its $refs inlined: SOAP replies are typed by it.
    response_schema: Any = None


@dataclass(slots=True)
class UpstreamResponse:
    status: int  # the provider's HTTP status (2xx)
    body: Any  # JSON (for SOAP, the reply converted to JSON)
    attempts: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    upstream: int = 0  # which of the connector's base URLs served it (0: the first)


class Connector(Protocol):
    """One provider system; holds one pooled client for its lifetime."""

    name: str

    async def call(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send the request (retrying where safe); raise a ConnectorError subclass on failure."""
        ...

    async def aclose(self) -> None: ...
