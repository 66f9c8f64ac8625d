"""SOAP connector: JSON to the consumer, SOAP 1.1/1.2 to the provider."""

from connectors.soap.connector import SoapConnector

__all__ = ["SoapConnector"]
