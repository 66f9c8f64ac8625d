"""REST connector: JSON to and from the provider, routes mapped by method and path template."""

from __future__ import annotations

from typing import Any

import orjson

from connectors.base import UpstreamRequest
from connectors.errors import UpstreamBadResponse
from connectors.http import Reply
from connectors.http_connector import Capabilities, HttpConnector, Prepared
from connectors.paths import render_path
from connectors.rest.config import BODY_METHODS, is_json
from connectors.status import error_for_status
from registry.types import ConnectorKind

_JSON_CONTENT = {"content-type": "application/json"}
_NO_HEADERS: dict[str, str] = {}


class RestConnector(HttpConnector):
    kind = ConnectorKind.REST
    capabilities = Capabilities(protocol="http", upstream_formats=("application/json",))
    accept = "application/json"

    def prepare(self, request: UpstreamRequest) -> Prepared:
        route = request.route
        method = (route.upstream_method or route.method).value
        path = render_path(route.upstream_path or route.path, request.path_params)
        content = None
        if method in BODY_METHODS and request.body is not None:
            content = orjson.dumps(request.body)
        return Prepared(
            method=method,
            path=path,
            params=tuple(request.query) if request.query else None,
            content=content,
            headers=self.headers_for(request, _NO_HEADERS if content is None else _JSON_CONTENT),
        )

    def interpret(self, reply: Reply, request: UpstreamRequest) -> Any:
        if not 200 <= reply.status < 300:
            raise error_for_status(reply, self.label)
        if reply.status == 204 or not reply.content:
            return None
        media = reply.media_type
        if not is_json(media):
            raise UpstreamBadResponse(
                f"{self.label} answered {media or 'without a content type'}, expected JSON",
                provider_status=reply.status,
            )
        try:
            return orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            raise UpstreamBadResponse(
                f"{self.label} answered invalid JSON", provider_status=reply.status
            ) from None
