"""Helpers for the token tests: a consumer with a granted service and OAuth2 clients, tokens
made by hand with the hub's own key (for the claims a real client cannot get wrong)."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import Session

from registry import sealing, signing_keys
from registry.jwks import REGISTRY
from tests.conftest import RunningHub
from tests.integration.conftest import World

ECHO_ROUTE = {"method": "POST", "path": "/echo/{item}", "upstream_path": "/echo/{item}"}


def client_for(hub: RunningHub, consumer: str, **body: Any) -> dict[str, Any]:
    with hub.admin() as admin:
        answer = admin.post(f"/admin/consumers/{consumer}/oauth-clients", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def token_request(
    hub: RunningHub, form: dict[str, str], *, basic: tuple[str, str] | None = None
) -> httpx.Response:
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        if basic is None:
            return client.post("/oauth2/token", data=form)
        return client.post("/oauth2/token", data=form, auth=basic)


def get_token(hub: RunningHub, client: dict[str, Any], **form: str) -> str:
    answer = token_request(
        hub,
        {"grant_type": "client_credentials", **form},
        basic=(client["client_id"], client["client_secret"]),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def call(
    world: World, token: str | None = None, *, authorization: str | None = None
) -> httpx.Response:
    header = authorization if authorization is not None else f"Bearer {token}"
    with httpx.Client(base_url=world.hub.url, timeout=30) as client:
        return client.post(
            f"/api/{world.service}/v1/echo/x", json={"a": 1}, headers={"Authorization": header}
        )


def oauth_error(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    assert body["error"] == error, body
    assert body["error_description"]
    return body


def bearer_refusal(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="lgsp"'), challenge
    assert f'error="{error}"' in challenge, challenge
    return dict(answer.json())


@dataclass
class Claims:
    """A token's claims as the hub would issue them for `world`'s consumer and `client_id`."""

    hub: RunningHub
    consumer: str
    client_id: str

    def make(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.hub.settings.token_issuer,
            "sub": self.consumer,
            "aud": self.hub.settings.audience,
            "client_id": self.client_id,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "scope": "",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}


def sign_with_hub_key(hub: RunningHub, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the hub's current signing key (read from its database)."""
    with Session(hub.hub.runtime.engine) as session:
        signer, _ = signing_keys.load_keys(session)
    assert signer is not None
    key = signing_keys.private_key(signer, sealing.ring_of(hub.hub.runtime.engine))
    head = {"alg": signer.alg, "kid": signer.kid, "typ": "at+jwt", **header}
    return jwt.encode(head, claims, key, algorithms=[signer.alg], registry=REGISTRY)


def sign_with_stranger_key(claims: dict[str, Any], kid: str) -> str:
    key = ECKey.generate_key("P-256", private=True)
    head = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    return jwt.encode(head, claims, key, algorithms=["ES256"], registry=REGISTRY)


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """alg none: a header and claims with an empty signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{part(claims)}."
