"""Provider credentials: headers built once, and no secret in any repr."""

from __future__ import annotations

import pytest

from connectors.auth import ClientCredentials, StaticAuth, build_auth
from registry.models import ConnectorAuth

SECRET = "top-secret-Value-42"


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        ({"type": "none"}, {}),
        ({"type": "api_key", "secret": SECRET}, {"x-api-key": SECRET}),
        ({"type": "api_key", "header": "X-Khoa", "secret": SECRET}, {"x-khoa": SECRET}),
        (
            {"type": "basic", "username": "hub", "secret": SECRET},
            {"authorization": "Basic aHViOnRvcC1zZWNyZXQtVmFsdWUtNDI="},
        ),
    ],
)
def test_static_credentials(auth: dict[str, str], headers: dict[str, str]) -> None:
    built = build_auth(ConnectorAuth.model_validate(auth))
    assert isinstance(built, StaticAuth)
    assert dict(built.static_headers) == headers
    assert built.refreshable is False
    assert SECRET not in repr(built)


def test_client_credentials_repr_and_request() -> None:
    built = build_auth(
        ConnectorAuth.model_validate(
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://idp.example/token",
                "client_id": "hub id",
                "secret": "a:b&c",
                "scope": "r w",
            }
        )
    )
    assert isinstance(built, ClientCredentials)
    assert built.refreshable is True
    assert "a:b&c" not in repr(built)
    assert "a%3Ab%26c" not in repr(built)
    # RFC 6749 §2.3.1: form-urlencode both parts before the basic encoding.
    assert built._token_request_headers["authorization"] == "Basic aHViJTIwaWQ6YSUzQWIlMjZj"
    assert built._token_request_body == b"grant_type=client_credentials&scope=r+w"
