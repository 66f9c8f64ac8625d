"""`verify_bundle` on bundles written here from the documented format alone (no database).

A second writer of the format keeps the verifier honest about what the README promises, and
reaches the edges an export from a small log does not: size-1 trees, the last leaf, many sizes.
"""

from __future__ import annotations

import base64
import json
import random
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from audit import merkle
from audit.bundle import FORMAT, Outcome, verify_bundle
from audit.canonical import canonical_json
from audit.notes import Checkpoint, Signer, sign_note

ORIGIN = "unit.lgsp.example/audit"
SIGNER = Signer.generate(ORIGIN)
OTHER = Signer.generate("witness.example")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def line(i: int) -> bytes:
    return canonical_json({"id": f"rec-{i:06d}", "seq": i + 1, "kind": "exchange", "v": 1,
                           "details": {"ghi_chú": "Lò Văn Minh", "n": i}})  # fmt: skip


class Tree:
    def __init__(self, size: int) -> None:
        self.leaves = [merkle.hash_leaf(line(i)) for i in range(size)]

        @cache
        def node(level: int, index: int) -> bytes:
            if level == 0:
                return self.leaves[index]
            return merkle.hash_children(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))

        self.nodes = node

    def note(self, size: int, signers: Sequence[Signer] = (SIGNER,)) -> str:
        moment = datetime(2026, 11, 24, 3, 0, size % 60, tzinfo=UTC)
        body = Checkpoint(ORIGIN, size, merkle.root_at(size, self.nodes), moment).body()
        return sign_note(body, signers)


def build(
    path: Path,
    size: int,
    picked: Sequence[int],
    *,
    earlier: Sequence[int] = (),
    signers: Sequence[Signer] = (SIGNER,),
    keys: Sequence[str] | None = None,
    edit: Any = None,
) -> Path:
    tree = Tree(size)
    records = b"".join(line(i) + b"\n" for i in picked)
    proofs = b"".join(
        json.dumps({"line": n, "record_id": f"rec-{i:06d}", "seq": i + 1, "leaf_index": i,
                    "leaf_hash": b64(tree.leaves[i]),
                    "proof": [b64(h) for h in merkle.inclusion_proof(i, size, tree.nodes)]}
                   ).encode() + b"\n"
        for n, i in enumerate(picked, 1)
    )  # fmt: skip
    note = tree.note(size, signers)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "origin": ORIGIN,
        "created_at": "2026-11-24T03:00:00Z",
        "filter": {},
        "checkpoint": {"size": size, "root": b64(merkle.root_at(size, tree.nodes))},
        "counts": {"records": len(picked), "proofs": len(picked), "checkpoints": len(earlier)},
    }
    members = {
        "records.ndjson": records,
        "proofs.ndjson": proofs,
        "checkpoint.txt": note.encode(),
        "keys.txt": "".join(k + "\n" for k in (keys or [s.vkey for s in signers])).encode(),
        "README.txt": b"",
    }
    consistency = []
    for m in earlier:
        members[f"checkpoints/{m}.txt"] = tree.note(m).encode()
        proof = merkle.consistency_proof(m, size, tree.nodes)
        consistency.append(json.dumps({"from": m, "to": size, "proof": [b64(h) for h in proof]}))
    if earlier:
        members["checkpoints/consistency.ndjson"] = "".join(c + "\n" for c in consistency).encode()
    if edit is not None:
        edit(manifest, members)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def test_a_bundle_written_from_the_format_alone_verifies(tmp_path: Path) -> None:
    result = verify_bundle(build(tmp_path / "b.zip", 300, [0, 5, 255, 256, 299], earlier=[1, 256]))

    assert result.ok, result.message
    assert (result.records, result.checkpoint_size, result.earlier) == (5, 300, 2)
    assert result.origin == ORIGIN and result.key_ids == [SIGNER.key_id]


@pytest.mark.parametrize("seed", range(8))
def test_random_sizes_and_indices(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(1, 1500)
    picked = sorted(rng.sample(range(size), min(size, 20)))
    earlier = sorted({rng.randint(1, size) for _ in range(3)})

    result = verify_bundle(build(tmp_path / "b.zip", size, picked, earlier=earlier))

    assert result.ok, (size, picked, earlier, result.message)


def test_a_tree_of_one_leaf(tmp_path: Path) -> None:
    assert verify_bundle(build(tmp_path / "b.zip", 1, [0], earlier=[1])).ok


def test_only_trusted_signatures_count(tmp_path: Path) -> None:
    path = build(tmp_path / "b.zip", 10, [3], signers=[OTHER, SIGNER])

    pinned = verify_bundle(path, trusted_vkeys=[SIGNER.vkey])
    assert pinned.ok and pinned.key_ids == [SIGNER.key_id]
    assert verify_bundle(path, trusted_vkeys=[Signer.generate(ORIGIN).vkey]).exit_code == 3


def _leaf_index(value: object) -> Any:
    def edit(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
        proof = json.loads(members["proofs.ndjson"])
        proof["leaf_index"] = value
        members["proofs.ndjson"] = json.dumps(proof).encode() + b"\n"

    return edit


def _member(name: str, data: bytes) -> Any:
    def edit(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
        members[name] = data

    return edit


def _manifest(**changes: Any) -> Any:
    def edit(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
        manifest.update(changes)

    return edit


@pytest.mark.parametrize(
    ("edit", "outcome"),
    [
        pytest.param(_leaf_index(4), Outcome.INCLUSION, id="another leaf index"),
        pytest.param(_leaf_index(10), Outcome.INCLUSION, id="an index past the tree"),
        pytest.param(_leaf_index(-1), Outcome.INCLUSION, id="a negative index"),
        pytest.param(_leaf_index("3"), Outcome.MALFORMED, id="an index that is text"),
        pytest.param(_member("records.ndjson", line(3)), Outcome.MALFORMED, id="no last newline"),
        pytest.param(_member("keys.txt", b""), Outcome.SIGNATURE, id="no key"),
        pytest.param(_member("checkpoint.txt", b"nonsense"), Outcome.MALFORMED, id="no note"),
        pytest.param(_manifest(origin="other.example/log"), Outcome.MISMATCH, id="origin"),
        pytest.param(
            _manifest(counts={"records": 1, "proofs": 1, "checkpoints": 2}),
            Outcome.MISMATCH,
            id="earlier count",
        ),
        pytest.param(_manifest(checkpoint="373"), Outcome.MALFORMED, id="manifest shape"),
    ],
)
def test_each_failure_class(tmp_path: Path, edit: Any, outcome: Outcome) -> None:
    result = verify_bundle(build(tmp_path / "b.zip", 10, [3], edit=edit))

    assert result.outcome is outcome, result.message
    assert result.exit_code == int(outcome) != 0


def test_an_earlier_checkpoint_from_another_tree_is_inconsistent(tmp_path: Path) -> None:
    def fork(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
        other = Tree(8)
        other.leaves[2] = merkle.hash_leaf(b"another record")
        members["checkpoints/8.txt"] = other.note(8).encode()

    result = verify_bundle(build(tmp_path / "b.zip", 20, [3], earlier=[8], edit=fork))

    assert result.outcome is Outcome.CONSISTENCY, result.message


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(b"PK\x03\x04 but nothing else")

    assert verify_bundle(path).outcome is Outcome.MALFORMED
