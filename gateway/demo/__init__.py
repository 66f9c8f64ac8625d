"""`lgsp demo`: the hub on SQLite with the simulated provincial and national systems.

Starts the simulators and the hub on loopback, applies the bundled manifest, issues keys for a
consumer and an auditor, and prints commands to paste. The simulators are loaded here only, by
this command; the hub itself never imports them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from registry.keys import issue_key

MANIFEST = Path(__file__).with_name("manifest.yaml")
SIMULATORS = ("population", "dossier", "civil-status", "portal")  # on consecutive ports
MANIFEST_PORT_BASE = 8101  # the ports written in the bundled manifest
DEMO_SECRETS = {
    "DEMO_POPULATION_PASSWORD": "matkhau-demo",
    "DEMO_CIVIL_STATUS_CLIENT_SECRET": "bi-mat-demo",
    "DEMO_DOSSIER_API_KEY": "dossier-demo-key",
}


def _admin_key(data_dir: Path) -> str:
    path = data_dir / "admin.key"
    if not path.exists():
        path.write_text(issue_key(pepper="unused").key + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _issue(hub: httpx.Client, url: str, body: dict[str, Any]) -> str:
    answer = hub.post(url, json=body)
    answer.raise_for_status()
    key: str = answer.json()["key"]
    return key


def _manifest_for(ports: dict[str, int], data_dir: Path) -> Path:
    """The bundled manifest, moved to the simulators' actual ports."""
    text = MANIFEST.read_text(encoding="utf-8")
    for offset, name in enumerate(SIMULATORS):
        text = text.replace(
            f"127.0.0.1:{MANIFEST_PORT_BASE + offset}/", f"127.0.0.1:{ports[name]}/"
        )
    # Contract files are named relative to the manifest: point them at the bundled ones.
    text = text.replace("{file: schemas/", f"{{file: {MANIFEST.parent / 'schemas'}/")
    path = (data_dir / "manifest.yaml").absolute()  # printed in the tour: any directory works
    path.write_text(text, encoding="utf-8")
    return path


def _lgsp() -> str:
    """How to call the CLI from another terminal: the virtual environment's script if any."""
    script = Path(sys.executable).with_name("lgsp")
    return str(script) if script.exists() else "lgsp"


def run_demo(
    *, data_dir: Path, hub_port: int, host: str = "127.0.0.1", sim_port_base: int = 8101
) -> int:
    from gateway.app import Hub
    from gateway.manifest_client import apply
    from gateway.serve import ensure_free
    from gateway.settings import Settings
    from simulators import citizens, civil_status, dossier, population, portal
    from simulators.server import run_in_thread

    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # the tour reaches a pipe at once
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: sim_port_base + i for i, name in enumerate(SIMULATORS)}
    for port in (hub_port, *ports.values()):
        ensure_free(
            host,
            port,
            command="lgsp demo",
            hint="stop what uses it (an earlier demo?) or choose other ports",
        )
    manifest = _manifest_for(ports, data_dir)
    os.environ.update({k: v for k, v in DEMO_SECRETS.items() if k not in os.environ})
    admin = _admin_key(data_dir)
    settings = Settings(
        database_url=f"sqlite:///{(data_dir / 'lgsp.db').absolute()}",
        bootstrap_admin_key=admin,
        log_level="warning",
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        enter(run_in_thread(population.create_app(), host, ports["population"]))
        enter(run_in_thread(civil_status.create_app(), host, ports["civil-status"]))
        enter(run_in_thread(portal.create_app(), host, ports["portal"]))
        hub_url = enter(run_in_thread(Hub(settings), host, hub_port))

        print(f"LGSP Hub demo: hub on {hub_url}, data in {data_dir}/\n")
        applied = io.StringIO()  # the diff is shown only if something went wrong
        status = apply(hub_url=hub_url, key=admin, path=manifest, dry_run=False, out=applied)
        if status != 0:
            print(applied.getvalue())
            print("lgsp demo: the bundled manifest did not apply; see above")
            return status
        with httpx.Client(base_url=hub_url, headers={"X-API-Key": admin}, timeout=10) as hub:
            consumer_key = _issue(hub, "/admin/consumers/mot-cua-laichau/keys", {"label": "demo"})
            auditor_key = _issue(
                hub,
                "/admin/principals",
                {"name": f"kiem-toan-{os.urandom(2).hex()}", "role": "auditor"},
            )
        enter(
            run_in_thread(
                dossier.create_app(hub_url=hub_url, hub_api_key=consumer_key),
                host,
                ports["dossier"],
            )
        )
        _print_tour(
            hub_url,
            f"http://{host}:{ports['dossier']}",
            manifest,
            admin,
            consumer_key,
            auditor_key,
            citizens,
        )
        stop.wait()
        print("\nstopping…", flush=True)
    return 0


def _print_tour(
    hub: str,
    dossier: str,
    manifest: Path,
    admin: str,
    consumer: str,
    auditor: str,
    citizens: Any,
) -> None:
    person = citizens.demo_citizen()
    officer = next(o for o in citizens.officers() if o.co_quyen_dan_cu)
    born = person.ngay_sinh.strftime("%Y%m%d")
    verify = {
        "so_dinh_danh": person.so_dinh_danh,
        "ho_va_ten": person.ho_va_ten,
        "ngay_sinh": born,
        "ma_can_bo": officer.so_dinh_danh,
    }
    import json

    body = shlex.quote(json.dumps(verify, ensure_ascii=False))
    application = shlex.quote(
        json.dumps(
            {
                "MaTTHC": "1.001193",
                "KenhNop": 2,
                "MaXa": person.noi_thuong_tru.ma_xa,
                "ChuHoSo": {
                    "HoVaTen": person.ho_va_ten,
                    "SoDinhDanh": person.so_dinh_danh,
                    "NgaySinh": born,
                },
                "TrichYeu": "Đăng ký thường trú",
            },
            ensure_ascii=False,
        )
    )
    contradicting = shlex.quote(json.dumps({**verify, "ngay_sinh": "19850517"}, ensure_ascii=False))
    # A next version of the dossier-status contract that would break its readers.
    status = json.loads((MANIFEST.parent / "schemas" / "ho-so.trang-thai.json").read_text("utf-8"))
    status["required"] = [*status["required"], "NguoiXuLy"]
    candidate = manifest.parent / "ho-so.trang-thai-v2.json"
    candidate.write_text(json.dumps(status, ensure_ascii=False, indent=2), encoding="utf-8")
    lgsp = _lgsp()
    secrets = "\n".join(f"export {name}='{os.environ[name]}'" for name in DEMO_SECRETS)
    print(f"""Ready. Paste these in another terminal.

# A commune officer submits a dossier; the dossier system verifies the applicant
# against the national population database THROUGH THE HUB:
curl -s -X POST {dossier}/api/ho-so -H 'X-API-Key: dossier-demo-key' \\
  -H 'Content-Type: application/json' -d {application}

# Consumer (the dossier application) calling the hub directly:
export CONSUMER_KEY='{consumer}'
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'X-Purpose: xac-thuc-ho-so' -H 'Content-Type: application/json' -d {body}
# … the same without a declared purpose: refused (403), and recorded too:
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'Content-Type: application/json' -d {body}
# … a number that contradicts its birth date: refused by the contract (422), before any call:
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'X-Purpose: xac-thuc-ho-so' -H 'Content-Type: application/json' -d {contradicting}

# Auditor: every access to this citizen's data (the hub hashes the number before searching):
export AUDITOR_KEY='{auditor}'
curl -s "{hub}/audit/exchanges?subject={person.so_dinh_danh}" -H "X-API-Key: $AUDITOR_KEY"
curl -s "{hub}/audit/exchanges?kind=registry_change&limit=5" -H "X-API-Key: $AUDITOR_KEY"

# Integrator / administrator: the registry as a manifest, and a dry run of the bundled one
# (its provider credentials are read from the environment, never written in the file):
export LGSP_KEY='{admin}'
{secrets}
{lgsp} export --hub {hub}
{lgsp} apply --hub {hub} -f {manifest} --dry-run

# Integrator: contracts. The registered subjects, then whether a new version of the dossier
# status would break its readers (exit 1, with a document that proves it), and FORWARD:
curl -s {hub}/admin/schemas -H "X-API-Key: $LGSP_KEY"
{lgsp} schema check {candidate} --subject ho-so.trang-thai --hub {hub}
{lgsp} schema check {candidate} --subject ho-so.trang-thai --hub {hub} --level FORWARD

Ctrl-C stops everything.""")
