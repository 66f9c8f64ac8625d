"""`lgsp`: run the hub, the demo and the simulators; apply and export manifests; check schemas."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Any

from gateway.cli import hub as hubs

HUB_EXIT_CODES = "Exit codes: 0 done, 1 the hub refused, 2 a local problem (a file, no hub)."


def _serve(args: argparse.Namespace) -> int:
    from gateway.runtime.serve import serve
    from gateway.settings import Settings

    Settings()  # fail fast, before starting workers, on a bad configuration
    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def _without_simulators(command: str) -> bool:
    """True (and said) when the simulated systems are not installed, as in production."""
    if importlib.util.find_spec("simulators") is not None:
        return False
    print(
        f"lgsp {command}: the simulated systems are not installed here (production installs "
        "and the Docker image leave them out); run it from a clone: scripts/demo",
        file=sys.stderr,
    )
    return True


def _demo(args: argparse.Namespace) -> int:
    if _without_simulators("demo"):
        return 2
    from gateway.demo import run_demo

    return run_demo(
        data_dir=Path(args.data_dir),
        hub_port=args.port,
        host=args.host,
        sim_port_base=args.sim_port_base,
    )


def _simulate(args: argparse.Namespace) -> int:
    # Simulators are never imported by the hub itself; only this command and the demo load them.
    if _without_simulators("simulate"):
        return 2
    from simulators.runner import serve

    serve(args.name, host=args.host, port=args.port)
    return 0


def _apply(args: argparse.Namespace) -> int:
    from gateway.cli.manifests import apply

    return apply(
        hub_url=args.hub, key=args.key, path=Path(args.file), dry_run=args.dry_run, out=sys.stdout
    )


def _export(args: argparse.Namespace) -> int:
    from gateway.cli.manifests import export

    if args.output == "-":
        return export(hub_url=args.hub, key=args.key, out=sys.stdout)
    with open(args.output, "w", encoding="utf-8") as out:
        return export(hub_url=args.hub, key=args.key, out=out)


def _schema(args: argparse.Namespace) -> int:
    from gateway.cli import schemas as client

    if args.action == "diff" and args.subject is None:
        if args.other is None:
            print("lgsp schema diff: give --subject S, or two files OLD NEW", file=sys.stderr)
            return 2
        return client.diff_files(
            old=Path(args.file), new=Path(args.other), policy=args.policy, out=sys.stdout
        )
    if args.subject is None:
        print(f"lgsp schema {args.action}: --subject is required", file=sys.stderr)
        return 2
    common: dict[str, Any] = {
        "hub": args.hub, "key": args.key, "path": Path(args.file), "subject": args.subject,
        "references": args.reference, "out": sys.stdout,
    }  # fmt: skip
    if args.action == "check":
        return client.check(**common, level=args.level, policy=args.policy, version=args.version)
    if args.action == "diff":
        return client.diff_remote(**common, version=args.version)
    return client.register(**common)


def _gen_key(_: argparse.Namespace) -> int:
    from registry.keys import issue_key

    print(issue_key(pepper="unused").key)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgsp", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {importlib.metadata.version('lgsp-hub')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the hub (settings from LGSP_* variables)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="processes (one per core)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="the hub on SQLite with the simulated systems")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--data-dir", default="var/demo")
    demo.add_argument(
        "--sim-port-base",
        type=int,
        default=8101,
        help="first of five consecutive ports for the simulators (population, dossier, "
        "civil status, portal, document management)",
    )
    demo.set_defaults(func=_demo)

    simulate = commands.add_parser("simulate", help="run one simulated system on its own")
    simulate.add_argument(
        "name", choices=["population", "dossier", "civil-status", "portal", "documents"]
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, required=True)
    simulate.set_defaults(func=_simulate)

    for name, func, text in (
        ("apply", _apply, "apply a manifest (idempotent)"),
        ("export", _export, "write the registry as a manifest"),
    ):
        sub = commands.add_parser(name, help=text, description=HUB_EXIT_CODES)
        hubs.add_options(sub, key="an administrator's or integrator's key")
        if name == "apply":
            sub.add_argument("-f", "--file", required=True)
            sub.add_argument("--dry-run", action="store_true", help="print the diff only")
        else:
            sub.add_argument("-o", "--output", default="-")
        sub.set_defaults(func=func)

    schema = commands.add_parser(
        "schema",
        help="check, diff or register a JSON Schema file against a subject",
        description="Exit codes: 0 compatible or done, 1 a break or a refusal, 3 undecided, "
        "2 a local problem.",
    )
    schema.add_argument("action", choices=["check", "diff", "register"])
    schema.add_argument("file", help="the JSON Schema file (for diff without --subject: OLD)")
    schema.add_argument("other", nargs="?", help="diff without --subject: the NEW file")
    schema.add_argument("--subject", help="the subject in the hub's registry")
    schema.add_argument("--version", type=int, help="check or diff against this version only")
    schema.add_argument("--level", help="check under this level instead of the subject's")
    schema.add_argument("--policy", help="DEFAULT or ROBUST instead of the subject's")
    schema.add_argument(
        "--reference", action="append", default=[], metavar="NAME=SUBJECT:VERSION",
        help="a $ref target the schema names (repeatable)",
    )  # fmt: skip
    hubs.add_options(schema, key="a management key")
    schema.set_defaults(func=_schema)

    gen = commands.add_parser("gen-key", help="print a new key for LGSP_BOOTSTRAP_ADMIN_KEY")
    gen.set_defaults(func=_gen_key)

    audit = commands.add_parser(
        "audit", help="verify the audit log, export evidence, answer data-subject requests"
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    from gateway.cli import audit_keys, audit_reports, audit_retention, audit_verify

    for module in (audit_verify, audit_reports, audit_retention, audit_keys):
        module.add_commands(audit_commands)
    from gateway.cli import secrets, tokens

    tokens.add_commands(commands)
    secrets.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
