"""The README stays true: its map of the code names the rooms that exist, its account of the demo
counts what the bundled manifest declares, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.demo import SIMULATORS

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_map_names_every_room_of_the_gateway_and_no_other() -> None:
    built = section("How it is built")
    named = set(re.findall(r"^  ([a-z_]+)/ ", built, re.MULTILINE))
    # Folders holding code (a folder left with only __pycache__ after a move is no room).
    rooms = {p.name for p in (ROOT / "gateway").iterdir() if p.is_dir() and any(p.rglob("*.py"))}
    assert named == rooms
    top = set(re.findall(r"^([a-z]+)/ ", built, re.MULTILINE))
    assert top == {"schemas", "registry", "audit", "connectors", "messaging", "gateway",
                   "simulators", "tests", "bench"}  # fmt: skip
    assert all((ROOT / name).is_dir() for name in top)


def test_the_demo_is_described_as_it_is() -> None:
    manifest = yaml.safe_load((ROOT / "gateway" / "demo" / "manifest.yaml").read_text("utf-8"))
    demo = section("What the demo starts")
    said = {
        noun: int(count)
        for count, noun in re.findall(
            r"^- (\d+) ([a-z ]+?)(?:[;:,]| \(| and| one)", demo, re.MULTILINE
        )
    }
    said.update(
        (noun, int(count)) for count, noun in re.findall(r"and (\d+) (subscriptions)", demo)
    )
    declared = {
        "agencies": len(manifest["agencies"]),
        "schema subjects": len(manifest["schemas"]),
        "connectors": len(manifest["connectors"]),
        "services": len(manifest["services"]),
        "consumers": len(manifest["consumers"]),
        "grants": len(manifest["grants"]),
        "topics": len(manifest["topics"]),
        "subscriptions": len(manifest["subscriptions"]),
    }
    assert said == declared
    rows = re.findall(r"^\| [^|]+ \| (?:http://127\.0\.0\.1)?:(\d+)", demo, re.MULTILINE)
    assert len(rows) == 1 + len(SIMULATORS)


def test_ci_runs_the_readme_test_command() -> None:
    assert "scripts/test     # set up, then" in section("Two commands")
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec scripts/test")
