"""`lgsp demo`: the hub on SQLite with the simulated provincial and national systems.

Starts the simulators and the hub on loopback, applies the bundled manifest, issues keys for a
consumer and an auditor, and prints commands to paste. The simulators are loaded here only, by
this command; the hub itself never imports them. The producing simulators (dossier, civil status,
document management) get the hub's URL and their own consumer keys; the receiving ones (portal,
population database, document management) the signing secrets of their push subscriptions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shlex
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from registry.keys import issue_key

MANIFEST = Path(__file__).with_name("manifest.yaml")
# On consecutive ports, in this order (new ones go last: the manifest's ports stay put).
SIMULATORS = ("population", "dossier", "civil-status", "portal", "documents")
MANIFEST_PORT_BASE = 8101  # the ports written in the bundled manifest
# The demo's credentials, as environment variables. A connector's is named as `lgsp export`
# names it (LGSP_SECRET_<CONNECTOR>), so an exported manifest applies with the same variables.
DEMO_SECRETS = {
    "LGSP_SECRET_CSDL_DAN_CU": "matkhau-demo",
    "LGSP_SECRET_HO_TICH": "bi-mat-demo",
    "LGSP_SECRET_MOT_CUA": "dossier-demo-key",
    # Signing secrets of the push subscriptions (Standard Webhooks: whsec_ + base64).
    "LGSP_WEBHOOK_SECRET_DVCQG": "whsec_bGdzcC1kZW1vLXBvcnRhbC13ZWJob29r",
    "LGSP_WEBHOOK_SECRET_DAN_CU": "whsec_bGdzcC1kZW1vLWRhbi1jdS13ZWJob29r",
    "LGSP_WEBHOOK_SECRET_QLVB_UBND": "whsec_bGdzcC1kZW1vLXFsdmItdWJuZC1ob29r",
    "LGSP_WEBHOOK_SECRET_QLVB_STP": "whsec_bGdzcC1kZW1vLXFsdmItc3RwLS1ob29r",
}
# Keys the demo issues to publishing systems, by simulator (or document desk): consumer. The
# dossier system publishes and reads BIRTH_SUBSCRIPTION with the mot-cua-laichau key.
PUBLISHERS = {
    "civil-status": "ho-tich-laichau",
    "000.00.12.H12": "qlvb-ubnd-laichau",
    "000.00.15.H12": "qlvb-stp-laichau",
}
DESK_SECRETS = {
    "000.00.12.H12": "LGSP_WEBHOOK_SECRET_QLVB_UBND",
    "000.00.15.H12": "LGSP_WEBHOOK_SECRET_QLVB_STP",
}
BIRTH_SUBSCRIPTION = "mot-cua-khai-sinh"


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


def _oauth_client(hub: httpx.Client, consumer: str) -> tuple[str, str]:
    """An OAuth2 client of `consumer` (client_secret_basic): its id and its secret."""
    answer = hub.post(f"/admin/consumers/{consumer}/oauth-clients", json={"label": "demo"})
    answer.raise_for_status()
    issued = answer.json()
    return str(issued["client_id"]), str(issued["client_secret"])


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
    from gateway.cli.manifests import apply
    from gateway.runtime.serve import ensure_free
    from gateway.settings import Settings
    from simulators import citizens, civil_status, documents, dossier, population, portal
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
            hint="stop what uses it (an earlier demo?) or choose other ports: --port N for the "
            f"hub, --sim-port-base N for the {len(SIMULATORS)} simulators (N to "
            f"N+{len(SIMULATORS) - 1})",
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

    def secret(name: str) -> list[str]:
        return [os.environ[name]]

    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        enter(
            run_in_thread(
                population.create_app(webhook_secrets=secret("LGSP_WEBHOOK_SECRET_DAN_CU")),
                host,
                ports["population"],
            )
        )
        enter(
            run_in_thread(
                portal.create_app(webhook_secrets=secret("LGSP_WEBHOOK_SECRET_DVCQG")),
                host,
                ports["portal"],
            )
        )
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
            client = _oauth_client(hub, "mot-cua-laichau")
            keys = {
                system: _issue(hub, f"/admin/consumers/{consumer}/keys", {"label": "demo"})
                for system, consumer in PUBLISHERS.items()
            }
            auditor_key = _issue(
                hub,
                "/admin/principals",
                {"name": f"kiem-toan-{os.urandom(2).hex()}", "role": "auditor"},
            )
        enter(
            run_in_thread(
                dossier.create_app(
                    hub_url=hub_url,
                    hub_api_key=consumer_key,
                    birth_subscription=BIRTH_SUBSCRIPTION,
                ),
                host,
                ports["dossier"],
            )
        )
        enter(
            run_in_thread(
                civil_status.create_app(hub_url=hub_url, hub_api_key=keys["civil-status"]),
                host,
                ports["civil-status"],
            )
        )
        desks = [
            dataclasses.replace(
                desk,
                webhook_secret=os.environ[DESK_SECRETS[desk.code]],
                hub_api_key=keys[desk.code],
            )
            for desk in documents.DEMO_DESKS
        ]
        enter(
            run_in_thread(
                documents.create_app(desks=desks, hub_url=hub_url), host, ports["documents"]
            )
        )
        urls = {name: f"http://{host}:{port}" for name, port in ports.items()}
        audit = _audit_tour(hub_url, settings.database_url, data_dir, citizens)
        _print_tour(
            hub_url, urls, manifest, admin, consumer_key, auditor_key, citizens, audit, client
        )
        stop.wait()
        print("\nstopping…", flush=True)
    return 0


def _json_arg(document: Any) -> str:
    """A JSON document as one shell word."""
    return shlex.quote(json.dumps(document, ensure_ascii=False))


def _from_json(field: str) -> str:
    """A shell filter printing the last string value of `field` in compact JSON on stdin."""
    return f"""sed -E 's/.*"{field}":"([^"]+)".*/\\1/'"""


def _messaging_tour(hub: str, urls: dict[str, str], citizens: Any) -> str:
    """The three asynchronous flows: how to set each off, watch it and read its audit trail."""
    from simulators.civil_status import first_assigned_id
    from simulators.formats import now_in_vietnam

    dossier, portal, documents = urls["dossier"], urls["portal"], urls["documents"]
    civil, population = urls["civil-status"], urls["population"]
    today = now_in_vietnam()
    first_code = f"H12.99-{today:%y%m%d}-0001"  # the dossier submitted at the top of the tour
    progress = _json_arg(
        {"TrangThaiHoSo": 4, "NguoiXuLy": "Trần Thị Hoa", "NoiDungXuLy": "Chuyển phòng chuyên môn"}
    )
    mother = next(
        c
        for c in citizens.citizens()
        if c.gioi_tinh == 2
        and c.so_dinh_danh.startswith("012")
        and 1990 <= c.ngay_sinh.year <= 2002
    )
    mothers_application = _json_arg(
        {
            "MaTTHC": "1.001193",
            "KenhNop": 2,
            "MaXa": mother.noi_thuong_tru.ma_xa,
            "ChuHoSo": {
                "HoVaTen": mother.ho_va_ten,
                "SoDinhDanh": mother.so_dinh_danh,
                "NgaySinh": f"{mother.ngay_sinh:%Y%m%d}",
            },
            "TrichYeu": "Đăng ký khai sinh cho con",
        }
    )
    born = today.date() - timedelta(days=3)
    child = first_assigned_id(sex=1, birth_year=born.year)
    birth = _json_arg(
        {
            "ho_va_ten": f"{mother.ho_va_ten.split()[0]} Văn Páo",
            "gioi_tinh": 1,
            "ngay_sinh": f"{born:%Y%m%d}",
            "noi_sinh_ma_xa": mother.noi_thuong_tru.ma_xa,
            "me_so_dinh_danh": mother.so_dinh_danh,
        }
    )
    lookup = _json_arg({"so_dinh_danh": child, "ma_can_bo": "012185000101"})
    token = (
        f"$(curl -s -X POST {civil}/oauth/token -d grant_type=client_credentials"
        f" -d client_id=lgsp-hub -d client_secret=bi-mat-demo | {_from_json('access_token')})"
    )
    letter = _json_arg(
        {
            "To": [{"OrganId": "000.00.15.H12", "OrganName": "Sở Tư pháp tỉnh Lai Châu"}],
            "Subject": "V/v rà soát thủ tục đăng ký khai sinh liên thông",
            "DueDate": f"{today.date() + timedelta(days=14):%Y%m%d}",
        }
    )
    office, justice = "000.00.12.H12", "000.00.15.H12"
    last_message = f"$(curl -s {documents}/_sim/published | {_from_json('message_id')})"
    return f"""
# Messaging 1: a dossier changes status. The dossier system publishes it to dossier.status;
# the hub pushes it, signed (Standard Webhooks), to the national portal, which verifies it:
curl -s -X PUT {dossier}/api/ho-so/{first_code}/trang-thai -H 'X-API-Key: dossier-demo-key' \\
  -H 'Content-Type: application/json' -d {progress}
# … what the dossier system published (with the hub's message ids), what the portal received:
curl -s {dossier}/_sim/published
curl -s {portal}/_sim/ho-so/{first_code}
curl -s {portal}/_sim/webhooks

# Messaging 2: a mother files a birth-registration dossier, then the commune registers the
# birth. civil.birth-registered reaches the population database (push) and the dossier system
# (a consumer group reading the hub's pull API), which completes her dossier (status 9): that
# change goes on to the portal like any other.
curl -s -X POST {dossier}/api/ho-so -H 'X-API-Key: dossier-demo-key' \\
  -H 'Content-Type: application/json' -d {mothers_application}
curl -s -X POST {civil}/api/khai-sinh -H 'Content-Type: application/json' \\
  -H "Authorization: Bearer {token}" -d {birth}
curl -s {population}/_sim/khai-sinh
curl -s {dossier}/_sim/khai-sinh
curl -s {portal}/_sim/ho-so
# … the group's position and lag, and the newborn found in the population database through the hub:
curl -s {hub}/admin/subscriptions/{BIRTH_SUBSCRIPTION}/positions -H "X-API-Key: $LGSP_KEY"
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/tra-cuu -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'X-Purpose: giai-quyet-tthc' -H 'Content-Type: application/json' -d {lookup}

# Messaging 3: the provincial office sends an official document (edXML) to the Department of
# Justice, whose system answers with status packets (01 đã đến, 03 đã tiếp nhận), pushed back:
curl -s -X POST {documents}/api/{office}/van-ban-di -H 'Content-Type: application/json' \\
  -d {letter}
curl -s {documents}/api/{justice}/van-ban-den
# … the department reports the work done (06 hoàn thành); the office sees each status:
curl -s -X POST {documents}/api/{justice}/van-ban-den/1/trang-thai \\
  -H 'Content-Type: application/json' -d '{{"StatusCode": "06"}}'
curl -s {documents}/api/{office}/van-ban-di

# Watching messages go through: the subscriptions, one's positions and lag, its dead letters:
curl -s {hub}/admin/subscriptions -H "X-API-Key: $LGSP_KEY"
curl -s {hub}/admin/subscriptions/qlvb-ubnd-trang-thai/positions -H "X-API-Key: $LGSP_KEY"
curl -s {hub}/admin/subscriptions/qlvb-ubnd-trang-thai/dead-letters -H "X-API-Key: $LGSP_KEY"
# Audit trail: what was published on a topic, every delivery attempt of a subscription, and
# everything about one message (here the last one the document systems published):
curl -s "{hub}/audit/exchanges?kind=publish&topic=dossier.status" -H "X-API-Key: $AUDITOR_KEY"
curl -s "{hub}/audit/exchanges?kind=delivery&subscription=dvcqg-trang-thai-ho-so" \\
  -H "X-API-Key: $AUDITOR_KEY"
curl -s "{hub}/audit/exchanges?message_id={last_message}" -H "X-API-Key: $AUDITOR_KEY"
"""


def _audit_tour(hub: str, database_url: str, data_dir: Path, citizens: Any) -> str:
    """The auditor's proofs: signed checkpoints, a data-subject report, an offline-verified
    bundle, and the whole log checked against its checkpoints."""
    from audit.keys import default_key_file, load_signers

    signer = load_signers(default_key_file(database_url), name="", generate=False)[0]
    person = citizens.demo_citizen()
    lgsp = _lgsp()
    bundle = (data_dir / "bang-chung.zip").absolute()
    python = shlex.quote(sys.executable)
    first_id = 'import json, sys; print(json.load(sys.stdin)["items"][0]["id"])'
    report = (data_dir / "bao-cao.pdf").absolute()
    return f"""
# Auditor: the log is a Merkle tree (RFC 9162) whose checkpoints the hub signs (C2SP signed
# notes, Ed25519) every few seconds. The keys, the latest checkpoint, one record's proof:
curl -s {hub}/audit/keys -H "X-API-Key: $AUDITOR_KEY"
curl -s {hub}/audit/checkpoints/latest -H "Accept: text/plain" -H "X-API-Key: $AUDITOR_KEY"
RECORD=$(curl -s "{hub}/audit/exchanges?subject={person.so_dinh_danh}&limit=1" \\
  -H "X-API-Key: $AUDITOR_KEY" | {python} -c '{first_id}')
curl -s "{hub}/audit/proofs/inclusion?record=$RECORD" -H "X-API-Key: $AUDITOR_KEY"
# The citizen's data-subject report: every access, each with its proof (JSON, CSV or PDF):
{lgsp} audit subject {person.so_dinh_danh} --hub {hub} --key "$AUDITOR_KEY" --format pdf -o {report}
# Evidence for another machine: the citizen's records, proofs, checkpoint and keys in one
# bundle, then checked offline against the hub's public key (no database, no network):
export LGSP_DATABASE_URL='{database_url}'
{lgsp} audit export --subject {person.so_dinh_danh} -o {bundle}
env -u LGSP_DATABASE_URL {lgsp} audit verify-bundle {bundle} --key '{signer.vkey}'
# The whole log against every signed checkpoint (names the first altered record, if any):
{lgsp} audit verify
"""


def _print_tour(
    hub: str,
    urls: dict[str, str],
    manifest: Path,
    admin: str,
    consumer: str,
    auditor: str,
    citizens: Any,
    audit: str,
    client: tuple[str, str],
) -> None:
    dossier = urls["dossier"]
    person = citizens.demo_citizen()
    officer = next(o for o in citizens.officers() if o.co_quyen_dan_cu)
    born = person.ngay_sinh.strftime("%Y%m%d")
    verify = {
        "so_dinh_danh": person.so_dinh_danh,
        "ho_va_ten": person.ho_va_ten,
        "ngay_sinh": born,
        "ma_can_bo": officer.so_dinh_danh,
    }
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
    exported = manifest.parent / "registry.yaml"
    credentials = '-u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials'
    get_token = f"curl -s {credentials} {hub}/oauth2/token"
    print(f"""Ready. Paste these in another terminal.

# A commune officer submits a dossier; the dossier system verifies the applicant
# against the national population database THROUGH THE HUB:
curl -s -X POST {dossier}/api/ho-so -H 'X-API-Key: dossier-demo-key' \\
  -H 'Content-Type: application/json' -d {application}

# Consumer (the dossier application): start at the catalogue (the services you may see, your
# grants and their purposes), then a service's generated OpenAPI 3.1 document:
export CONSUMER_KEY='{consumer}'
curl -s {hub}/catalog -H "X-API-Key: $CONSUMER_KEY"
curl -s {hub}/catalog/dan-cu/v1/openapi.json -H "X-API-Key: $CONSUMER_KEY"
# … and call the service directly:
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'X-Purpose: xac-thuc-ho-so' -H 'Content-Type: application/json' -d {body}
# … the same without a declared purpose: refused (403), and recorded too:
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'Content-Type: application/json' -d {body}
# … a number that contradicts its birth date: refused by the contract (422), before any call:
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "X-API-Key: $CONSUMER_KEY" \\
  -H 'X-Purpose: xac-thuc-ho-so' -H 'Content-Type: application/json' -d {contradicting}

# The same consumer with an OAuth2 access token (client credentials): get one, call with it:
export CLIENT_ID='{client[0]}'
export CLIENT_SECRET='{client[1]}'
{get_token}
TOKEN=$({get_token} | {_from_json("access_token")})
curl -s -X POST {hub}/api/dan-cu/v1/cong-dan/xac-thuc -H "Authorization: Bearer $TOKEN" \\
  -H 'X-Purpose: xac-thuc-ho-so' -H 'Content-Type: application/json' -d {body}

# Auditor: every access to this citizen's data (the hub hashes the number before searching):
export AUDITOR_KEY='{auditor}'
curl -s "{hub}/audit/exchanges?subject={person.so_dinh_danh}" -H "X-API-Key: $AUDITOR_KEY"
curl -s "{hub}/audit/exchanges?kind=registry_change&limit=5" -H "X-API-Key: $AUDITOR_KEY"

# Integrator / administrator: the registry written as a manifest, then applied back (a dry run
# shows the diff). Provider credentials are never in the file: it names variables for them
# (LGSP_SECRET_<CONNECTOR>), read from the environment when it is applied.
export LGSP_KEY='{admin}'
{secrets}
{lgsp} export --hub {hub} -o {exported}
{lgsp} apply --hub {hub} -f {exported} --dry-run
{lgsp} apply --hub {hub} -f {manifest} --dry-run

# Integrator: contracts. The registered subjects, then whether a new version of the dossier
# status would break its readers (exit 1, with a document that proves it), and FORWARD:
curl -s {hub}/admin/schemas -H "X-API-Key: $LGSP_KEY"
{lgsp} schema check {candidate} --subject ho-so.trang-thai --hub {hub}
{lgsp} schema check {candidate} --subject ho-so.trang-thai --hub {hub} --level FORWARD
{_messaging_tour(hub, urls, citizens)}{audit}
Ctrl-C stops everything.""")
