"""`lgsp apply` and `lgsp export`: manifests as YAML on disk, JSON on the wire.

Secrets never sit in a manifest: a connector's `secret: {env: NAME}` (and its mutual-TLS
`client_key: {env: NAME}`), and each `{env: NAME}` in a subscription's `secrets`, is read from
this process's environment just before sending. A schema
may sit in its own file: `schema: {file: PATH}`, PATH beside the manifest, is read here too.
Exit codes: 0 done, 1 the hub refused (its errors are printed with their pointers into the
manifest), 2 a local problem (unreadable file, missing variable, a hub that cannot be reached).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO, TypeGuard

import yaml

from gateway.cli.hub import LOCAL, REFUSED, Hub, LocalError, Refused

SIGNS = {"create": "+", "update": "~", "unchanged": "="}


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise LocalError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise LocalError(f"{path} must hold one YAML mapping (apiVersion, kind, agencies, ...)")
    return document


def _is_reference(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and set(value) == {"env"}


def _from_environment(reference: dict[str, Any], where: str, whose: str) -> str:
    name = str(reference["env"])
    if name not in os.environ:
        raise LocalError(
            f"{where}: environment variable {name} is not set (it holds the secret of {whose})"
        )
    return os.environ[name]


def resolve_secrets(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every `{env: NAME}` secret replaced by $NAME: connectors'
    `auth.secret` and the items of subscriptions' `secrets`."""
    connectors = document.get("connectors")
    if isinstance(connectors, list):
        resolved = []
        for i, connector in enumerate(connectors):
            auth = connector.get("auth") if isinstance(connector, dict) else None
            secret = auth.get("secret") if isinstance(auth, dict) else None
            if isinstance(auth, dict) and _is_reference(secret):
                whose = f"connector {connector.get('name')}"
                value = _from_environment(secret, f"/connectors/{i}/auth/secret", whose)
                connector = {**connector, "auth": {**auth, "secret": value}}
            tls = connector.get("tls") if isinstance(connector, dict) else None
            key = tls.get("client_key") if isinstance(tls, dict) else None
            if isinstance(tls, dict) and _is_reference(key):
                whose = f"connector {connector.get('name')}"
                value = _from_environment(key, f"/connectors/{i}/tls/client_key", whose)
                connector = {**connector, "tls": {**tls, "client_key": value}}
            resolved.append(connector)
        document = {**document, "connectors": resolved}
    subscriptions = document.get("subscriptions")
    if isinstance(subscriptions, list):
        resolved = []
        for i, subscription in enumerate(subscriptions):
            given = subscription.get("secrets") if isinstance(subscription, dict) else None
            if isinstance(given, list) and any(_is_reference(s) for s in given):
                whose = f"subscription {subscription.get('name')}"
                values = [
                    _from_environment(s, f"/subscriptions/{i}/secrets/{j}", whose)
                    if _is_reference(s)
                    else s
                    for j, s in enumerate(given)
                ]
                subscription = {**subscription, "secrets": values}
            resolved.append(subscription)
        document = {**document, "subscriptions": resolved}
    return document


def resolve_schema_files(document: dict[str, Any], base: Path) -> dict[str, Any]:
    """The document with every `schema: {file: PATH}` replaced by that JSON file's content
    (PATH relative to the manifest's folder)."""
    subjects = document.get("schemas")
    if not isinstance(subjects, list):
        return document
    resolved = []
    for i, subject in enumerate(subjects):
        versions = subject.get("versions") if isinstance(subject, dict) else None
        if isinstance(versions, list):
            loaded = []
            for j, version in enumerate(versions):
                schema = version.get("schema") if isinstance(version, dict) else None
                if isinstance(schema, dict) and set(schema) == {"file"}:
                    path = base / str(schema["file"])
                    where = f"/schemas/{i}/versions/{j}/schema"
                    try:
                        content = json.loads(path.read_text(encoding="utf-8"))
                    except OSError as exc:
                        raise LocalError(f"{where}: cannot read {path}: {exc.strerror}") from None
                    except ValueError as exc:
                        raise LocalError(f"{where}: {path} is not JSON: {exc}") from None
                    version = {**version, "schema": content}
                loaded.append(version)
            subject = {**subject, "versions": loaded}
        resolved.append(subject)
    return {**document, "schemas": resolved}


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):  # YAML timestamps
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _print_result(result: dict[str, Any], out: TextIO) -> None:
    for item in result.get("objects", []):
        kind, key, action = item["kind"], item["key"], item["action"]
        changes = item.get("changes") or {}
        if action == "update" and changes:
            for name, (old, new) in changes.items():
                out.write(f"~ {kind} {key}: {name} {_show(old)} -> {_show(new)}\n")
        else:
            out.write(f"{SIGNS.get(action, '?')} {kind} {key} ({action})\n")
    summary = result.get("summary", {})
    counts = ", ".join(f"{summary.get(a, 0)} {a}" for a in ("create", "update", "unchanged"))
    if result.get("dry_run"):
        state = "dry run, nothing applied"
    else:
        state = f"applied, registry revision {result.get('revision')}"
    out.write(f"{counts} ({state})\n")
    if result.get("note"):
        out.write(f"note: {result['note']}\n")


def apply(*, hub_url: str, key: str | None, path: Path, dry_run: bool, out: TextIO) -> int:
    """Send the manifest at `path` to the hub and print what changed (or would)."""
    try:
        document = resolve_schema_files(resolve_secrets(_read(path)), path.parent)
        body = json.dumps(document, default=_json_default, ensure_ascii=False).encode()
    except (LocalError, TypeError) as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    try:
        with Hub(hub_url, key) as hub:
            answer = hub.request(
                "POST",
                "/admin/apply",
                params={"dry_run": "true" if dry_run else "false"},
                content=body,
                headers={"Content-Type": "application/json"},
            )
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    except Refused as exc:
        exc.print(out)
        return REFUSED
    _print_result(answer.json(), out)
    return 0


def export(*, hub_url: str, key: str | None, out: TextIO) -> int:
    """Write the hub's registry as a YAML manifest (secrets as {env: ...} references)."""
    try:
        with Hub(hub_url, key) as hub:
            answer = hub.request("GET", "/admin/export")
    except LocalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return LOCAL
    except Refused as exc:
        exc.print(sys.stderr)  # `out` may be the manifest file being written
        return REFUSED
    yaml.safe_dump(answer.json(), out, sort_keys=False, allow_unicode=True)
    return 0
