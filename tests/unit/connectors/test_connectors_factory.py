"""Connectors by kind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors import KINDS, capabilities, close, create_connector
from connectors.rest import RestConnector
from connectors.soap import SoapConnector
from registry.models import Connector
from registry.types import ConnectorKind


def row(kind: str, **extra: Any) -> Connector:
    return Connector(
        name="p",
        agency_code="000.00.12.H12",
        # Any text, "ftp" too: the factory is what refuses a kind it does not know.
        kind=kind,  # type: ignore[arg-type]
        base_url="http://127.0.0.1:9/",
        options=extra.pop("options", {}),
        **extra,
    )


def test_each_kind_builds_its_class_and_declares_capabilities() -> None:
    async def main() -> None:
        rest = create_connector(row("rest"))
        soap = create_connector(row("soap", options={"namespace": "urn:x", "soap_version": "1.2"}))
        assert type(rest) is RestConnector
        assert type(soap) is SoapConnector
        assert rest.config.base_url == "http://127.0.0.1:9"
        await close([rest, soap])

    asyncio.run(main())
    assert set(KINDS) == set(ConnectorKind)
    assert capabilities()[ConnectorKind.SOAP].soap_versions == ("1.1", "1.2")


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="no connector for kind"):
        create_connector(row("ftp"))


def test_soap_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        create_connector(row("soap"))
