"""wrk as the load generator: one POST with a fixed body and headers, its report parsed."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}  # to milliseconds


@dataclass(frozen=True)
class Load:
    """What wrk measured in one run."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int  # connect + read + write + timeout
    cpu_seconds: float  # wrk's own CPU time
    output: str

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def script(path: Path, *, body: bytes, headers: dict[str, str]) -> Path:
    """A Lua script making every request a POST of `body` with `headers`."""
    marker = "=" * 8
    assert f"]{marker}]" not in body.decode()
    lines = ['wrk.method = "POST"', f"wrk.body = [{marker}[{body.decode()}]{marker}]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str, *, cpu_seconds: float = 0.0) -> Load:
    """Read wrk's `--latency` report."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not (done and rps and p50 and p99):
        raise RuntimeError(f"cannot read wrk's report:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Load(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2), done.group(3)) / 1e3,
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1), p50.group(2)),
        p99_ms=_ms(p99.group(1), p99.group(2)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        cpu_seconds=cpu_seconds,
        output=output,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(url: str, lua: Path, *, connections: int, threads: int, seconds: float) -> Load:
    """One wrk run against `url`; wrk's CPU time is read from the rusage of reaped children."""
    binary = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    argv += ["--timeout", "10s", "-s", str(lua), url]
    before = _children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    cpu = _children_cpu() - before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse(done.stdout, cpu_seconds=cpu)
