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

from gateway.cli.manifests import TIMEOUT

BREAK, UNDECIDED, LOCAL = 1, 3, 2


class LocalError(Exception):
    pass


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


def _post(hub: str, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    try:
        return httpx.post(f"{hub}{path}", json=body, headers={"X-API-Key": key}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise LocalError(f"cannot reach the hub at {hub}: {exc}") from None


def _refused(answer: httpx.Response, out: TextIO) -> int:
    try:
        problem = answer.json()
    except ValueError:
        problem = {}
    detail = problem.get("detail", answer.text) if isinstance(problem, dict) else answer.text
    out.write(f"refused ({answer.status_code}): {detail}\n")
    for error in (problem.get("errors") if isinstance(problem, dict) else None) or []:
        out.write(f"  {error.get('pointer') or '/'}: {error.get('message')}\n")
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
    key: str,
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
        answer = _post(hub, key, f"/admin/schemas/{subject}/compatibility", body)
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    if answer.status_code != 200:
        return _refused(answer, out)
    return print_verdict(answer.json(), subject, out)


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
    *, hub: str, key: str, path: Path, subject: str, references: list[str],
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
        answer = _post(hub, key, f"/admin/schemas/{subject}/diff", body)
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    if answer.status_code != 200:
        return _refused(answer, out)
    result = answer.json()
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
    *, hub: str, key: str, path: Path, subject: str, references: list[str], out: TextIO
) -> int:
    """Register the file as the subject's next version (the subject's rule applies)."""
    try:
        body = {"schema": read_schema(path), "references": parse_references(references)}
        answer = _post(hub, key, f"/admin/schemas/{subject}/versions", body)
    except LocalError as exc:
        out.write(f"error: {exc}\n")
        return LOCAL
    if answer.status_code not in (200, 201):
        code = _refused(answer, out)
        verdict = answer.json().get("verdict") if answer.status_code == 409 else None
        if verdict:
            print_verdict(verdict, subject, out)
        return code
    found = answer.json()
    already = " (already registered)" if answer.status_code == 200 else ""
    out.write(f"{subject} version {found['version']}, id {found['id']}{already}\n")
    return 0
