"""audit.merkle against RFC 9162's published answers, pymerkle and a naive reference.

pymerkle 7 in its default ("security") mode hashes leaves as SHA-256(0x00 ‖ data) and nodes as
SHA-256(0x01 ‖ l ‖ r) and splits at the largest power of two below n: its roots and inclusion
paths (after the leaf it puts first, bottom-up) are RFC 9162's, and its own verifier checks ours.
Its consistency proofs use another decomposition (prior-state subtrees, not PROOF(m, D[n])),
so consistency proofs are checked against `ref_proof`, written below straight from the RFC's
recursive SUBPROOF definition, and against the roots pymerkle computes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pymerkle
import pytest
from pymerkle.core import _inclusion_path_layout

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    NodeSource,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_at,
    root_from_leaves,
    subtree_hash,
    tile_nodes,
    tile_updates,
    tile_width,
    verify_consistency,
    verify_inclusion,
)

# --- a naive reference, straight from RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 ----------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:  # leaves: leaf hashes
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True)


class MemoryTree:
    """All perfect nodes of a list of leaf hashes, level by level; counts node fetches."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.levels = [list(leaf_hashes)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [hash_children(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )
        self.fetches = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.fetches += 1
        return self.levels[level][index]

    def read_tile(self, level: int, index: int) -> bytes:
        entries = self.levels[8 * level] if 8 * level < len(self.levels) else []
        return b"".join(entries[256 * index : 256 * index + 256])


def leaves_for(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [hash_leaf(rng.randbytes(rng.randrange(0, 40))) for _ in range(n)]


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- published answers (RFC 6962 test tree, as in transparency-dev/merkle and CT) -------------

CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_D37E = CT_ROOTS[4]
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"


def ct_tree() -> MemoryTree:
    return MemoryTree([hash_leaf(bytes.fromhex(x)) for x in CT_LEAVES])


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size: int) -> None:
    tree = ct_tree()
    leaf_hashes = tree.levels[0][:size]
    assert root_from_leaves(leaf_hashes).hex() == CT_ROOTS[size]
    assert root_at(size, tree).hex() == CT_ROOTS[size]
    frontier = Frontier()
    frontier.extend(leaf_hashes)
    assert frontier.root().hex() == CT_ROOTS[size]


@pytest.mark.parametrize(
    ("index", "size", "path"),
    [(0, 8, [H_96A2, H_5F08, H_6B47]), (5, 8, [H_BC1A, H_CA85, H_D37E]), (0, 1, [])],
)
def test_published_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    tree = ct_tree()
    proof = inclusion_proof(index, size, tree)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(tree.levels[0][index], index, size, proof, root)


@pytest.mark.parametrize(
    ("m", "n", "path"),
    [
        (1, 1, []),
        (1, 8, [H_96A2, H_5F08, H_6B47]),
        (6, 8, [H_0EBC, H_CA85, H_D37E]),
        (2, 5, [H_5F08, H_BC1A]),
    ],
)
def test_published_consistency_proofs(m: int, n: int, path: list[str]) -> None:
    proof = consistency_proof(m, n, ct_tree())
    assert [p.hex() for p in proof] == path
    assert verify_consistency(m, n, bytes.fromhex(CT_ROOTS[m]), bytes.fromhex(CT_ROOTS[n]), proof)


def test_hashes() -> None:
    assert hash_leaf(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert (
        hash_children(b"l" * 32, b"r" * 32)
        == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == Frontier().root() == root_from_leaves([])


# --- against pymerkle and the reference, random sizes up to 10,000 -----------------------------


def pymerkle_tree(data: list[bytes]) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for item in data:
        tree.append_entry(item)
    return tree


def test_against_pymerkle() -> None:
    rng = random.Random(9162)
    data = [rng.randbytes(rng.randrange(0, 30)) for _ in range(10_000)]
    theirs = pymerkle_tree(data)
    leaf_hashes = [hash_leaf(d) for d in data]
    assert leaf_hashes[:50] == [theirs.get_leaf(i + 1) for i in range(50)]
    ours = MemoryTree(leaf_hashes)
    sizes = [1, 2, 3, 255, 256, 257, 4096, 10_000] + [rng.randrange(1, 10_001) for _ in range(30)]
    for size in sizes:
        root = theirs.get_root(size)
        assert root_at(size, ours) == root
        for index in {0, size - 1, rng.randrange(size), rng.randrange(size)}:
            proof = inclusion_proof(index, size, ours)
            their_proof = theirs.prove_inclusion(index + 1, size)
            assert proof == their_proof.path[1:]
            assert verify_inclusion(leaf_hashes[index], index, size, their_proof.path[1:], root)
            # ... and their verifier accepts ours
            rule, _ = _inclusion_path_layout(index + 1, size)
            mine = pymerkle.InclusionProof(
                "sha256", True, size, index + 1, rule, [leaf_hashes[index], *proof]
            )
            pymerkle.verify_inclusion(leaf_hashes[index], root, mine, index=index + 1, size=size)


def inclusion_shape(index: int, size: int) -> list[bool]:
    """What the verifier reads off (index, size): bottom-up, is the sibling on the left?"""
    if size == 1:
        return []
    k = _k(size)
    if index < k:
        return [*inclusion_shape(index, k), False]
    return [*inclusion_shape(index - k, size - k), True]


def consistency_shape(m: int, n: int, complete: bool = True) -> tuple[bool, list[bool]]:
    """What the verifier reads off (m, n): does the proof start from MTH(D[0:m]) itself (the old
    root is a node), and bottom-up, is each sibling on the left (inside the old tree)?"""
    if m == n:
        return complete, []
    k = _k(n)
    if m <= k:
        start, sides = consistency_shape(m, k, complete)
        return start, [*sides, False]
    start, sides = consistency_shape(m - k, n - k, False)
    return start, [*sides, True]


def check_inclusion_rejections(
    tree: MemoryTree, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    leaf = tree.levels[0][index]
    assert verify_inclusion(leaf, index, size, proof, root)
    assert not verify_inclusion(flip(leaf, 0), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, flip(root, 255))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], (i * 37) % 256)
        assert not verify_inclusion(leaf, index, size, bad, root)
    for other in (index - 1, index + 1, index ^ 1, index ^ 2, size, size + index, -1):
        if other != index:
            assert not verify_inclusion(leaf, other, size, proof, root)
    # A size the proof does not fit fails; a size of the same shape cannot be told apart (the
    # root, signed together with its size in a checkpoint, is what binds the size).
    for other in (size - 1, size + 1, size + 2, 2 * size, size // 2, size ^ 4, size ^ 64):
        if other != size:
            fits = index < other and inclusion_shape(index, other) == inclusion_shape(index, size)
            assert verify_inclusion(leaf, index, other, proof, root) == fits, other
    assert not verify_inclusion(leaf, index, size, [*proof, proof[-1] if proof else root], root)
    assert not verify_inclusion(leaf, index, size, [*proof, b"\x00" * 32], root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        assert not verify_inclusion(leaf, index, size, proof[1:], root)
        assert not verify_inclusion(leaf, index, size, [*proof[:-1], proof[-1][:31]], root)


def check_consistency_rejections(
    m: int, n: int, proof: list[bytes], root_m: bytes, root_n: bytes
) -> None:
    assert verify_consistency(m, n, root_m, root_n, proof)
    assert not verify_consistency(m, n, flip(root_m, 3), root_n, proof)
    assert not verify_consistency(m, n, root_m, flip(root_n, 3), proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], 200)
        assert not verify_consistency(m, n, root_m, root_n, bad)
    shape = consistency_shape(m, n)
    for mm, nn in ((m - 1, n), (m + 1, n), (m, n + 1), (m, n - 1), (m, 2 * n), (2 * m, 2 * n)):
        if (mm, nn) != (m, n):
            fits = 0 < mm <= nn and consistency_shape(mm, nn) == shape
            assert verify_consistency(mm, nn, root_m, root_n, proof) == fits, (mm, nn)
    assert not verify_consistency(m, n, root_m, root_n, [*proof, b"\x00" * 32])
    if proof:
        assert not verify_consistency(m, n, root_m, root_n, proof[:-1])
        assert not verify_consistency(m, n, root_m, root_n, proof[1:])
        assert not verify_consistency(m, n, root_m, root_n, [*proof[:-1], proof[-1][:31]])
    assert not verify_consistency(0, n, EMPTY_ROOT, root_n, proof)
    assert not verify_consistency(0, n, EMPTY_ROOT, root_n, [])
    if m != n:
        assert not verify_consistency(n, m, root_n, root_m, proof)


def test_random_inclusion_and_consistency() -> None:
    rng = random.Random(5)
    leaf_hashes = leaves_for(10_000, seed=5)
    tree = MemoryTree(leaf_hashes)
    for _ in range(40):
        n = rng.randrange(1, 10_001)
        root_n = ref_mth(leaf_hashes[:n])
        assert root_at(n, tree) == root_n
        index = rng.randrange(n)
        proof = inclusion_proof(index, n, tree)
        assert proof == ref_path(index, leaf_hashes[:n])
        check_inclusion_rejections(tree, index, n, proof, root_n)
        m = rng.choice([rng.randrange(1, n + 1), n, 1, 1 << (n.bit_length() - 1)])
        proof = consistency_proof(m, n, tree)
        assert proof == ref_proof(m, leaf_hashes[:n])
        check_consistency_rejections(m, n, proof, ref_mth(leaf_hashes[:m]), root_n)


def test_small_trees_exhaustively() -> None:
    leaf_hashes = leaves_for(40, seed=1)
    tree = MemoryTree(leaf_hashes)
    roots = [ref_mth(leaf_hashes[:n]) for n in range(41)]
    for n in range(1, 41):
        for index in range(n):
            proof = inclusion_proof(index, n, tree)
            assert proof == ref_path(index, leaf_hashes[:n])
            check_inclusion_rejections(tree, index, n, proof, roots[n])
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, tree)
            assert proof == ref_proof(m, leaf_hashes[:n])
            check_consistency_rejections(m, n, proof, roots[m], roots[n])


def test_equal_sizes_and_undefined_proofs() -> None:
    tree = MemoryTree(leaves_for(10))
    root = root_at(7, tree)
    assert consistency_proof(7, 7, tree) == []
    assert verify_consistency(7, 7, root, root, [])
    assert not verify_consistency(7, 7, root, root_at(8, tree), [])
    assert not verify_consistency(7, 7, root, root, [root])
    for bad in ((0, 5), (6, 5), (-1, 5)):
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(*bad, tree)
    for bad in ((5, 5), (-1, 5), (0, 0)):
        with pytest.raises(ValueError, match="is not in a tree"):
            inclusion_proof(*bad, tree)
    assert not verify_inclusion(tree.levels[0][0], 0, 0, [], root)


def test_subtree_hash_any_range() -> None:
    leaf_hashes = leaves_for(100, seed=3)
    tree = MemoryTree(leaf_hashes)
    rng = random.Random(3)
    for _ in range(200):
        start = rng.randrange(0, 100)
        end = rng.randrange(start, 101)
        assert subtree_hash(start, end, tree) == ref_mth(leaf_hashes[start:end])


# --- the frontier -------------------------------------------------------------------------------


def test_frontier_grows_like_the_tree() -> None:
    leaf_hashes = leaves_for(600, seed=7)
    tree = MemoryTree(leaf_hashes)
    frontier = Frontier()
    for size, leaf in enumerate(leaf_hashes, start=1):
        frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.hashes) == size.bit_count()
        if size % 37 == 0 or size & (size - 1) == 0:
            assert frontier.root() == ref_mth(leaf_hashes[:size])
            assert Frontier.from_nodes(size, tree) == frontier
            again = Frontier.from_bytes(frontier.to_bytes())
            assert again == frontier and again.root() == frontier.root()
    copy = frontier.copy()
    copy.extend(leaves_for(3, seed=8))
    assert frontier.size == 600 and copy.size == 603


def test_frontier_refuses_bad_state() -> None:
    with pytest.raises(ValueError, match="holds"):
        Frontier.from_bytes((3).to_bytes(8, "big") + b"\x00" * 32)
    with pytest.raises(ValueError, match="8-byte"):
        Frontier.from_bytes(b"\x00")
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"short")
    assert Frontier.from_bytes(Frontier().to_bytes()) == Frontier()


def test_frontier_append_is_logarithmic(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = 0
    real = hashlib.sha256

    def counting(data: bytes) -> hashlib._Hash:
        nonlocal hashes
        hashes += 1
        return real(data)

    monkeypatch.setattr("audit.merkle._sha256", counting)
    frontier = Frontier()
    leaf = hash_leaf(b"x")
    worst = 0
    for size in range(1, 5001):
        hashes = 0
        frontier.append(leaf)
        worst = max(worst, hashes)
        assert hashes == (size ^ (size - 1)).bit_length() - 1  # the trailing ones of size - 1
    assert worst == 12  # log2(4096)


# --- proof cost ---------------------------------------------------------------------------------


class CountingSource:
    """Node hashes made up from (level, index): enough to count fetches for a huge tree."""

    def __init__(self) -> None:
        self.fetches = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.fetches += 1
        return hashlib.sha256(f"{level}/{index}".encode()).digest()


@pytest.mark.parametrize("size", [10**7, 2**40 - 1, 2**40 + 12345])
def test_proofs_fetch_logarithmically_many_nodes(size: int) -> None:
    rng = random.Random(size)
    bound = 2 * size.bit_length()
    for _ in range(20):
        nodes = CountingSource()
        proof = inclusion_proof(rng.randrange(size), size, nodes)
        assert len(proof) <= size.bit_length()
        assert nodes.fetches <= bound
        nodes = CountingSource()
        consistency_proof(rng.randrange(1, size), size, nodes)
        assert nodes.fetches <= bound
        nodes = CountingSource()
        root_at(size, nodes)
        assert nodes.fetches == size.bit_count()


# --- tiles --------------------------------------------------------------------------------------


def expected_tiles(tree: MemoryTree, size: int) -> dict[tuple[int, int], bytes]:
    tiles = {}
    level = 0
    while (size >> (8 * level)) > 0:
        entries = size >> (8 * level)
        for index in range((entries + 255) // 256):
            width = tile_width(level, index, size)
            tiles[(level, index)] = b"".join(
                tree.levels[8 * level][256 * index : 256 * index + width]
            )
        level += 1
    return tiles


def grow_tiles(
    leaf_hashes: list[bytes],
    batches: list[int],
    check: Callable[[int, dict[tuple[int, int], bytes]], None],
) -> None:
    tiles: dict[tuple[int, int], bytes] = {}
    size = 0
    for batch in batches:
        old = size

        def read_tile(level: int, index: int, old: int = old) -> bytes:
            # only partial tiles of the old tree that gain entries are read
            assert 0 < tile_width(level, index, old) < 256
            return tiles[(level, index)]

        updates = tile_updates(old, leaf_hashes[old : old + batch], read_tile)
        size = old + batch
        changed = {key for key, value in updates.items() if tiles.get(key) != value}
        assert changed == set(updates), "every tile returned has new contents"
        tiles.update(updates)
        check(size, tiles)


def test_tiles_grown_in_random_batches_match_the_tree() -> None:
    rng = random.Random(8)
    total = 70_000  # past 65,536: three tile levels
    leaf_hashes = leaves_for(total, seed=8)
    tree = MemoryTree(leaf_hashes)
    batches = []
    left = total
    while left:
        batch = min(
            left, rng.choice([1, 2, 255, 256, 257, rng.randrange(1, 700), rng.randrange(1, 9000)])
        )
        batches.append(batch)
        left -= batch

    def check(size: int, tiles: dict[tuple[int, int], bytes]) -> None:
        if rng.random() < 0.85 and size != total:
            return
        assert tiles == expected_tiles(tree, size)
        nodes = tile_nodes(lambda level, index: tiles[(level, index)])
        assert root_at(size, nodes) == root_at(size, tree)
        for _ in range(5):
            index = rng.randrange(size)
            assert inclusion_proof(index, size, nodes) == inclusion_proof(index, size, tree)
            m = rng.randrange(1, size + 1)
            assert consistency_proof(m, size, nodes) == consistency_proof(m, size, tree)

    grow_tiles(leaf_hashes, batches, check)
    assert (2, 0) in expected_tiles(tree, total)


def test_tile_updates_one_leaf_at_a_time() -> None:
    leaf_hashes = leaves_for(600, seed=4)
    tree = MemoryTree(leaf_hashes)

    def check(size: int, tiles: dict[tuple[int, int], bytes]) -> None:
        assert tiles == expected_tiles(tree, size)

    grow_tiles(leaf_hashes, [1] * 600, check)


def test_tile_updates_refuses_a_tile_of_the_wrong_width() -> None:
    leaf_hashes = leaves_for(10)
    with pytest.raises(ValueError, match="expected 5"):
        tile_updates(5, leaf_hashes[5:], lambda level, index: b"".join(leaf_hashes[:4]))
    with pytest.raises(ValueError, match="32 bytes"):
        tile_updates(0, [b"short"], lambda level, index: b"")


def test_tile_reads_per_proof_at_ten_million() -> None:
    """An inclusion proof at 10^7 reads a handful of tiles (each cached for the proof)."""
    size = 10**7
    reads: list[tuple[int, int]] = []

    def read_tile(level: int, index: int) -> bytes:
        reads.append((level, index))
        width = tile_width(level, index, size)
        assert width > 0
        return hashlib.sha256(f"{level}/{index}".encode()).digest() * width

    rng = random.Random(7)
    worst = 0
    for _ in range(50):
        reads.clear()
        nodes = tile_nodes(read_tile)
        inclusion_proof(rng.randrange(size), size, nodes)
        assert len(reads) == len(set(reads))
        worst = max(worst, len(reads))
        reads.clear()
        nodes = tile_nodes(read_tile)
        consistency_proof(rng.randrange(1, size), size, nodes)
        worst = max(worst, len(reads))
    assert worst <= 10


def test_tile_nodes_rereads_a_tile_that_grew() -> None:
    leaf_hashes = leaves_for(300, seed=2)
    tree = MemoryTree(leaf_hashes)
    stored = {"size": 10}

    def read_tile(level: int, index: int) -> bytes:
        return tree.read_tile(level, index)[: 32 * tile_width(level, index, stored["size"])]

    nodes: NodeSource = tile_nodes(read_tile)
    assert root_at(10, nodes) == root_at(10, tree)
    stored["size"] = 300
    assert root_at(300, nodes) == root_at(300, tree)
    with pytest.raises(LookupError, match="holds"):
        nodes(9, 0)  # 512 leaves: not in the tree
