"""Fixtures: the provider, the raw-bytes server and a refused port (see connector_upstreams)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.integration.connectors.connector_upstreams import (
    Provider,
    ProviderState,
    RawThread,
    UvicornThread,
    build_app,
)


@pytest.fixture(scope="session")
def provider_server() -> Iterator[tuple[str, ProviderState]]:
    state = ProviderState()
    with UvicornThread(build_app(state)) as base_url:
        yield base_url, state


@pytest.fixture
def provider(provider_server: tuple[str, ProviderState]) -> Provider:
    """The running provider with its state reset for this test."""
    base_url, state = provider_server
    fresh = ProviderState()
    for name in ("calls", "requests", "token_requests", "token_lifetime", "token_delay"):
        setattr(state, name, getattr(fresh, name))
    state.valid_tokens.clear()
    return Provider(base_url, state)


@pytest.fixture(scope="session")
def raw_server() -> Iterator[str]:
    with RawThread() as base_url:
        yield base_url


@pytest.fixture
def closed_port() -> str:
    """A loopback URL on which nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
