"""The Merkle tree over the generated records, built by the hub's own integrator.

`AuditLog.integrate()` (audit/log.py) is called pass after pass, as a hub process's loop calls
it, until every generated record is a leaf: the tiles, the tree state and the signed
checkpoints it leaves are exactly what the proof API reads. The last pass signs a checkpoint
covering the whole tree. How long it took, in leaves/s, is kept with the data
(`bench_audit_meta`), so the tree is built once per dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import audit_data

ORIGIN = "bench.lgsp.example/audit"


def build(url: str, records: int, *, say: Callable[[str], None]) -> tuple[float, int]:
    """(seconds, leaves) of building the tree, now or when it was first built."""
    meta = audit_data.read_meta(url)
    if meta.get("tree") == "yes":
        return float(meta["tree_seconds"]), int(meta["tree_leaves"])
    from audit.log import AuditLog
    from audit.notes import Signer
    from gateway.db import make_engine

    engine = make_engine(url, pool_size=2)
    log = AuditLog(engine, signers=[Signer.generate(ORIGIN)], origin=ORIGIN)
    started = time.perf_counter()
    leaves, reported = 0, 0.0
    try:
        while True:
            done = log.integrate()
            leaves += done.leaves
            now = time.perf_counter()
            if now - reported > 15:
                reported = now
                say(f"  tree: {leaves:,} leaves, {leaves / (now - started):,.0f} leaves/s")
            if done.leaves == 0 and leaves >= records:
                break
            if done.leaves == 0:
                raise RuntimeError(f"the integrator stopped at {leaves:,} of {records:,} leaves")
        log.integrate(force_checkpoint=True)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    audit_data.write_meta(
        url, {"tree": "yes", "tree_seconds": f"{seconds:.3f}", "tree_leaves": str(leaves)}
    )
    say(f"  tree of {leaves:,} leaves built in {seconds:,.0f} s ({leaves / seconds:,.0f} leaves/s)")
    return seconds, leaves
