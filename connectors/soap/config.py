"""SOAP versions: envelope namespace, media type, how the action travels, fault code names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPE_NAMESPACES = frozenset({SOAP11_NS, SOAP12_NS})
XML_MEDIA_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})

CLIENT_FAULT_STATUS = 422  # Client (1.1) / Sender (1.2): the provider refused what was asked
SERVER_FAULT_STATUS = 502  # Server / Receiver and the rest: the provider failed


@dataclass(frozen=True, slots=True)
class SoapVersion:
    number: Literal["1.1", "1.2"]
    envelope_ns: str
    media_type: str

    def request_headers(self, action: str | None) -> dict[str, str]:
        """Content-Type and, for 1.1, the SOAPAction header (always present, quoted)."""
        if self.number == "1.1":
            return {
                "content-type": f"{self.media_type}; charset=utf-8",
                "soapaction": f'"{action or ""}"',
            }
        parameter = f'; action="{action}"' if action else ""
        return {"content-type": f"{self.media_type}; charset=utf-8{parameter}"}


SOAP_11 = SoapVersion("1.1", SOAP11_NS, "text/xml")
SOAP_12 = SoapVersion("1.2", SOAP12_NS, "application/soap+xml")
VERSIONS = {"1.1": SOAP_11, "1.2": SOAP_12}


def is_client_fault(code: str) -> bool:
    """Client (1.1, also dotted as Client.Authentication) or Sender (1.2)."""
    return code in ("Client", "Sender") or code.startswith("Client.")
