"""SOAP connector: JSON from the consumer, a SOAP 1.1 or 1.2 envelope to the provider, and the
reply (or its fault) back as JSON."""

from __future__ import annotations

from typing import Any

from connectors.base import UpstreamRequest
from connectors.config import HttpConfig
from connectors.errors import RequestNotMappable, UpstreamBadResponse
from connectors.http import Reply
from connectors.http_connector import Capabilities, HttpConnector, Prepared
from connectors.paths import render_path
from connectors.soap.coerce import coerce
from connectors.soap.config import VERSIONS, XML_MEDIA_TYPES
from connectors.soap.envelope import build_envelope, request_fields
from connectors.soap.fault import fault_error, is_fault
from connectors.soap.xml import body_element, element_to_json, local_name, parse_xml
from connectors.status import AUTH_FAILED, OVERLOADED, error_for_status
from registry.types import ConnectorKind

# Statuses that say something before any XML does: the provider is busy or refused our credentials.
_STATUS_FIRST = OVERLOADED | AUTH_FAILED | {408}


class SoapConnector(HttpConnector):
    kind = ConnectorKind.SOAP
    capabilities = Capabilities(
        protocol="http",
        upstream_formats=("text/xml", "application/soap+xml"),
        soap_versions=tuple(VERSIONS),
    )

    def __init__(self, config: HttpConfig) -> None:
        self.version = VERSIONS[config.options.soap_version]
        self.accept = f"{self.version.media_type}, text/xml;q=0.9"
        if not config.options.namespace:
            raise ValueError(f"soap connector {config.name!r} needs options.namespace")
        self.namespace = config.options.namespace
        super().__init__(config)

    def prepare(self, request: UpstreamRequest) -> Prepared:
        route = request.route
        if not route.operation:
            raise RequestNotMappable(
                f"route {route.method.value} {route.path} names no SOAP operation",
                request_sent=False,
            )
        content = build_envelope(
            self.version,
            operation=route.operation,
            namespace=self.namespace,
            fields=request_fields(request.path_params, request.query, request.body),
            field_map=route.field_map,
        )
        path = render_path(route.upstream_path, request.path_params) if route.upstream_path else ""
        return Prepared(
            method="POST",
            path=path,
            params=None,
            content=content,
            headers=self.headers_for(request, self.version.request_headers(route.soap_action)),
        )

    def interpret(self, reply: Reply, request: UpstreamRequest) -> Any:
        status = reply.status
        ok = 200 <= status < 300
        if status in _STATUS_FIRST:
            raise error_for_status(reply, self.label)
        if reply.media_type not in XML_MEDIA_TYPES or not reply.content:
            if not ok:
                raise error_for_status(reply, self.label)
            raise UpstreamBadResponse(
                f"{self.label} answered {reply.media_type or 'without a content type'}, "
                "expected SOAP XML",
                provider_status=status,
            )
        root = parse_xml(reply.content, label=self.label, status=status)
        try:
            element = body_element(root, label=self.label, status=status)
        except UpstreamBadResponse:
            if not ok:  # an error page in XML: the status says more than "not an envelope"
                raise error_for_status(reply, self.label) from None
            raise
        route = request.route
        if element is not None and is_fault(element):
            raise fault_error(element, fault_status=route.fault_status, provider_status=status)
        if not ok:
            raise error_for_status(reply, self.label)
        if element is None:
            return {}
        reverse_map = route.reverse_field_map
        data = element_to_json(element, reverse_map)
        if data == "":
            return {}
        if not isinstance(data, dict):
            name = local_name(element.tag)
            data = {reverse_map.get(name, name): data}
        schema = request.response_schema
        return coerce(data, schema) if schema else data
