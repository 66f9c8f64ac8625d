"""OAuth2 client credentials towards a provider: one token for many calls, refresh, revocation."""

from __future__ import annotations

import asyncio

import pytest

from connectors import UpstreamRequest, UpstreamResponse, create_connector
from connectors.auth import ClientCredentials
from connectors.errors import UpstreamAuthFailed, UpstreamUnavailable
from connectors.http_connector import HttpConnector
from registry.models import Connector, Route
from tests.integration.connectors.connector_upstreams import (
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    connector_row,
)


def oauth_row(provider: Provider, **auth: str) -> Connector:
    return connector_row(
        provider.base_url,
        auth={
            "type": "oauth2_client_credentials",
            "token_url": f"{provider.base_url}/oauth/token",
            "client_id": CLIENT_ID,
            "secret": CLIENT_SECRET,
            "scope": "dancu.read",
            **auth,
        },
    )


PROTECTED = UpstreamRequest(
    route=Route(method="GET", path="/protected"), path_params={}, query=[], body=None
)


def test_fifty_concurrent_calls_fetch_one_token(provider: Provider) -> None:
    async def main() -> list[UpstreamResponse]:
        connector = create_connector(oauth_row(provider))
        try:
            return await asyncio.gather(*(connector.call(PROTECTED) for _ in range(50)))
        finally:
            await connector.aclose()

    answers = asyncio.run(main())
    assert provider.state.token_requests == 1
    assert len({a.body["token"] for a in answers}) == 1
    assert provider.state.calls["protected"] == 50


def test_token_is_refreshed_after_expiry(provider: Provider) -> None:
    now = [1000.0]
    provider.state.token_lifetime = 60

    async def main() -> list[str]:
        connector = create_connector(oauth_row(provider))
        assert isinstance(connector, HttpConnector)
        auth = connector._auth
        assert isinstance(auth, ClientCredentials)
        auth._clock = lambda: now[0]
        try:
            first = (await connector.call(PROTECTED)).body["token"]
            now[0] += 53  # 60 s minus a 6 s margin (10 %): still valid
            second = (await connector.call(PROTECTED)).body["token"]
            now[0] += 2  # past the margin: refreshed before the provider would refuse it
            third = (await connector.call(PROTECTED)).body["token"]
            return [first, second, third]
        finally:
            await connector.aclose()

    first, second, third = asyncio.run(main())
    assert first == second != third
    assert provider.state.token_requests == 2


def test_revoked_token_is_replaced_once(provider: Provider) -> None:
    async def main() -> tuple[str, str]:
        connector = create_connector(oauth_row(provider))
        try:
            first = (await connector.call(PROTECTED)).body["token"]
            provider.state.valid_tokens.clear()  # the provider revokes every token
            answers = await asyncio.gather(*(connector.call(PROTECTED) for _ in range(10)))
            assert len({a.body["token"] for a in answers}) == 1
            return first, answers[0].body["token"]
        finally:
            await connector.aclose()

    first, second = asyncio.run(main())
    assert first != second
    assert provider.state.token_requests == 2


def test_refused_client_credentials_never_show_the_secret(provider: Provider) -> None:
    row = oauth_row(provider, secret="wrong-secret-value")

    async def main() -> None:
        connector = create_connector(row)
        try:
            assert "wrong-secret-value" not in repr(connector)
            assert isinstance(connector, HttpConnector)
            assert "wrong-secret-value" not in repr(connector._auth)
            with pytest.raises(UpstreamAuthFailed) as info:
                await connector.call(PROTECTED)
        finally:
            await connector.aclose()
        error = info.value
        assert str(error) == (
            "the token endpoint refused the client credentials (HTTP 401: invalid_client)"
        )
        assert error.request_sent is False
        for text in (str(error), repr(error), repr(error.body), repr(vars(error))):
            assert "wrong-secret-value" not in text

    asyncio.run(main())
    assert provider.state.calls["protected"] == 0


def test_token_endpoint_down_is_retried_whatever_the_method(
    provider: Provider, closed_port: str
) -> None:
    row = oauth_row(provider, token_url=f"{closed_port}/oauth/token")
    post = UpstreamRequest(
        route=Route(method="POST", path="/protected"), path_params={}, query=[], body={}
    )

    async def main() -> None:
        connector = create_connector(row)
        try:
            with pytest.raises(UpstreamUnavailable) as info:
                await connector.call(post)
        finally:
            await connector.aclose()
        assert info.value.attempts == 3
        assert str(info.value).startswith("could not connect to the token endpoint")

    asyncio.run(main())
