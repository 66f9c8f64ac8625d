"""`lgsp secrets` on a database of its own: generate, rotate in two steps (--no-reseal, then
reseal), status, prune; the counts it prints are the database's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlmodel import Session

from gateway.db import make_engine, migrate
from registry import sealing
from registry.crud import agencies, connectors
from registry.models import AgencyCreate, ConnectorCreate
from registry.sealed import count_by_key

LGSP = str(Path(sys.executable).with_name("lgsp"))


def lgsp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LGSP, "secrets", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_generate_rotate_in_two_steps_status_and_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lgsp.db'}"
    key_file = tmp_path / "secrets.key"
    env = {**os.environ, "LGSP_DATABASE_URL": url, "LGSP_SECRETS_KEY_FILE": str(key_file)}
    done = lgsp(env, "generate")
    assert done.returncode == 0, done.stderr
    assert lgsp(env, "generate").returncode == 1  # never overwrites a key file
    first = sealing.read_key_file(key_file)

    engine = make_engine(url)
    try:
        sealing.attach(engine, sealing.read_key_file(key_file))
        migrate(engine)
        with Session(engine) as session:
            agency = AgencyCreate(code="000.00.12.H12", name="Sở thử nghiệm")
            agencies.create_agency(session=session, data=agency)
            for n in range(3):
                data = ConnectorCreate.model_validate(
                    {
                        "name": f"csdl-{n}",
                        "agency_code": "000.00.12.H12",
                        "kind": "rest",
                        "base_url": "http://a",
                        "auth": {"type": "api_key", "secret": f"key-{n}"},
                    }
                )
                connectors.create_connector(session=session, data=data)
            session.commit()
        assert count_by_key(engine)["connector.secret"] == Counter({first.current_kid: 3})

        added = lgsp(env, "rotate", "--no-reseal")
        assert added.returncode == 0, added.stderr
        second = sealing.read_key_file(key_file)
        assert second.kids == [second.current_kid, first.current_kid]
        assert count_by_key(engine)["connector.secret"] == Counter({first.current_kid: 3})
        status = lgsp(env, "status")
        assert f"{first.current_kid}: connector.secret 3" in status.stdout

        resealed = lgsp(env, "reseal")
        assert resealed.returncode == 0, resealed.stderr
        assert "connector.secret: 3 sealed again" in resealed.stdout
        assert count_by_key(engine)["connector.secret"] == Counter({second.current_kid: 3})
        again = lgsp(env, "reseal")  # nothing left to do: resumable
        assert "connector.secret: 0 sealed again" in again.stdout

        pruned = lgsp(env, "prune")
        assert pruned.returncode == 0, pruned.stderr
        assert sealing.read_key_file(key_file).kids == [second.current_kid]
        ring = sealing.read_key_file(key_file)
        with Session(engine) as session:
            row = connectors.get_connector(session=session, name="csdl-1")
            assert row.secret is not None
            assert ring.open(row.secret, context=sealing.connector_context("csdl-1")) == "key-1"

        # A file that lost the key its values need: status names it and fails.
        sealing.write_key_file(key_file, sealing.KeyRing.generate())
        lost = lgsp(env, "status")
        assert lost.returncode == 1
        assert f"missing {second.current_kid}" in lost.stderr
        refused = lgsp(env, "reseal")
        assert refused.returncode == 1 and second.current_kid in refused.stderr
    finally:
        engine.dispose()
