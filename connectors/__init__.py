"""How the hub talks to provider systems: one folder per kind, errors mapped at this edge.

create_connector(row) -> Connector      connectors.factory
await connector.call(UpstreamRequest) -> UpstreamResponse, or raises a ConnectorError
await connector.aclose()                 or `await close(connectors)`
"""

from connectors.base import Connector, UpstreamRequest, UpstreamResponse
from connectors.factory import KINDS, capabilities, close, create_connector

__all__ = [
    "KINDS",
    "Connector",
    "UpstreamRequest",
    "UpstreamResponse",
    "capabilities",
    "close",
    "create_connector",
]
