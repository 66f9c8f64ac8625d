"""Secrets at rest, through a real hub on SQLite and PostgreSQL: the database holds no secret in
clear (read directly, every table and column, and the SQLite file's bytes), the hub still
authenticates upstream and signs webhooks, `lgsp secrets rotate` seals everything again under a
new key, and a sealed value moved or changed is refused."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from standardwebhooks.webhooks import Webhook

from registry import sealing, signing_keys
from registry.sealed import count_by_key
from tests.conftest import BACKENDS, RunningHub, start_hub
from tests.integration.conftest import World, ok, provision
from tests.integration.messaging.receiver import (
    Arrival,
    Channel,
    make_channel,
    running_receiver,
)
from tests.wait import wait_until

ECHO = {"method": "POST", "path": "/echo/{item}", "upstream_path": "/echo/{item}"}
LGSP = str(Path(sys.executable).with_name("lgsp"))


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    yield from running_receiver()


@pytest.fixture(scope="module", params=BACKENDS)
def shub(
    request: pytest.FixtureRequest,
    database_urls: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningHub]:
    """A hub of its own: the rotation test changes its key file."""
    key_file = tmp_path_factory.mktemp("secrets") / "secrets.key"
    yield from start_hub(database_urls(request.param), secrets_key_file=key_file)


def engine_of(hub: RunningHub) -> Engine:
    engine: Engine = hub.hub.runtime.engine
    return engine


def api_key_world(hub: RunningHub, upstream: str, secret: str) -> World:
    return provision(
        hub,
        base_url=upstream,
        routes=[ECHO],
        auth={"type": "api_key", "header": "X-Provider-Key", "secret": secret},
        grant={"versions": ["v1"]},
        decision={"decision": "approve"},
    )


def upstream_saw(world: World) -> str:
    answer = world.call("POST", "/echo/a", json={})
    assert answer.status_code == 200, answer.text
    seen: str = answer.json()["headers"]["x-provider-key"]
    return seen


def delivered_and_verified(channel: Channel, secret: str, n: int) -> Arrival:
    """Publish a message and see it arrive signed with `secret`."""
    assert channel.publish({"id": "HS-1", "n": n}).status_code == 202
    arrival = wait_until(
        lambda: next((a for a in channel.inbox.delivered() if a.value["n"] == n), None),
        what=f"message {n} delivered",
    )
    assert Webhook(secret).verify(arrival.body, arrival.headers) == arrival.value
    return arrival


def everything_stored(engine: Engine) -> str:
    """Every value of every column of every table, as text."""
    out: list[str] = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                out.extend(repr(value) for value in row)
    return "\n".join(out)


def forms(secret: str) -> list[str]:
    """A secret as it could show: itself, and a webhook secret's key without its prefix."""
    return [secret, secret.removeprefix("whsec_")]


SEARCH = """
import sys
from pathlib import Path
raw = b"".join(Path(p).read_bytes() for p in sys.argv[2:] if Path(p).exists())
print(" ".join(s for s in sys.argv[1].split(",") if s.encode() in raw))
"""


def in_files(paths: list[Path], hidden: list[str]) -> list[str]:
    """Which of `hidden` (in any of their forms) the files' bytes hold. Read by another
    process: closing a descriptor of the database file in the hub's own process would drop
    SQLite's POSIX locks on it (and let another process corrupt it)."""
    wanted = ",".join(dict.fromkeys(f for s in hidden for f in forms(s)))
    found = subprocess.run(
        [sys.executable, "-c", SEARCH, wanted, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return found.stdout.split()


def test_no_secret_is_stored_in_clear(
    shub: RunningHub, upstream: str, receiver_url: str, tmp_path: Path
) -> None:
    kinds = ("key", "password", "client", "hook")
    given = {kind: f"{kind}-{secrets.token_hex(12)}" for kind in kinds}
    world = api_key_world(shub, upstream, given["key"])
    assert upstream_saw(world) == given["key"]  # opened to call the provider
    with shub.admin() as admin:
        for name, auth in (
            ("basic", {"type": "basic", "username": "hub", "secret": given["password"]}),
            (
                "oauth2",
                {
                    "type": "oauth2_client_credentials",
                    "token_url": "http://idp.local/token",
                    "client_id": "hub",
                    "secret": given["client"],
                },
            ),
        ):
            ok(
                admin.post(
                    "/admin/connectors",
                    json={
                        "name": f"{name}-{secrets.token_hex(3)}",
                        "agency_code": world.agency,
                        "kind": "rest",
                        "base_url": "http://provider.local",
                        "auth": auth,
                    },
                )
            )
    channel = make_channel(shub, receiver_url)
    assert channel.secret is not None
    rotated = ok(channel.admin("POST", "/secrets"))["secret"]  # a second one, newest first
    hook_auth = {"type": "api_key", "header": "X-Hook-Key", "secret": given["hook"]}
    with shub.admin() as admin:  # the receiver's own credential, sent with each push
        ok(admin.patch(f"/admin/connectors/{channel.connector}", json={"auth": hook_auth}), 200)
    wait_until(
        lambda: shub.hub.runtime.snapshot.subscriptions[channel.subscription].connector_headers,
        what="the push connector's credential in the snapshot",
    )
    arrival = delivered_and_verified(channel, rotated, 1)  # opened to sign
    assert arrival.headers["x-hook-key"] == given["hook"]
    chosen = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with shub.admin() as admin:  # a subscription given its secret
        spec = {
            "name": f"given-{secrets.token_hex(3)}",
            "topic": channel.topic,
            "consumer": channel.subscriber,
            "delivery": "push",
            "connector": channel.connector,
            "path": "/hooks/given",
            "secrets": [chosen],
        }
        ok(admin.post("/admin/subscriptions", json=spec))
    certificate = trustme.CA().issue_cert("provider.local")
    tls_key = certificate.private_key_pem.bytes().decode()
    with shub.admin() as admin:  # a mutual-TLS client key
        tls = {
            "client_cert": certificate.cert_chain_pems[0].bytes().decode(),
            "client_key": tls_key,
        }
        connector = {
            "name": f"mtls-{secrets.token_hex(3)}",
            "agency_code": world.agency,
            "kind": "rest",
            "base_url": "https://provider.local",
            "tls": tls,
        }
        ok(admin.post("/admin/connectors", json=connector))
    with Session(engine_of(shub)) as session:  # the hub's token signing key
        signer, _ = signing_keys.load_keys(session)
        assert signer is not None
        opened = signing_keys.private_key(signer, sealing.ring_of(session))
        private_d = str(opened.as_dict(private=True)["d"])

    stored = everything_stored(engine_of(shub))
    tls_body = tls_key.splitlines()[1]  # a line of the key's base64 body
    hidden = [*given.values(), channel.secret, rotated, chosen, tls_body, private_d]
    assert [s for s in hidden for f in forms(s) if f in stored] == []
    assert "lgsp-sealed:v1:" in stored  # what is there instead
    url = shub.settings.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        assert in_files(files, hidden) == []
        assert in_files(files, ["lgsp-sealed:v1:"]) == ["lgsp-sealed:v1:"]  # the search works


def test_rotation_seals_everything_again_and_the_hub_still_works(
    shub: RunningHub, upstream: str, receiver_url: str
) -> None:
    provider_key = f"key-{secrets.token_hex(12)}"
    world = api_key_world(shub, upstream, provider_key)
    channel = make_channel(shub, receiver_url)
    assert channel.secret is not None
    delivered_and_verified(channel, channel.secret, 1)
    before = sealing.read_key_file(shub.settings.secrets_key_file)  # type: ignore[arg-type]

    env = {
        **os.environ,
        "LGSP_DATABASE_URL": shub.settings.database_url,
        "LGSP_SECRETS_KEY_FILE": str(shub.settings.secrets_key_file),
    }
    done = subprocess.run(
        [LGSP, "secrets", "rotate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    after = sealing.read_key_file(shub.settings.secrets_key_file)  # type: ignore[arg-type]
    assert after.kids == [after.current_kid, *before.kids]  # the old keys stay, for now
    assert after.current_kid in done.stdout
    counts = count_by_key(engine_of(shub))
    assert {kid for counted in counts.values() for kid in counted} == {after.current_kid}
    assert counts["connector.secret"][after.current_kid] >= 1
    assert counts["subscription.secrets"][after.current_kid] >= 1

    # Any change makes the hub rebuild what changed: it opens the values sealed under the new
    # key (read again from its key file) and goes on calling and signing with the same secrets.
    revision = shub.hub.runtime.snapshot.revision
    with shub.admin() as admin:
        ok(
            admin.patch(f"/admin/connectors/{world.connector}", json={"description": "rotated"}),
            200,
        )
    wait_until(lambda: shub.hub.runtime.snapshot.revision > revision, what="the reload")
    assert (world.service, "v1") not in shub.hub.runtime.snapshot.unavailable
    assert upstream_saw(world) == provider_key
    delivered_and_verified(channel, channel.secret, 2)

    status = subprocess.run(
        [LGSP, "secrets", "prune"], env=env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr
    assert sealing.read_key_file(shub.settings.secrets_key_file).kids == [after.current_kid]  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["moved", "changed"])
def test_a_moved_or_changed_secret_is_refused_and_the_service_unavailable(
    shub: RunningHub, upstream: str, how: str
) -> None:
    victim = api_key_world(shub, upstream, f"key-{secrets.token_hex(12)}")
    other = api_key_world(shub, upstream, f"key-{secrets.token_hex(12)}")
    engine = engine_of(shub)
    with engine.begin() as connection:
        stored: str = connection.execute(
            text("SELECT secret FROM connector WHERE name = :n"), {"n": other.connector}
        ).scalar_one()
        if how == "changed":
            mine: str = connection.execute(
                text("SELECT secret FROM connector WHERE name = :n"), {"n": victim.connector}
            ).scalar_one()
            stored = mine[:-4] + ("AAAA" if not mine.endswith("AAAA") else "BBBB")
        connection.execute(
            text("UPDATE connector SET secret = :s WHERE name = :n"),
            {"s": stored, "n": victim.connector},
        )
        connection.execute(text("UPDATE registrystate SET revision = revision + 1"))
    wait_until(
        lambda: (victim.service, "v1") in shub.hub.runtime.snapshot.unavailable,
        what="the connector reported broken",
    )
    answer = victim.call("POST", "/echo/a", json={})
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("service-unavailable")
    reason = shub.hub.runtime.snapshot.unavailable[(victim.service, "v1")]
    assert "does not open" in reason and victim.connector in reason
    assert upstream_saw(other) != ""  # the other connector is unharmed


def test_production_settings_without_a_secrets_key_file_refuse_to_start(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LGSP_ENVIRONMENT": "production",
        "LGSP_DATABASE_URL": f"sqlite:///{tmp_path / 'lgsp.db'}",
        "LGSP_KEY_PEPPER": "k" * 40,
        "LGSP_SUBJECT_HMAC_KEY": "s" * 40,
        "LGSP_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    done = subprocess.run(
        [LGSP, "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "LGSP_SECRETS_KEY_FILE" in done.stderr
    assert not (tmp_path / "lgsp.db").exists()  # refused before touching anything
