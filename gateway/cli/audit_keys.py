"""`lgsp audit keys`: create, rotate and show the audit log's checkpoint-signing keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _key_file(args: argparse.Namespace) -> tuple[Path, str]:
    from audit.keys import default_key_file
    from gateway.settings import Settings

    settings = Settings()
    path = Path(args.key_file) if args.key_file else settings.audit_key_file
    return path or default_key_file(settings.database_url), settings.audit_origin


def _generate(args: argparse.Namespace) -> int:
    from audit.keys import write_signers
    from audit.notes import Signer

    path, origin = _key_file(args)
    if path.exists():
        print(f"lgsp audit keys generate: {path} exists; use rotate", file=sys.stderr)
        return 1
    signer = Signer.generate(origin)  # keys are named like the log (its origin)
    write_signers(path, [signer])
    print(f"wrote {path}\npublic key (give it to auditors): {signer.vkey}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from audit.errors import KeyFileError
    from audit.keys import rotate

    path, origin = _key_file(args)
    try:
        signer = rotate(path, name=origin)
    except KeyFileError as exc:
        print(f"lgsp audit keys rotate: {exc}", file=sys.stderr)
        return 1
    print(
        f"new key first in {path}: {signer.vkey}\n"
        "restart the hub: its first checkpoint is co-signed by the old key, and the old key "
        "can then be removed from the file"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from audit.errors import KeyFileError
    from audit.keys import load_signers

    path, origin = _key_file(args)
    try:
        signers = load_signers(path, name=origin, generate=False)
    except KeyFileError as exc:
        print(f"lgsp audit keys show: {exc}", file=sys.stderr)
        return 1
    for number, signer in enumerate(signers):
        print(f"{'current ' if number == 0 else 'previous'} {signer.vkey}")
    return 0


def add_commands(audit: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = audit.add_parser("keys", help="create, rotate or show the checkpoint-signing keys")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    for name, func, text in (
        ("generate", _generate, "write a new key file (refuses to overwrite)"),
        ("rotate", _rotate, "put a new key first, keeping the old one for the handover"),
        ("show", _show, "print the public keys (vkeys) of the key file"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--key-file", help="default: LGSP_AUDIT_KEY_FILE")
        sub.set_defaults(func=func)
