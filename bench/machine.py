"""A one-line description of the machine and the tools, for the head of a result."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path


def _first(pattern: str, path: str, default: str = "?") -> str:
    try:
        found = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return default
    return found.group(1).strip() if found else default


def _version(argv: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "missing"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "?"


def cores() -> int:
    return len(os.sched_getaffinity(0))


def describe() -> str:
    cpu = _first(r"^model name\s*:\s*(.+)$", "/proc/cpuinfo")
    mem_kb = _first(r"^MemTotal:\s*(\d+)", "/proc/meminfo", "0")
    ram = f"{int(mem_kb) / 1024 / 1024:.1f} GiB"
    nginx = _version(["nginx", "-v"], r"nginx/(\S+)")
    wrk = _version(["wrk", "-v"], r"wrk (\S+)")
    return (
        f"{cpu}, {cores()} cores, {ram} RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, nginx {nginx}, wrk {wrk}"
    )
