"""`lgsp schema ...`: an integrator's CI asks the hub about a schema file before publishing it.

    lgsp schema check FILE --subject S [--level L] [--policy P] [--version N]
    lgsp schema diff FILE --subject S [--version N]       (against a registered version)
    lgsp schema diff OLD NEW                               (two files, no hub needed)
    lgsp schema register FILE --subject S

References are given as `--reference NAME=SUBJECT:VERSION` (repeatable). Exit codes: 0
compatible (or done), 1 a break or a refusal (each printed with its pointer and, for a break,
the document that proves it), 3 undecided, 2 a local problem (unreadable file, hub unreachable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import httpx

from gateway.cli.hub import LOCAL, REFUSED, Hub, LocalError, Refused

BREAK, UNDECIDED = REFUSED, 3


def read_schema(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise LocalError(f"{path} is not JSON: {exc}") from None


def parse_references(items: list[str]) -> list[dict[str, Any]]:
    refs = []
    for item in items:
        name, _, target = item.partition("=")
        subject, _, version = target.rpartition(":")
        if not name or not subject or not version.isdigit():
            raise LocalError(f"--reference {item!r}: write NAME=SUBJECT:VERSION")
        refs.append({"name": name, "subject": subject, "version": int(version)})
    return refs


def _post(hub: str, key: str | None, path: str, body: dict[str, Any]) -> httpx.Response:
    """The hub's answer when it is 200 or 201; Refused or LocalError otherwise."""
    with Hub(hub, key) as client:
        return client.request("POST", path, json=body, ok=(200, 201))


def _refused(refused: Refused, out: TextIO) -> int:
    refused.print(out, prefix="refused")
    return BREAK


def print_verdict(verdict: dict[str, Any], subject: str, out: TextIO) -> int:
    head = f"{verdict['outcome']} with {subject} under {verdict['level']} ({verdict['policy']})"
    out.write(head + "\n")
    for item in verdict.get("breaks", []):
        against = f" (against version {item['version']})" if item.get("version") else ""
        out.write(f"  x {item['rule']} at {item['pointer'] or '/'}{against}\n")
        out.write(f"    {item['message']}\n")
        example = json.dumps(item["counterexample"], ensure_ascii=False)
        side = (
            "old accepts, new refuses"
            if item["direction"] == "backward"
            else ("new accepts, old refuses")
        )
        out.write(f"    counterexample ({side}): {example}\n")
    for item in verdict.get("undecided", []):
        out.write(f"  ? {item['rule']} at {item['pointer'] or '/'}: {item['message']}\n")
    return {"COMPATIBLE": 0, "INCOMPATIBLE": BREAK}.get(verdict["outcome"], UNDECIDED)


def check(
    *,
    hub: str,
    key: str | None,
    path: Path,
    subject: str,
    references: list[str],
    level: str | None,
    policy: str | None,
    version: int | None,
    out: TextIO,
) -> int:
    """Ask the hub whether the file may become the subject's next version."""
    try:
        body = {"schema": read_schema(path), "references": parse_references(references)}
        for name, value in (("level", level), ("policy", policy), ("version", version)):
            if value is not None:
                body[name] = value
        verdict = _post(hub, key, f"/admin/schemas/{subject}/compatibility", body).json()
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    except Refused as exc:
        return _refused(exc, out)
    return print_verdict(verdict, subject, out)


def _print_changes(changes: list[dict[str, Any]], out: TextIO) -> None:
    if not changes:
        out.write("no change\n")
    for change in changes:
        marks = " ".join(
            f"{name} {'ok' if change[name] else 'BREAKS'}" for name in ("backward", "forward")
        )
        out.write(f"{change['pointer'] or '/'}  {change['rule']}  [{marks}]\n")
        out.write(f"    {change['message']}\n")


def diff_remote(
    *, hub: str, key: str | None, path: Path, subject: str, references: list[str],
    version: int | None, out: TextIO,
) -> int:  # fmt: skip
    """The changes from a registered version (default: the latest) to the file."""
    try:
        body: dict[str, Any] = {
            "schema": read_schema(path),
            "references": parse_references(references),
        }
        if version is not None:
            body["version"] = version
        result = _post(hub, key, f"/admin/schemas/{subject}/diff", body).json()
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    except Refused as exc:
        return _refused(exc, out)
    out.write(f"{subject} version {result['version']} -> {path}\n")
    _print_changes(result["changes"], out)
    return 0


def diff_files(*, old: Path, new: Path, policy: str | None, out: TextIO) -> int:
    """The changes between two schema files, computed here (no hub, no references)."""
    from schemas.compatibility import Policy, diff

    try:
        before, after = read_schema(old), read_schema(new)
        chosen = Policy(policy.upper()) if policy else Policy.DEFAULT
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    except ValueError:
        out.write(f"error: unknown policy {policy!r}: DEFAULT or ROBUST\n")
        return LOCAL
    changes = [
        {"pointer": c.pointer, "rule": c.rule, "message": c.message,
         "backward": c.backward, "forward": c.forward}
        for c in diff(before, after, policy=chosen)
    ]  # fmt: skip
    out.write(f"{old} -> {new}\n")
    _print_changes(changes, out)
    return 0


def register(
    *, hub: str, key: str | None, path: Path, subject: str, references: list[str], out: TextIO
) -> int:
    """Register the file as the subject's next version (the subject's rule applies)."""
    try:
        body = {"schema": read_schema(path), "references": parse_references(references)}
        answer = _post(hub, key, f"/admin/schemas/{subject}/versions", body)
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    except Refused as exc:
        code = _refused(exc, out)
        verdict = exc.problem.get("verdict") if exc.status == 409 else None
        if isinstance(verdict, dict):
            print_verdict(verdict, subject, out)
        return code
    found = answer.json()
    already = " (already registered)" if answer.status_code == 200 else ""
    out.write(f"{subject} version {found['version']}, id {found['id']}{already}\n")
    return 0
