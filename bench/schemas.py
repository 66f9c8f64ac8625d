"""What contracts cost: validating a 1 KB document, and checking a 100-version subject.

Both are measured in this process, each beside its baseline measured in the same run:
- validation with the data plane's compiled validator (jsonschema-rs, formats asserted, the
  hub's Vietnamese formats included) against python-jsonschema on the same schema and document;
- a FULL_TRANSITIVE check (ROBUST policy: the subject grows by optional properties) of a
  candidate against 100 registered versions, every pair checked both ways, against a FULL check
  of the latest version only.

Usage: python -m bench.schemas [--rounds N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import payloads
from schemas.compatibility import Level, Policy, check
from schemas.validation import compile_validator, reference_validator

GOAL_TRANSITIVE_MS = 200.0
VERSIONS = 100


def _per_call(fn: Callable[[], object], *, seconds: float = 1.0) -> float:
    """Median seconds per call over batches filling about `seconds`."""
    fn()
    batch, spent = 1, 0.0
    while spent < 0.05:
        batch *= 2
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        spent = time.perf_counter() - start
    rounds = max(3, int(seconds / spent))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def _versions() -> list[tuple[int, dict[str, Any]]]:
    """A subject that grew by one optional property per version (FULL-compatible each time)."""
    base = copy.deepcopy(payloads.RESPONSE_SCHEMA)
    base["additionalProperties"] = False
    out = []
    for number in range(1, VERSIONS + 1):
        schema = copy.deepcopy(base)
        for extra in range(number):
            schema["properties"][f"truong_bo_sung_{extra}"] = {"type": "string", "maxLength": 50}
        out.append((number, schema))
    return out


def _time(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schemas", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="runs of the transitive check")
    args = parser.parse_args(argv)

    document = payloads.CITIZEN
    schema = copy.deepcopy(payloads.RESPONSE_SCHEMA)  # with the hub's formats
    schema["properties"]["so_dinh_danh"] = {"type": "string", "format": "vn-personal-id"}
    schema["properties"]["noi_thuong_tru"]["properties"]["ma_xa"]["format"] = "vn-commune-code"
    size = len(payloads.CITIZEN_BYTES)
    hub = compile_validator(schema)
    reference = reference_validator(schema)
    assert hub.is_valid(document)
    assert reference.is_valid(document)
    valid_hub = _per_call(lambda: hub.is_valid(document))
    valid_ref = _per_call(lambda: reference.is_valid(document))
    broken = copy.deepcopy(document)
    broken["so_dinh_danh"] = "12"
    errors_hub = _per_call(lambda: list(hub.iter_errors(broken)))
    errors_ref = _per_call(lambda: list(reference.iter_errors(broken)))

    versions = _versions()
    candidate = copy.deepcopy(versions[-1][1])
    candidate["properties"]["truong_moi"] = {"type": "string"}
    robust = Policy.ROBUST
    verdict = check(candidate, versions, level=Level.FULL_TRANSITIVE, policy=robust)
    assert verdict.is_compatible, verdict.to_json()
    transitive = _time(
        lambda: check(candidate, versions, level=Level.FULL_TRANSITIVE, policy=robust),
        args.rounds,
    )
    latest = _time(lambda: check(candidate, versions, level=Level.FULL, policy=robust), args.rounds)

    print(f"## Contracts ({size} byte document, {VERSIONS}-version subject)\n")
    print("| measure | hub | baseline | baseline is |")
    print("|---|---:|---:|---|")
    print(f"| validate a valid document | {_fmt(valid_hub)} | {_fmt(valid_ref)} | "
          "python-jsonschema, same schema |")  # fmt: skip
    print(f"| validate an invalid one, all errors | {_fmt(errors_hub)} | {_fmt(errors_ref)} | "
          "python-jsonschema, same schema |")  # fmt: skip
    print(f"| FULL_TRANSITIVE check, {VERSIONS} versions | {_fmt(transitive)} | {_fmt(latest)} | "
          "FULL against the latest only |")  # fmt: skip
    met = "met" if transitive * 1e3 < GOAL_TRANSITIVE_MS else "not met"
    print(f"\nGoal: a transitive check of a {VERSIONS}-version subject under "
          f"{GOAL_TRANSITIVE_MS:.0f} ms: {met}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
