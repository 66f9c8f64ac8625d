"""`lgsp serve` with a sampling profiler in each worker, for `python -m bench.messaging --profile`.

Run as `python -m bench.profiled_hub --port N --workers W --out DIR`: the workers of
`gateway.runtime.serve` (same sockets, same uvicorn configuration), each with a thread that looks at
every thread's Python stack `HZ` times a second (`sys._current_frames()`, the poor man's
py-spy). A thread found waiting (the event loop polling, a pool thread waiting for work, a lock)
counts as idle; the others show where the time goes, by the function on top of the stack (self)
and by every function on the stack (inclusive). Each worker also notes the CPU time of its
threads (/proc), the event loop's apart. SIGUSR1 moves the samples on to the next phase of
PHASES (the benchmark sends it as each measured run starts and ends), so each run is profiled
apart from setup and warm-up. At SIGTERM each worker writes `DIR/worker-<pid>.json`.

A sample costs the hub a few hundred µs with the GIL held, so the hub runs a few percent slower;
what it says is where the time goes, not how fast the hub goes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

HZ = 250
PHASES = ("setup", "flood", "between", "paced", "after")
_TICKS = os.sysconf("SC_CLK_TCK")
# A thread whose top frame is one of these is waiting, not working.
_IDLE = {
    ("runners.py", "run"),  # uvloop's run_until_complete: polling for events
    ("base_events.py", "run_forever"),
    ("thread.py", "_worker"),  # a pool thread waiting for work
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("profiled_hub.py", "_sample"),
}


ROOT = str(Path(__file__).resolve().parent.parent) + os.sep
STDLIB = os.path.dirname(os.__file__) + os.sep
# The hub's own code: the project's packages, not the libraries in its virtualenv.
OWN = tuple(f"{name}/" for name in ("schemas", "registry", "audit", "messaging", "connectors",
                                    "gateway"))  # fmt: skip


def _where(frame: FrameType) -> str:
    """`package/module.py:function`, paths shortened to the project, site-packages or stdlib."""
    code = frame.f_code
    path = code.co_filename
    if "site-packages" + os.sep in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    elif path.startswith(ROOT):
        path = path[len(ROOT) :]
    elif path.startswith(STDLIB):
        path = path[len(STDLIB) :]
    return f"{path}:{code.co_name}"


def _idle(frame: FrameType) -> bool:
    return (Path(frame.f_code.co_filename).name, frame.f_code.co_name) in _IDLE


@dataclass
class Samples:
    """What one phase saw."""

    samples: int = 0
    own_cpu: float = 0.0  # the sampler thread's CPU time when the phase's last sample was taken
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    wall: float = 0.0
    busy: collections.Counter[str] = field(default_factory=collections.Counter)
    self_: collections.Counter[str] = field(default_factory=collections.Counter)
    inclusive: collections.Counter[str] = field(default_factory=collections.Counter)
    stacks: collections.Counter[str] = field(default_factory=collections.Counter)

    def report(self, before: float) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "sampler_cpu": max(self.own_cpu - before, 0.0),
            "wall": self.wall,
            "cpu": self.cpu,
            "busy": dict(self.busy),
            "self": dict(self.self_.most_common(60)),
            "inclusive": dict(self.inclusive.most_common(120)),
            "stacks": dict(self.stacks.most_common(60)),
        }


class Sampler:
    def __init__(self) -> None:
        self.phase = 0
        self.phases = [Samples(cpu_start=_thread_cpu())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="sampler", daemon=True)
        self.main_ident = threading.main_thread().ident

    def start(self) -> None:
        self._thread.start()

    def next_phase(self) -> None:
        """The next phase starts (called from a signal handler, in the main thread)."""
        if self.phase + 1 < len(PHASES):
            self._close()
            self.phase += 1
            self.phases.append(Samples(cpu_start=_thread_cpu()))

    def _close(self) -> None:
        current = self.phases[self.phase]
        now = _thread_cpu()
        current.cpu = {kind: now[kind] - current.cpu_start.get(kind, 0.0) for kind in now}
        current.wall = time.monotonic() - current.started

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._close()
        reports, before = {}, 0.0
        for name, phase in zip(PHASES, self.phases, strict=False):
            reports[name] = phase.report(before)
            before = phase.own_cpu or before
        return reports

    def _sample(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(1 / HZ):
            phase = self.phases[-1]
            phase.samples += 1
            phase.own_cpu = time.thread_time()  # the sampler's own CPU time, so far
            for ident, frame in sys._current_frames().items():
                if ident == me or _idle(frame):
                    continue
                kind = "event loop" if ident == self.main_ident else "threads"
                phase.busy[kind] += 1
                stack = list(_walk(frame))
                phase.self_[f"[{kind}] {stack[0]}"] += 1
                for name in set(stack):
                    phase.inclusive[f"[{kind}] {name}"] += 1
                # The hub's own frames, innermost first, three deep: the hub's call that matters
                # (a library's or the stdlib's frames between them are left out).
                own = [where for where in stack if where.startswith(OWN)]
                phase.stacks[f"[{kind}] " + " < ".join(own[:3] or stack[:3])] += 1


def _walk(frame: FrameType | None) -> Iterable[str]:
    while frame is not None:
        yield _where(frame)
        frame = frame.f_back


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads: the main one (the event loop) and the rest."""
    main = rest = 0.0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / _TICKS
            if int(task.name) == os.getpid():
                main += seconds
            else:
                rest += seconds
    return {"event loop": main, "threads": rest}


def _profiled_worker(host: str, port: int, out: str) -> None:
    from gateway.runtime import serve

    # uvicorn restores the handlers it found and raises the signal again once it has stopped:
    # found as a no-op, the worker goes on to write its profile instead of dying.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    sampler = Sampler()
    signal.signal(signal.SIGUSR1, lambda signum, frame: sampler.next_phase())
    sampler.start()
    try:
        serve._run(host, port, "warning", True)
    finally:
        report = {"hz": HZ, "phases": sampler.stop()}
        path = Path(out) / f"worker-{os.getpid()}.json"
        path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_profiled_worker, args=(args.host, args.port, args.out))
        for _ in range(args.workers)
    ]
    for process in processes:
        process.start()
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # meant for the workers (sent to the group)
    while not stopping and all(p.is_alive() for p in processes):
        time.sleep(0.2)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


def summary(out: Path, *, phases: tuple[str, ...] = ("flood", "paced"), top: int = 30) -> str:
    """Every worker's samples in the measured phases: busy share and CPU per thread kind, then
    the top functions."""
    lines = []
    for path in sorted(out.glob("worker-*.json")):
        report = orjson.loads(path.read_bytes())
        for name in phases:
            phase = report["phases"].get(name)
            if phase is None:
                continue
            samples = max(phase["samples"], 1)
            seconds = max(phase["wall"], 1e-3)
            lines.append(f"## {path.stem}, {name}: {samples:,} samples in {seconds:.1f} s")
            cpu = ", ".join(
                f"{kind} {cpu / seconds:.2f} cores" for kind, cpu in phase["cpu"].items()
            )
            lines.append(
                f"CPU: {cpu} (of which the sampler: {phase['sampler_cpu'] / seconds:.2f} cores)"
            )
            busy = ", ".join(
                f"{kind} {100 * n / samples:.0f} %" for kind, n in sorted(phase["busy"].items())
            )
            lines.append(
                f"not idle (share of samples; on the event loop this includes waiting for the "
                f"GIL, in threads also waiting inside SQLite or a socket): {busy}"
            )
            for title, key in (
                ("self (the function on top of the stack)", "self"),
                ("inclusive (anywhere on the stack)", "inclusive"),
                ("the hub's own frames on top, innermost first", "stacks"),
            ):
                lines += ["", f"### {title}, % of samples", ""]
                for where, n in list(phase[key].items())[:top]:
                    lines.append(f"{100 * n / samples:6.1f} %  {where}")
            lines.append("")
    return "\n".join(lines) if lines else "no profile was written"


if __name__ == "__main__":
    main()
