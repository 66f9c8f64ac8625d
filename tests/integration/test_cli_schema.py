"""`lgsp schema check|diff|register` as an integrator's CI runs them: output and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.cli import main
from tests.conftest import RunningHub

V1 = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "MaHoSo": {"type": "string", "maxLength": 50},
        "TrangThaiHoSo": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["MaHoSo"],
}


def write(tmp_path: Path, name: str, schema: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(schema), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_check_register_and_diff(
    hub: RunningHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    unique: Callable[[str], str],
) -> None:
    subject = unique("ho-so.trang-thai")
    at = ["--hub", hub.url, "--key", hub.admin_key, "--subject", subject]
    v1 = write(tmp_path, "v1.json", V1)
    code, out = run(capsys, "schema", "register", v1, *at)
    assert code == 0
    assert f"{subject} version 1" in out

    # Narrowing a bound breaks BACKWARD: exit 1, the rule, the pointer and a proving document.
    narrower = json.loads(json.dumps(V1))
    narrower["properties"]["TrangThaiHoSo"]["maximum"] = 9
    v2 = write(tmp_path, "v2.json", narrower)
    code, out = run(capsys, "schema", "check", v2, *at)
    assert code == 1
    assert "INCOMPATIBLE" in out and "/properties/TrangThaiHoSo/maximum" in out
    example = json.loads(out.split("old accepts, new refuses): ", 1)[1].splitlines()[0])
    jsonschema.validate(example, V1)
    assert not jsonschema.Draft202012Validator(narrower).is_valid(example)

    # The same change is fine FORWARD.
    code, out = run(capsys, "schema", "check", v2, *at, "--level", "FORWARD")
    assert (code, out.split()[0]) == (0, "COMPATIBLE")

    code, out = run(capsys, "schema", "diff", v2, *at)
    assert code == 0 and "backward BREAKS" in out and "forward ok" in out

    code, out = run(capsys, "schema", "register", v2, *at)
    assert code == 1
    assert "refused: Incompatible schema (409): " in out and "INCOMPATIBLE" in out


def test_diff_of_two_files_needs_no_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wider = json.loads(json.dumps(V1))
    wider["properties"]["MaHoSo"]["maxLength"] = 100
    code, out = run(
        capsys, "schema", "diff", write(tmp_path, "a.json", V1), write(tmp_path, "b.json", wider)
    )
    assert code == 0
    assert "/properties/MaHoSo/maxLength" in out and "backward ok" in out


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "is not JSON"), (None, "cannot read")],
)
def test_local_problems_exit_2(
    hub: RunningHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    words: str,
) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out = run(
        capsys, "schema", "check", str(path), "--subject", "s", "--hub", hub.url,
        "--key", hub.admin_key,
    )  # fmt: skip
    assert code == 2 and words in out


def test_an_invalid_schema_is_a_refusal_with_its_pointer(
    hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.json", {"properties": {"a": {"type": "chuoi"}}})
    code, out = run(
        capsys, "schema", "check", path, "--subject", "s", "--hub", hub.url,
        "--key", hub.admin_key,
    )  # fmt: skip
    assert code == 1 and "/schema/properties/a/type" in out
