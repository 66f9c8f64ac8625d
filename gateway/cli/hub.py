"""The CLI's one way to talk to a running hub: its address and key (options and environment),
requests with a deadline, and the hub's problems printed the same way by every command.

Exit codes shared by every command that asks a hub: 1 the hub refused (its problem is printed,
with a pointer for each error), 2 a local problem (usage, a file, a hub that cannot be reached).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

REFUSED = 1
LOCAL = 2
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class LocalError(Exception):
    """A problem on this side: usage, a file that cannot be read, a hub that cannot be reached."""


class Refused(Exception):
    """The hub answered with a problem (RFC 9457)."""

    def __init__(self, answer: httpx.Response) -> None:
        answer.read()
        try:
            problem = answer.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = {"detail": answer.text[:200] or answer.reason_phrase}
        self.status = answer.status_code
        self.problem: dict[str, Any] = problem
        self.title = str(problem.get("title") or f"HTTP {answer.status_code}")
        self.detail = str(problem.get("detail") or self.title)
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = errors if isinstance(errors, list) else []
        super().__init__(f"{self.title} ({self.status}): {self.detail}")

    def print(self, out: TextIO, prefix: str = "error") -> None:
        """`error: Title (status): detail`, then each error as `  /pointer: message`."""
        out.write(f"{prefix}: {self}\n")
        for error in self.errors:
            if isinstance(error, dict):
                out.write(f"  {error.get('pointer') or '/'}: {error.get('message')}\n")


def add_options(parser: argparse.ArgumentParser, *, key: str) -> None:
    """--hub and --key, with the environment as their defaults; `key` says whose key it is."""
    parser.add_argument(
        "--hub",
        default=os.environ.get("LGSP_HUB_URL", DEFAULT_URL),
        metavar="URL",
        help=f"the hub's base URL (default: $LGSP_HUB_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--key", default=None, help=f"{key} (default: $LGSP_KEY)")


class Hub:
    """A client of one hub, with one key, for the length of a command."""

    def __init__(self, url: str, key: str | None, *, whose: str = "a management key") -> None:
        key = key or os.environ.get("LGSP_KEY")
        if not key:
            raise LocalError(f"give {whose} with --key or LGSP_KEY")
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=TIMEOUT)

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, whose: str = "a management key") -> Hub:
        return cls(args.hub, args.key, whose=whose)

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """The answer when its status is one of `ok`; Refused otherwise."""
        try:
            answer = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LocalError(f"cannot reach the hub at {self.url}: {exc}") from None
        if answer.status_code not in ok:
            raise Refused(answer)
        return answer

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A 200 answer read as it arrives; Refused otherwise."""
        try:
            with self._client.stream(method, path, **kwargs) as answer:
                if answer.status_code != 200:
                    raise Refused(answer)
                yield answer
        except httpx.HTTPError as exc:
            raise LocalError(f"cannot reach the hub at {self.url}: {exc}") from None
