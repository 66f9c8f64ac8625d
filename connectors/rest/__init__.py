"""REST connector: JSON over HTTP."""

from connectors.rest.connector import RestConnector

__all__ = ["RestConnector"]
