"""OAuth2 client credentials through a real hub: authlib gets tokens (basic, post,
private_key_jwt), calls a service with them, PyJWT verifies them from the JWKS; the token
endpoint's refusals in the OAuth2 format, the data plane's as RFC 6750 problems."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from registry.jwks import REGISTRY
from tests.integration.conftest import APPROVE, World, audit_records
from tests.integration.gateway.tokens_helpers import (
    ECHO_ROUTE,
    Claims,
    bearer_refusal,
    call,
    client_for,
    get_token,
    oauth_error,
    sign_with_hub_key,
    sign_with_stranger_key,
    token_request,
    unsigned,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def world(make_world, upstream) -> World:
    made: World = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    return made


def _verify_with_pyjwt(world: World, token: str, client_id: str) -> dict[str, Any]:
    settings = world.hub.settings
    jwks = pyjwt.PyJWKClient(f"{world.hub.url}/.well-known/jwks.json", timeout=10)
    key = jwks.get_signing_key_from_jwt(token)
    claims = pyjwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256", "RS256"],
        audience=settings.audience,
        issuer=settings.token_issuer,
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
    )
    assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert claims["sub"] == world.consumer
    assert claims["client_id"] == client_id
    assert claims["exp"] - claims["iat"] == settings.token_lifetime_seconds
    return dict(claims)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_gets_a_token_with_a_secret_and_calls_a_service(world, method):
    client = client_for(world.hub, world.consumer, token_endpoint_auth_method=method)
    with OAuth2Client(
        client["client_id"], client["client_secret"], token_endpoint_auth_method=method, timeout=30
    ) as oauth:
        token = oauth.fetch_token(f"{world.hub.url}/oauth2/token", grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["scope"] == f"{world.service}:*"  # every version: the grant says "*"
        answer = oauth.post(f"{world.hub.url}/api/{world.service}/v1/echo/x", json={"a": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"]["x-lgsp-consumer"] == world.consumer
    assert "authorization" not in answer.json()["headers"]  # the token stays at the hub
    claims = _verify_with_pyjwt(world, token["access_token"], client["client_id"])
    assert claims["scope"] == f"{world.service}:*"
    [record] = audit_records(world.hub, request_id=answer.headers["x-request-id"])
    assert (record["consumer"], record["hub_status"]) == (world.consumer, 200)


def _es256_client(world: World) -> tuple[dict[str, Any], ECKey, str]:
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid}
    client = client_for(
        world.hub, world.consumer, token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [public]},
    )  # fmt: skip
    assert client["client_secret"] is None
    return client, key, kid


def test_authlib_gets_a_token_with_private_key_jwt(world):
    client, key, kid = _es256_client(world)
    token_url = f"{world.hub.url}/oauth2/token"
    with OAuth2Client(
        client["client_id"], key, token_endpoint_auth_method="private_key_jwt", timeout=30
    ) as oauth:
        oauth.register_client_auth_method(
            PrivateKeyJWT(token_url, alg="ES256", headers={"kid": kid})
        )
        token = oauth.fetch_token(token_url, grant_type="client_credentials")
        answer = oauth.post(f"{world.hub.url}/api/{world.service}/v1/echo/x", json={"a": 1})
    assert answer.status_code == 200, answer.text
    _verify_with_pyjwt(world, token["access_token"], client["client_id"])


def _assertion(client_id: str, key: ECKey | OKPKey, kid: str, audience: str, **changes) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
              "exp": now + 60, "jti": uuid.uuid4().hex, **changes}  # fmt: skip
    alg = "ES256" if isinstance(key, ECKey) else "EdDSA"
    return jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg], registry=REGISTRY)


def _assert_with(world: World, client_id: str, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return token_request(world.hub, form)


def test_client_assertions_are_checked(world):
    client, key, kid = _es256_client(world)
    cid = client["client_id"]
    token_url = f"{world.hub.url}/oauth2/token"
    good = _assertion(cid, key, kid, token_url)
    assert _assert_with(world, cid, good).status_code == 200
    # The same assertion again: its jti was consumed.
    oauth_error(_assert_with(world, cid, good), 401, "invalid_client")
    # Signed by another key under the registered kid.
    oauth_error(
        _assert_with(world, cid, _assertion(cid, ECKey.generate_key("P-256"), kid, token_url)),
        401,
        "invalid_client",
    )
    # A kid the client never registered.
    stranger = ECKey.generate_key("P-256")
    body = oauth_error(
        _assert_with(world, cid, _assertion(cid, stranger, "not-registered", token_url)),
        401,
        "invalid_client",
    )
    assert "kid" in body["error_description"]
    # Expired, for another audience, for another client.
    expired = _assertion(cid, key, kid, token_url, exp=int(time.time()) - 120)
    assert (
        "expired"
        in oauth_error(_assert_with(world, cid, expired), 401, "invalid_client")[
            "error_description"
        ]
    )
    elsewhere = _assertion(cid, key, kid, "https://elsewhere.example/token")
    oauth_error(_assert_with(world, cid, elsewhere), 401, "invalid_client")
    other = _assertion(cid, key, kid, token_url, iss="lgspc_someoneelse")
    oauth_error(_assert_with(world, cid, other), 401, "invalid_client")
    # A jti no database may hold (a NUL): refused, nothing stored.
    nul = _assertion(cid, key, kid, token_url, jti="a\x00b")
    oauth_error(_assert_with(world, cid, nul), 401, "invalid_client")
    # The wrong assertion type.
    form = {"grant_type": "client_credentials", "client_assertion_type": "urn:x",
            "client_assertion": _assertion(cid, key, kid, token_url)}  # fmt: skip
    oauth_error(token_request(world.hub, form), 400, "invalid_request")


def test_the_token_endpoint_refuses_in_the_oauth2_format(world):
    client = client_for(world.hub, world.consumer)
    cid, secret = client["client_id"], client["client_secret"]
    grant = {"grant_type": "client_credentials"}
    unknown = token_request(world.hub, grant, basic=("lgspc_0000000000000000", secret))
    oauth_error(unknown, 401, "invalid_client")
    assert unknown.headers["www-authenticate"].startswith("Basic")
    oauth_error(token_request(world.hub, grant, basic=(cid, secret + "x")), 401, "invalid_client")
    oauth_error(
        token_request(world.hub, {"grant_type": "password"}, basic=(cid, secret)),
        400,
        "unsupported_grant_type",
    )
    oauth_error(token_request(world.hub, {}, basic=(cid, secret)), 400, "invalid_request")
    oauth_error(token_request(world.hub, grant), 401, "invalid_client")  # no client at all
    post = {**grant, "client_secret": secret}  # client_id missing
    oauth_error(token_request(world.hub, post), 400, "invalid_request")
    # A client registered for Basic may not send its secret in the body.
    oauth_error(token_request(world.hub, {**post, "client_id": cid}), 401, "invalid_client")
    both = {**grant, "client_id": cid, "client_secret": secret}
    oauth_error(token_request(world.hub, both, basic=(cid, secret)), 400, "invalid_request")
    oauth_error(
        token_request(world.hub, {**grant, "scope": "other-service:v1"}, basic=(cid, secret)),
        400,
        "invalid_scope",
    )
    oauth_error(
        token_request(world.hub, {**grant, "scope": "not a scope!"}, basic=(cid, secret)),
        400,
        "invalid_scope",
    )
    with httpx.Client(base_url=world.hub.url, timeout=30) as raw:
        as_json = raw.post("/oauth2/token", json=grant, auth=(cid, secret))
    oauth_error(as_json, 400, "invalid_request")
    # Ids and secrets no client has, with a NUL, over long, not UTF-8 once decoded: refused.
    for weird in ("lgspc_\x00", "x" * 5000, "ä"):
        oauth_error(token_request(world.hub, grant, basic=(weird, "s")), 401, "invalid_client")
    odd_post = {**grant, "client_id": "lgspc_\u0000", "client_secret": "s"}
    oauth_error(token_request(world.hub, odd_post), 400, "invalid_request")
    with httpx.Client(base_url=world.hub.url, timeout=30) as raw:
        bad_basic = raw.post(
            "/oauth2/token", data=grant, headers={"Authorization": "Basic !!notbase64"}
        )
    oauth_error(bad_basic, 401, "invalid_client")
    assert bad_basic.headers["www-authenticate"].startswith("Basic")


def test_a_requested_scope_narrows_the_token(world):
    client = client_for(world.hub, world.consumer)
    token = get_token(world.hub, client, scope=f"{world.service}:v2")
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == f"{world.service}:v2"
    refusal = bearer_refusal(call(world, token), 403, "insufficient_scope")
    assert refusal["type"].endswith("insufficient-scope")
    assert call(world, get_token(world.hub, client, scope=f"{world.service}:v1")).status_code == 200


def test_the_data_plane_refuses_bad_tokens(world):
    client = client_for(world.hub, world.consumer)
    claims = Claims(world.hub, world.consumer, client["client_id"])
    kid = pyjwt.get_unverified_header(get_token(world.hub, client))["kid"]
    scope = f"{world.service}:v1"
    # A token the hub signed itself is accepted: the refusals below are each one change away.
    assert call(world, sign_with_hub_key(world.hub, claims.make(scope=scope))).status_code == 200

    for header in ("Bearer", "Bearer not-a-token", "Bearer a.b", "Token abc.def.ghi"):
        bearer_refusal(call(world, authorization=header), 401, "invalid_request")
    bearer_refusal(call(world, "eyJhbGciOi.eyJzdWIi.c2ln"), 401, "invalid_token")
    refused = {
        "alg none": unsigned(claims.make(scope=scope), kid),
        "another issuer": sign_with_hub_key(
            world.hub, claims.make(scope=scope, iss="https://other.example")
        ),
        "another audience": sign_with_hub_key(
            world.hub, claims.make(scope=scope, aud="https://other.example")
        ),
        "expired": sign_with_hub_key(world.hub, claims.make(scope=scope, exp=int(time.time()) - 5)),
        "no exp": sign_with_hub_key(world.hub, claims.make(scope=scope, exp=None)),
        "unknown kid": sign_with_stranger_key(claims.make(scope=scope), "no-such-kid"),
        "a stranger under the hub's kid": sign_with_stranger_key(claims.make(scope=scope), kid),
        "not an access token": sign_with_hub_key(world.hub, claims.make(scope=scope), typ="JWT"),
        "unknown client": sign_with_hub_key(
            world.hub, claims.make(scope=scope, client_id="lgspc_nobody")
        ),
    }
    for what, token in refused.items():
        answer = call(world, token)
        assert answer.status_code == 401, (what, answer.text)
        bearer_refusal(answer, 401, "invalid_token")
    expired = bearer_refusal(call(world, refused["expired"]), 401, "invalid_token")
    assert expired["type"].endswith("expired-token")
    records = audit_records(world.hub, service=world.service)
    assert {r["hub_status"] for r in records} >= {200, 401}


def test_a_revoked_client_loses_its_tokens(world):
    client = client_for(world.hub, world.consumer)
    token = get_token(world.hub, client)
    assert call(world, token).status_code == 200
    with world.hub.admin() as admin:
        answer = admin.delete(
            f"/admin/consumers/{world.consumer}/oauth-clients/{client['client_id']}"
        )
        assert answer.status_code == 200, answer.text
    refusal = bearer_refusal(call(world, token), 401, "invalid_token")
    assert refusal["type"].endswith("revoked-client")
    oauth_error(
        token_request(
            world.hub, {"grant_type": "client_credentials"},
            basic=(client["client_id"], client["client_secret"]),
        ),
        401,
        "invalid_client",
    )  # fmt: skip


def test_a_disabled_consumer_gets_no_token_and_its_tokens_are_refused(world):
    client = client_for(world.hub, world.consumer)
    token = get_token(world.hub, client)
    with world.hub.admin() as admin:
        answer = admin.patch(f"/admin/consumers/{world.consumer}", json={"active": False})
        assert answer.status_code == 200, answer.text
    answer = call(world, token)
    assert answer.status_code == 403, answer.text
    oauth_error(
        token_request(
            world.hub, {"grant_type": "client_credentials"},
            basic=(client["client_id"], client["client_secret"]),
        ),
        400,
        "unauthorized_client",
    )  # fmt: skip


_printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
_token_like = st.builds(
    lambda a, b, c: f"{a}.{b}.{c}",
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80
    ),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80
    ),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=_printable.map(str.strip) | _token_like.map(lambda t: f"Bearer {t}"))
def test_any_authorization_header_is_a_401_problem(world, authorization):
    answer = call(world, authorization=authorization)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["www-authenticate"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.dictionaries(
        st.sampled_from(
            ["grant_type", "client_id", "client_secret", "scope", "client_assertion",
             "client_assertion_type", "x"]
        ),
        st.text(max_size=100) | st.just("client_credentials"),
    ),
    basic=st.none() | st.tuples(_printable, _printable),
)  # fmt: skip
def test_any_token_request_is_an_oauth2_error(world, form, basic):
    answer = token_request(world.hub, form, basic=basic)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in {
        "invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"
    }  # fmt: skip
