"""Dependencies point one way (DESIGN.md): each top-level package imports only itself and the
packages below it; the simulated systems stand apart; connectors never import FastAPI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# Lowest first: a package may import those before it, never those after.
LAYERS = ["schemas", "registry", "audit", "connectors", "messaging", "gateway"]


def imported(path: Path) -> set[str]:
    """Top-level packages a module imports, at any depth (imports inside functions count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_those_below_it(package: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    wrong = {
        str(path.relative_to(ROOT)): sorted((imported(path) & set(LAYERS)) - allowed)
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_only_the_demo_and_simulate_commands_load_the_simulated_systems() -> None:
    loading = sorted(
        str(path.relative_to(ROOT))
        for package in LAYERS
        for path in (ROOT / package).rglob("*.py")
        if "simulators" in imported(path)
    )
    assert loading == ["gateway/cli/__init__.py", "gateway/demo/__init__.py"]


def test_the_simulated_systems_use_nothing_of_the_hub() -> None:
    """They stand for other organisations' systems: they speak to the hub over HTTP only."""
    leaning = {
        str(path.relative_to(ROOT)): sorted(imported(path) & set(LAYERS))
        for path in (ROOT / "simulators").rglob("*.py")
    }
    assert {k: v for k, v in leaning.items() if v} == {}


def test_connectors_never_import_fastapi() -> None:
    assert [
        str(p.relative_to(ROOT))
        for p in (ROOT / "connectors").rglob("*.py")
        if {"fastapi", "starlette"} & imported(p)
    ] == []
