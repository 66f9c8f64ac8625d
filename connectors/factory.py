"""Connectors by kind: a registry row in, a ready connector out.

Kinds register here as data, one line each, with their capabilities on the class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from connectors.base import Connector
from connectors.config import HttpConfig
from connectors.http_connector import Capabilities, HttpConnector
from connectors.rest.connector import RestConnector
from connectors.soap.connector import SoapConnector
from registry.models import Connector as ConnectorRow
from registry.types import ConnectorKind

KINDS: Mapping[ConnectorKind, type[HttpConnector]] = {
    ConnectorKind.REST: RestConnector,
    ConnectorKind.SOAP: SoapConnector,
}


def capabilities() -> dict[ConnectorKind, Capabilities]:
    """What each registered kind can do."""
    return {kind: cls.capabilities for kind, cls in KINDS.items()}


def create_connector(row: ConnectorRow) -> Connector:
    """The connector for a registry row; its pool opens on first use. Close it with `aclose`."""
    try:
        cls = KINDS[ConnectorKind(row.kind)]
    except (KeyError, ValueError):
        raise ValueError(f"no connector for kind {row.kind!r}") from None
    return cls(HttpConfig.from_row(row))


async def close(connectors: Mapping[str, Connector] | list[Connector]) -> None:
    """Close many connectors at once (on shutdown or after a registry reload)."""
    items = connectors.values() if isinstance(connectors, Mapping) else connectors
    await asyncio.gather(*(c.aclose() for c in items), return_exceptions=True)
