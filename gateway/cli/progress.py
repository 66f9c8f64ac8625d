"""The CLI's one progress display: a running count on stderr while a long command works, and a
last line saying what it did.

On a terminal the line is rewritten in place, at most twice a second; into a pipe or a file a
line is written at most once a second, and only once the command has run for a second (a
quick command writes only its last line)."""

from __future__ import annotations

import sys
import time

SHOW_EVERY_TTY = 0.5
SHOW_EVERY_PIPE = 1.0


def size(count: int) -> str:
    """Bytes as people read them: 512 B, 14.2 KB, 3.1 MB."""
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1e3:.1f} KB"
    return f"{count / 1e6:.1f} MB"


class Progress:
    """How far `command` has come, counting `unit`s (and bytes, for downloads)."""

    def __init__(self, command: str, unit: str, *, quiet: bool = False) -> None:
        self.command, self.unit, self.quiet = command, unit, quiet
        self.count = 0
        self.total: int | None = None
        self.bytes = 0
        self._started = self._shown = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._written = False
        self._cr = False  # a CSV chunk ended in the middle of a CRLF

    def add(self, count: int, size: int = 0) -> None:
        """`count` more units done (and `size` more bytes received)."""
        self.count += count
        self.bytes += size
        self._show()

    def at(self, done: int, total: int) -> None:
        """`done` of `total` units done."""
        self.count, self.total = done, total
        self._show()

    def lines(self, chunk: bytes, *, csv: bool) -> None:
        """Count the records in a chunk of NDJSON (one a line) or CSV (CRLF ends a row; a
        newline inside a quoted cell is a bare LF), CRLFs split across chunks included."""
        if csv:
            count = chunk.count(b"\r\n") + (1 if self._cr and chunk[:1] == b"\n" else 0)
            self._cr = chunk[-1:] == b"\r"
        else:
            count = chunk.count(b"\n")
        self.add(count, len(chunk))

    def line(self) -> str:
        done = f"{self.count}/{self.total}" if self.total is not None else f"{self.count}"
        share = f" ({100 * self.count // self.total}%)" if self.total else ""
        received = f", {size(self.bytes)}" if self.bytes else ""
        return f"lgsp {self.command}: {done} {self.unit}{share}{received}"

    def _show(self) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._shown >= SHOW_EVERY_TTY:
                self._shown = now
                print(f"\r{self.line()}", end="", file=sys.stderr, flush=True)
                self._written = True
        elif now - self._started >= 1.0 and now - self._shown >= SHOW_EVERY_PIPE:
            self._shown = now
            print(self.line(), file=sys.stderr, flush=True)

    def done(self, suffix: str = "") -> None:
        """The last line: what was done (`suffix` adds where it went)."""
        if self.quiet:
            return
        print(("\r" if self._written else "") + self.line() + suffix, file=sys.stderr)
