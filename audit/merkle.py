"""The audit log's Merkle tree: RFC 9162 §2.1 hashing, proofs and their verification, and tiles.

The tree is the one of RFC 9162 (Certificate Transparency 2.0) §2.1, with SHA-256:

- a leaf hashes as SHA-256(0x00 ‖ data), an inner node as SHA-256(0x01 ‖ left ‖ right);
- MTH of n > 1 leaves splits at k, the largest power of two smaller than n;
- the root of the empty tree is SHA-256 of the empty string.

Proofs are computed from a `NodeSource`: a callable `(level, index) -> hash` of the *perfect*
subtree of height `level` covering leaves [index·2^level, (index+1)·2^level). Every subtree a
proof needs is either perfect or the right edge of the tree, which is the concatenation of at
most log2(n) perfect ones, so a proof costs O(log n) node fetches and no recomputation.

Storage follows C2SP tlog-tiles with tiles of height 8: tile (L, N) concatenates the hashes of the
perfect subtrees of height 8·L with indices 256·N … 256·N+255 (a partial tile holds the first
`width` of them). `tile_nodes` turns a tile reader into a `NodeSource`, and `tile_updates` says
which tiles a batch of new leaves rewrites.

Consistency edge cases (RFC 9162 §2.1.4.2 leaves them open): a proof from size 0 is not defined
and is rejected; a proof from m to m is the empty list and holds iff both roots are equal.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # entries in a full tile
TILE_BYTES = TILE_WIDTH * HASH_SIZE

EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeSource = Callable[[int, int], bytes]
"""`(level, index) -> bytes`: the hash of the perfect subtree of height `level` number `index`."""

TileReader = Callable[[int, int], bytes]
"""`(level, index) -> bytes`: the stored contents of tile (L, N), `width` × 32 bytes."""

_sha256 = hashlib.sha256


def hash_leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree given its 2^r leaves (or level-L entries), left to right."""
    level = list(hashes)
    while len(level) > 1:
        level = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (already hashed with `hash_leaf`)."""
    frontier = Frontier()
    frontier.extend(leaf_hashes)
    return frontier.root()


class Frontier:
    """The compact range [0, size): the roots of the perfect subtrees making up the tree.

    One hash per set bit of `size`, largest (leftmost) first. Appending is O(log n) worst case
    (O(1) amortised); the root costs popcount(size) − 1 hashes.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("negative size")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("hashes are 32 bytes")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        node = leaf_hash
        size = self.size
        hashes = self.hashes
        while size & 1:
            node = _sha256(b"\x01" + hashes.pop() + node).digest()
            size >>= 1
        hashes.append(node)
        self.size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf_hash in leaf_hashes:
            self.append(leaf_hash)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = _sha256(b"\x01" + left + node).digest()
        return node

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def to_bytes(self) -> bytes:
        """8-byte big-endian size, then the hashes."""
        return self.size.to_bytes(8, "big") + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        if len(data) < 8:
            raise ValueError("a frontier starts with an 8-byte size")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if len(body) != HASH_SIZE * size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    @classmethod
    def from_nodes(cls, size: int, nodes: NodeSource) -> Frontier:
        """The frontier at `size` of a stored tree (popcount(size) node fetches)."""
        hashes = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(nodes(level, start >> level))
                start += 1 << level
        return cls(size, hashes)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Frontier) and self.size == other.size and self.hashes == other.hashes
        )

    def __repr__(self) -> str:
        return f"Frontier(size={self.size})"


# --- proofs -----------------------------------------------------------------------------------


def subtree_hash(start: int, end: int, nodes: NodeSource) -> bytes:
    """MTH(D[start:end]) by the RFC 9162 split rule.

    Ranges that proofs use (start a multiple of 2^⌈log2(end − start)⌉) cost popcount(end − start)
    node fetches; any other range is split further, down to leaves if need be.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return nodes(n.bit_length() - 1, start // n)
    if n & (n - 1) == 0:  # a perfect shape that is not a node of the tree
        half = n >> 1
        return hash_children(
            subtree_hash(start, start + half, nodes), subtree_hash(start + half, end, nodes)
        )
    k = _split(n)
    return hash_children(subtree_hash(start, start + k, nodes), subtree_hash(start + k, end, nodes))


def root_at(size: int, nodes: NodeSource) -> bytes:
    """The root of the tree's first `size` leaves."""
    return subtree_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: NodeSource) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    siblings: list[bytes] = []  # root-down; reversed at the end
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            siblings.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            siblings.append(subtree_hash(start, start + k, nodes))
            start += k
    siblings.reverse()
    return siblings


def consistency_proof(m: int, n: int, nodes: NodeSource) -> list[bytes]:
    """PROOF(m, D[0:n]) (RFC 9162 §2.1.4.1); [] when m == n; m == 0 is not defined."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    proof: list[bytes] = []  # root-down; reversed at the end
    start, end = 0, n
    complete = True  # SUBPROOF's b: the subtree [start, start+m) is a node the verifier knows
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, nodes))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree_hash(start, end, nodes))
    proof.reverse()
    return proof


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------------


def _hashes_ok(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` place `leaf_hash` at `index` in the tree `root` of `size`?"""
    if not 0 <= index < size or not _hashes_ok(leaf_hash, root, *proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree `root_n` of size n an append-only extension of `root_m`?"""
    if not 0 < m <= n or not _hashes_ok(root_m, root_n, *proof):
        return False
    if m == n:
        return not proof and root_m == root_n
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


# --- tiles (C2SP tlog-tiles, height 8) ----------------------------------------------------------


def tile_nodes(read_tile: TileReader, *, cache_tiles: int = 64) -> NodeSource:
    """A `NodeSource` reading tiles: node (8L + r, i) hashes 2^r entries of a level-L tile.

    Tiles read are kept (up to `cache_tiles`, least recently used dropped): one proof touches a
    few tiles many times. Entries never change once written, so a cached tile is only re-read
    when it is too short for the entry asked (the tile was partial and has grown since).
    """
    cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def node(level: int, index: int) -> bytes:
        tile_level, r = divmod(level, TILE_HEIGHT)
        first = index << r  # the first level-L entry under the node
        tile_index, offset = divmod(first, TILE_WIDTH)
        key = (tile_level, tile_index)
        need = (offset + (1 << r)) * HASH_SIZE
        data = cache.get(key)
        if data is None or len(data) < need:
            data = read_tile(tile_level, tile_index)
            if len(data) < need:
                raise LookupError(
                    f"tile {tile_level}/{tile_index} holds {len(data) // HASH_SIZE} entries; "
                    f"node {level}/{index} needs {need // HASH_SIZE}"
                )
            cache[key] = data
            if len(cache) > cache_tiles:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        start = offset * HASH_SIZE
        if r == 0:
            return data[start : start + HASH_SIZE]
        return _perfect_root(
            [data[i : i + HASH_SIZE] for i in range(start, start + (HASH_SIZE << r), HASH_SIZE)]
        )

    return node


def tile_width(level: int, index: int, size: int) -> int:
    """Entries of tile (level, index) in a tree of `size` leaves (0 to 256)."""
    entries = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, entries - index * TILE_WIDTH))


def tile_updates(
    old_size: int, new_leaf_hashes: Sequence[bytes], read_tile: TileReader
) -> dict[tuple[int, int], bytes]:
    """The new full contents of every tile that appending `new_leaf_hashes` at `old_size` changes.

    Level 0 takes the leaf hashes; an entry of level L ≥ 1 appears once the height-8L subtree under
    it is complete, i.e. once the level-(L−1) tile below it fills up. `read_tile` is asked only for
    the partial tiles of the tree at `old_size` that gain entries, and must hold exactly
    `tile_width(L, N, old_size)` entries.
    """
    if old_size < 0:
        raise ValueError("negative size")
    if any(len(h) != HASH_SIZE for h in new_leaf_hashes):
        raise ValueError("leaf hashes are 32 bytes")
    updates: dict[tuple[int, int], bytes] = {}
    new_entries: list[bytes] = list(new_leaf_hashes)
    level = 0
    while new_entries:
        shift = TILE_HEIGHT * level
        old_count = old_size >> shift  # entries of this level at old_size
        first_tile, offset = divmod(old_count, TILE_WIDTH)
        head = b""
        if offset:
            head = read_tile(level, first_tile)
            if len(head) != offset * HASH_SIZE:
                raise ValueError(
                    f"tile {level}/{first_tile} holds {len(head) // HASH_SIZE} entries, "
                    f"expected {offset} at tree size {old_size}"
                )
        data = head + b"".join(new_entries)
        full_tiles: list[int] = []
        for i in range(0, len(data), TILE_BYTES):
            tile_index = first_tile + i // TILE_BYTES
            chunk = data[i : i + TILE_BYTES]
            updates[(level, tile_index)] = chunk
            if len(chunk) == TILE_BYTES:
                full_tiles.append(tile_index)
        # Each tile that filled up is one new entry of the next level (none was full before: the
        # first one held `offset` < 256 entries, the others none).
        new_entries = [
            _perfect_root(
                [updates[(level, n)][j : j + HASH_SIZE] for j in range(0, TILE_BYTES, HASH_SIZE)]
            )
            for n in full_tiles
        ]
        level += 1
    return updates
