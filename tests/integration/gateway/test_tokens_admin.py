"""OAuth2 clients in the admin API, the server's metadata and keys, introspection and
revocation for administrators, signing-key rotation, and a publish with a token."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.cli import main
from simulators.server import run_in_thread
from tests.integration.conftest import APPROVE, World, auditor_key
from tests.integration.gateway.test_tokens import ASSERTION_TYPE, _assertion
from tests.integration.gateway.tokens_helpers import (
    ECHO_ROUTE,
    bearer_refusal,
    call,
    client_for,
    get_token,
    token_request,
)
from tests.integration.messaging.receiver import make_channel, running_receiver
from tests.wait import wait_until


@pytest.fixture
def world(make_world: Any, upstream: str) -> World:
    made: World = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    return made


def test_clients_are_issued_listed_rotated_and_revoked_with_their_secret_shown_once(world):
    hub, consumer = world.hub, world.consumer
    client = client_for(
        hub, consumer, label="dossier", token_endpoint_auth_method="client_secret_post"
    )
    cid, first = client["client_id"], client["client_secret"]
    assert client["token_endpoint_auth_method"] == "client_secret_post" and first
    with hub.admin() as admin:
        listed = admin.get(f"/admin/consumers/{consumer}/oauth-clients").json()
        assert [c["client_id"] for c in listed] == [cid]
        assert "client_secret" not in listed[0] and "secret_hash" not in listed[0]
        rotated = admin.post(f"/admin/consumers/{consumer}/oauth-clients/{cid}/rotate")
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["client_secret"]
        assert second and second != first
    form = {"grant_type": "client_credentials", "client_id": cid}
    assert token_request(hub, {**form, "client_secret": first}).status_code == 401
    assert token_request(hub, {**form, "client_secret": second}).status_code == 200
    with hub.admin() as admin:
        revoked = admin.delete(f"/admin/consumers/{consumer}/oauth-clients/{cid}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        again = admin.delete(f"/admin/consumers/{consumer}/oauth-clients/{cid}")
        assert again.status_code == 409
        missing = admin.post(f"/admin/consumers/{consumer}/oauth-clients/lgspc_none/rotate")
        assert missing.status_code == 404
    assert token_request(hub, {**form, "client_secret": second}).status_code == 401
    with hub.client(auditor_key(hub)) as auditor:
        changes = auditor.get(
            "/audit/exchanges", params={"kind": "registry_change", "limit": 1000}
        ).json()["items"]
    actions = [c["action"] for c in changes if c["object_key"] == consumer]
    assert {"issue_oauth_client", "rotate_oauth_client", "revoke_oauth_client"} <= set(actions)
    for record in changes:
        assert first not in str(record) and second not in str(record)


def test_a_consumer_is_deleted_with_its_clients(world):
    with world.hub.admin() as admin:
        name = f"gone-{world.consumer}"
        made = admin.post(
            "/admin/consumers", json={"name": name, "agency_code": world.agency, "title": "App"}
        )
        assert made.status_code == 201, made.text
    client = client_for(world.hub, name)
    with world.hub.admin() as admin:
        assert admin.delete(f"/admin/consumers/{name}").status_code == 204
    form = {"grant_type": "client_credentials"}
    answer = token_request(world.hub, form, basic=(client["client_id"], client["client_secret"]))
    assert answer.status_code == 401, answer.text


def test_bad_client_registrations_are_422(world):
    key = ECKey.generate_key("P-256", private=True)
    private = {**key.as_dict(private=True), "kid": "k1"}
    public = {**key.as_dict(private=False), "kid": "k1"}
    bad = {
        "/jwks": {"token_endpoint_auth_method": "private_key_jwt"},
        "/jwks/keys/0": {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [private]},
        },
    }
    with world.hub.admin() as admin:
        for pointer, body in bad.items():
            answer = admin.post(f"/admin/consumers/{world.consumer}/oauth-clients", json=body)
            assert answer.status_code == 422, answer.text
            assert pointer in [e["pointer"] for e in answer.json()["errors"]], answer.json()
        secret_with_keys = {
            "token_endpoint_auth_method": "client_secret_basic",
            "jwks": {"keys": [public]},
        }
        answer = admin.post(
            f"/admin/consumers/{world.consumer}/oauth-clients", json=secret_with_keys
        )
        assert answer.status_code == 422, answer.text
        answer = admin.post(
            f"/admin/consumers/{world.consumer}/oauth-clients",
            json={"token_endpoint_auth_method": "password"},
        )
        assert answer.status_code == 422, answer.text
        integrator = admin.post(
            "/admin/principals",
            json={
                "name": f"int-{world.consumer}",
                "role": "integrator",
                "agency_code": world.agency,
            },
        ).json()["key"]
    with world.hub.client(integrator) as as_integrator:
        refused = as_integrator.post(f"/admin/consumers/{world.consumer}/oauth-clients", json={})
    assert refused.status_code == 403, refused.text


def test_metadata_and_keys_are_published(hub):
    with hub.client() as anyone:
        meta = anyone.get("/.well-known/oauth-authorization-server").json()
        keys = anyone.get("/.well-known/jwks.json").json()["keys"]
    issuer = hub.settings.token_issuer
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == f"{issuer}/oauth2/token"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"
    }  # fmt: skip
    assert meta["introspection_endpoint"] and meta["revocation_endpoint"]
    assert keys and all(k["use"] == "sig" and k["kid"] and k["alg"] for k in keys)
    assert all("d" not in k for k in keys)  # never a private part


def test_introspection_and_revocation(world):
    hub = world.hub
    client = client_for(hub, world.consumer)
    token = get_token(hub, client)
    with hub.client(auditor_key(hub)) as auditor:
        active = auditor.post("/oauth2/introspect", data={"token": token}).json()
        assert active["active"] is True
        assert (active["client_id"], active["sub"]) == (client["client_id"], world.consumer)
        assert auditor.post("/oauth2/introspect", data={"token": "x.y.z"}).json() == {
            "active": False
        }
        # Auditors read; only administrators revoke.
        assert auditor.post("/oauth2/revoke", data={"token": token}).status_code == 403
    with hub.client() as anyone:
        assert anyone.post("/oauth2/introspect", data={"token": token}).status_code == 401
    assert call(world, token).status_code == 200
    with hub.admin() as admin:
        assert admin.post("/oauth2/revoke", data={"token": token}).status_code == 200
        assert admin.post("/oauth2/revoke", data={"token": "not-a-token"}).status_code == 200
    refusal = bearer_refusal(call(world, token), 401, "invalid_token")
    assert refusal["type"].endswith("revoked-token")
    with hub.client(auditor_key(hub)) as auditor:
        assert auditor.post("/oauth2/introspect", data={"token": token}).json() == {"active": False}
    assert call(world, get_token(hub, client)).status_code == 200  # the client's other tokens


def test_a_rotated_key_signs_and_the_previous_one_still_verifies(world, monkeypatch):
    hub = world.hub
    client = client_for(hub, world.consumer)
    before = get_token(hub, client)
    old_kid = pyjwt.get_unverified_header(before)["kid"]
    monkeypatch.setitem(os.environ, "LGSP_DATABASE_URL", hub.settings.database_url)
    assert main(["tokens", "rotate-key", "--alg", "ES256"]) == 0

    def published() -> list[str] | None:
        with hub.client() as anyone:
            kids = [k["kid"] for k in anyone.get("/.well-known/jwks.json").json()["keys"]]
        return kids if len(kids) > 1 and kids[0] != old_kid else None

    kids = wait_until(published, what="the new key published")
    assert old_kid in kids
    after = get_token(hub, client)
    header = pyjwt.get_unverified_header(after)
    assert (header["kid"], header["alg"]) == (kids[0], "ES256")
    jwks = pyjwt.PyJWKClient(f"{hub.url}/.well-known/jwks.json", timeout=10)
    for token in (before, after):
        key = jwks.get_signing_key_from_jwt(token)
        pyjwt.decode(token, key.key, algorithms=["EdDSA", "ES256", "RS256"],
                     audience=hub.settings.audience, issuer=hub.settings.token_issuer)  # fmt: skip
        assert call(world, token).status_code == 200


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A consumer's JWKS URL on loopback, serving whatever the test puts in `published`."""
    published: dict[str, Any] = {"keys": []}

    async def keys(_: Request) -> JSONResponse:
        return JSONResponse(published)

    with run_in_thread(Starlette(routes=[Route("/jwks.json", keys)])) as url:
        yield f"{url}/jwks.json", published


def test_private_key_jwt_with_a_jwks_uri(world, jwks_server):
    uri, published = jwks_server
    key = ECKey.generate_key("P-256", private=True)
    published["keys"] = [{**key.as_dict(private=False), "kid": "first"}]
    client = client_for(
        world.hub, world.consumer, token_endpoint_auth_method="private_key_jwt", jwks_uri=uri
    )
    cid = client["client_id"]
    token_url = f"{world.hub.url}/oauth2/token"

    def ask(signing: ECKey, kid: str) -> httpx.Response:
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _assertion(cid, signing, kid, token_url)}  # fmt: skip
        return token_request(world.hub, form)

    assert ask(key, "first").status_code == 200
    # The consumer rotates its key at its URL: a new kid makes the hub look again.
    second = ECKey.generate_key("P-256", private=True)
    published["keys"].append({**second.as_dict(private=False), "kid": "second"})
    assert wait_until(
        lambda: ask(second, "second").status_code == 200, interval=0.5, what="the new key read"
    )
    assert ask(ECKey.generate_key("P-256"), "third").status_code == 401


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    yield from running_receiver()


def test_a_publish_with_a_token(hub, receiver_url):
    channel = make_channel(hub, receiver_url)
    try:
        client = client_for(hub, channel.producer)
        token = get_token(hub, client)
        with hub.client() as producer:
            answer = producer.post(
                f"/topics/{channel.topic}/messages",
                json={"value": {"id": "T-1", "n": 1}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 202, answer.text
            bad = producer.post(
                f"/topics/{channel.topic}/messages",
                json={"value": {"id": "T-2", "n": 1}},
                headers={"Authorization": f"Bearer {token[:-4]}AAAA"},
            )
        bearer_refusal(bad, 401, "invalid_token")
    finally:
        channel.admin("DELETE", "")
