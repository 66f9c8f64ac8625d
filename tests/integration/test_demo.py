"""`lgsp demo` from the outside: run it, paste the commands it prints, check what they answer."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators import citizens
from tests.wait import wait_until


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def _commands(tour: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(exported variables, [(comment above, command)]) from the printed tour."""
    env: dict[str, str] = {}
    commands: list[tuple[str, str]] = []
    comment, pending = "", ""
    for line in tour.splitlines():
        if pending:
            pending += "\n" + line
            if not line.endswith("\\"):
                commands.append((comment, pending))
                pending = ""
            continue
        if line.startswith("#"):
            comment = line
        elif line.startswith("export "):
            name, value = line[len("export ") :].split("=", 1)
            env[name] = value.strip("'")
        elif line.strip() and not line.startswith(("Ready", "Ctrl-C", "LGSP Hub demo")):
            if line.endswith("\\"):
                pending = line
            else:
                commands.append((comment, line))
    return env, commands


@dataclass
class Demo:
    """A running `lgsp demo`: where it listens and what it printed."""

    hub_url: str
    sim_base: int
    tour: str


@contextlib.contextmanager
def running_demo(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Demo]:
    """`lgsp demo` in a process of its own, until the block ends (then Ctrl-C, exit 0)."""
    hub_port, sim_base = _free_ports(1), _free_ports(5)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--port",
            str(hub_port),
            "--sim-port-base",
            str(sim_base),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    assert process.stdout is not None
    printed: list[str] = []

    def ready() -> bool:
        """Reads one printed line: the tour's last is "Ctrl-C stops everything"."""
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:  # the demo exited: fail at once, with what it printed
            raise AssertionError("lgsp demo exited before it was ready:\n" + "\n".join(printed))
        printed.append(line.rstrip("\n"))
        return line.startswith("Ctrl-C stops everything")

    try:
        wait_until(ready, timeout=60, interval=0, what="lgsp demo to print its tour")
        tour = "\n".join(printed)
        yield Demo(f"http://127.0.0.1:{hub_port}", sim_base, tour)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


@pytest.mark.slow
def test_the_printed_tour_works(tmp_path: Path):
    with running_demo(tmp_path / "demo") as demo:
        env, commands = _commands(demo.tour)
        assert {"CONSUMER_KEY", "AUDITOR_KEY", "LGSP_KEY", "CLIENT_ID", "CLIENT_SECRET"} <= set(env)
        run_env = {**os.environ, **env}

        def run(command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["bash", "-c", command], env=run_env, capture_output=True, text=True, timeout=60
            )

        curls = [c for _, c in commands if c.startswith("curl")]
        assert len(curls) == 35, commands
        person = citizens.demo_citizen()

        dossier = json.loads(run(curls[0]).stdout)
        assert dossier["TrangThaiHoSo"] == 2, dossier  # received: the hub verified the applicant
        assert dossier["XacThucDanCu"]["KetQua"] is True

        catalogue = json.loads(run(curls[1]).stdout)
        assert catalogue["consumer"] == "mot-cua-laichau"
        (population,) = [i for i in catalogue["items"] if i["name"] == "dan-cu"]
        (v1,) = population["versions"]
        assert v1["grant"]["state"] == "approved" and "xac-thuc-ho-so" in v1["grant"]["purposes"]
        document = json.loads(run(curls[2]).stdout)
        assert document["openapi"].startswith("3.1") and "/cong-dan/xac-thuc" in document["paths"]

        verified = json.loads(run(curls[3]).stdout)
        assert verified["ket_qua"] is True

        refused = json.loads(run(curls[4]).stdout)
        assert refused["status"] == 403 and refused["type"].endswith("/purpose-required")

        contradicting = json.loads(run(curls[5]).stdout)
        assert contradicting["status"] == 422, contradicting
        assert "ngay_sinh" in json.dumps(contradicting, ensure_ascii=False)

        # The same consumer with an OAuth2 access token (client credentials).
        token = json.loads(run(curls[6]).stdout)
        assert token["token_type"] == "Bearer" and "dan-cu:" in token["scope"], token
        fetch = next(c for _, c in commands if c.startswith("TOKEN=$(curl"))
        with_token = json.loads(run(f"{fetch}\n{curls[7]}").stdout)
        assert with_token["ket_qua"] is True, with_token

        trail = json.loads(run(curls[8]).stdout)["items"]
        exchanges = [r for r in trail if r["service"] == "dan-cu"]
        # the dossier system's call, the direct calls with a key and a token, two refusals
        assert len(exchanges) == 5
        assert {r["hub_status"] for r in exchanges} == {200, 403, 422}
        assert all(person.so_dinh_danh not in json.dumps(r) for r in trail)
        request_ids = {r["request_id"] for r in exchanges}
        assert dossier["XacThucDanCu"]["MaYeuCau"] in request_ids

        changes = json.loads(run(curls[9]).stdout)["items"]
        assert changes and all(r["kind"] == "registry_change" for r in changes)

        lgsp = [c for _, c in commands if re.match(r"^\S*lgsp ", c)]
        exported = run(lgsp[0])
        assert exported.returncode == 0, exported.stderr
        output = re.search(r" -o (\S+)", lgsp[0])
        assert output, lgsp[0]
        written = Path(output[1])
        manifest = yaml.safe_load(written.read_text(encoding="utf-8"))
        assert {s["name"] for s in manifest["services"]} == {"dan-cu", "ho-tich", "ho-so"}
        assert "matkhau-demo" not in written.read_text()  # credentials are write-only

        # The exported manifest applies back with the variables the tour exported, and so does
        # the bundled one (from any directory): the registry holds exactly what they say.
        for command in lgsp[1:3]:
            assert re.search(r" -f /\S+\.yaml", command), command
            dry_run = run(command)
            assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
            assert re.search(
                r"^0 create, 0 update, \d+ unchanged \(dry run", dry_run.stdout, re.M
            ), dry_run.stdout

        subjects = {s["subject"] for s in json.loads(run(curls[10]).stdout)}
        assert {"dan-cu.cong-dan", "ho-so.trang-thai", "edxml.envelope"} <= subjects
        breaks = run(lgsp[3])
        assert breaks.returncode == 1, breaks.stdout + breaks.stderr
        assert "REQUIRED_ATTRIBUTE_ADDED" in breaks.stdout and "counterexample" in breaks.stdout
        forward = run(lgsp[4])
        assert forward.returncode == 0, forward.stdout + forward.stderr
        assert forward.stdout.startswith("COMPATIBLE")

        # The auditor's proofs, the tour's last block: keys, a signed checkpoint, one record's
        # inclusion proof, the citizen's report as PDF, a bundle verified offline, the whole log.
        start = next(i for i, (_, c) in enumerate(commands) if "/audit/keys" in c)
        keys, note, record, proof, report, export, offline, whole = (c for _, c in commands[start:])
        [key] = json.loads(run(keys).stdout)["keys"]

        def proven() -> dict[str, Any] | None:
            answer: dict[str, Any] = json.loads(run(f"{record}\n{proof}").stdout)
            return answer if "proof" in answer else None

        answer = wait_until(  # a checkpoint covers the citizen's records within seconds
            proven, timeout=30, interval=0.5, what="an inclusion proof of the citizen's record"
        )
        assert answer["leaf_index"] >= 0 and answer["checkpoint"]["key_id"] == key["key_id"]
        signed = run(note).stdout
        assert signed.startswith("lgsp.laichau.gov.vn/audit\n") and "\n— " in signed, signed
        for command in (report, export, offline, whole):
            done = run(command)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        output = re.search(r"-o (\S+\.pdf)", report)
        assert output, report
        pdf = Path(output[1])
        assert pdf.read_bytes().startswith(b"%PDF")
        assert key["vkey"] in offline


def test_a_busy_port_is_named_with_the_options_that_move_it(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port),
             "--data-dir", str(tmp_path / "demo")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr and "--sim-port-base" in done.stderr
    assert "Traceback" not in done.stderr
