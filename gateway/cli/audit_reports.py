"""`lgsp audit subject` and `lgsp audit search`: the auditors' questions, asked of a running hub.

Both call the hub's audit API with an auditor's key (`--key` or LGSP_KEY) and stream what it
answers to a file (`-o`) or stdout, with a running count on stderr. Exit codes: 0 done, 1 the
hub refused (its problem is printed), 2 a local problem (usage, an unwritable file, no hub).

The identifier of `subject` may be given as `-` to read it from stdin, which keeps it out of
the shell's history and the process list.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import httpx

TIMEOUT = httpx.Timeout(300.0, connect=5.0)
PROGRESS_SECONDS = 0.5
PAGE = 1000  # accesses asked for a page of a JSON report
SUBJECTS = "/audit/subjects"

FILTERS = (
    # (option, query parameter, help)
    ("--consumer", "consumer", "the calling application"),
    ("--agency", "agency", "the calling agency's code"),
    ("--service", "service", "the service called"),
    ("--version", "version", "the service version (v1)"),
    ("--subject", "subject", "a data subject's identifier (hashed by the hub)"),
    ("--purpose", "purpose", "the purpose of use (X-Purpose)"),
    ("--status", "status", "the hub's HTTP status"),
    ("--status-class", "status_class", "2 for 2xx, 4 for 4xx, 5 for 5xx"),
    ("--request-id", "request_id", "X-Request-Id of the call"),
    ("--trace-id", "trace_id", "W3C trace id of the call"),
    ("--grant-id", "grant_id", "the grant that allowed it"),
    ("--kind", "kind", "exchange, publish, delivery, registry_change, audit"),
    ("--topic", "topic", "the topic (messaging)"),
    ("--actor", "actor", "who made a registry change"),
    ("--since", "since", "ISO 8601 time, inclusive"),
    ("--until", "until", "ISO 8601 time, exclusive"),
)


class Refused(Exception):
    """The hub answered with a problem."""


def add_commands(subparsers: Any) -> None:
    """Add `subject` and `search` to the `lgsp audit` group."""
    subject = subparsers.add_parser(
        "subject",
        help="every access to one person's data, with proofs (JSON, CSV or PDF)",
        description="A data-subject report: every access to the person's data, each with its "
        "inclusion proof against the hub's latest signed checkpoint. Exit codes: 0 done, "
        "1 the hub refused, 2 a local problem.",
    )
    subject.add_argument(
        "identifier", metavar="ID", help="12-digit personal ID or 9-digit ID card; - for stdin"
    )
    subject.add_argument("--format", choices=["json", "csv", "pdf"], default="json")
    subject.add_argument("--since", help="ISO 8601 time, inclusive")
    subject.add_argument("--until", help="ISO 8601 time, exclusive")
    subject.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    _hub_options(subject)
    subject.set_defaults(func=_subject)

    search = subparsers.add_parser(
        "search",
        help="exchange records matching filters, streamed as NDJSON or CSV",
        description="Every record matching all the filters, oldest first, streamed from the "
        "hub; or, with --count-by, how many per day, consumer, service, agency or status. "
        "Exit codes: 0 done, 1 the hub refused, 2 a local problem.",
    )
    for option, _, text in FILTERS:
        search.add_argument(option, help=text)
    search.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    search.add_argument(
        "--count-by",
        choices=["day", "consumer", "service", "agency", "status"],
        help="print counts instead of the records",
    )
    search.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    _hub_options(search)
    search.set_defaults(func=_search)


def _hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", default=os.environ.get("LGSP_HUB_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--key", default=None, help="an auditor's key (or LGSP_KEY)")


def _client(args: argparse.Namespace) -> httpx.Client:
    key = args.key or os.environ.get("LGSP_KEY")
    if not key:
        raise _Usage("give an auditor's key with --key or LGSP_KEY")
    return httpx.Client(base_url=args.hub.rstrip("/"), headers={"X-API-Key": key}, timeout=TIMEOUT)


class _Usage(Exception):
    pass


def _problem(answer: httpx.Response) -> Refused:
    answer.read()
    try:
        problem = answer.json()
        detail = problem.get("detail") or problem.get("title") or answer.reason_phrase
        errors = [f"{e.get('pointer')}: {e.get('message')}" for e in problem.get("errors") or []]
    except ValueError:
        detail, errors = answer.text[:200] or answer.reason_phrase, []
    return Refused("; ".join([f"{answer.status_code} {detail}", *errors]))


@contextlib.contextmanager
def _output(path: str, *, binary: bool) -> Iterator[IO[Any]]:
    if path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
        yield out


class _Progress:
    """A running count on stderr (rewritten in place on a terminal), then a summary line."""

    def __init__(self, command: str, unit: str) -> None:
        self.command, self.unit = command, unit
        self.count, self.bytes = 0, 0
        self._shown = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._cr = False

    def lines(self, chunk: bytes, *, csv: bool) -> None:
        """Count the records in a chunk of NDJSON (one a line) or CSV (CRLF ends a row; a
        newline inside a quoted cell is a bare LF), CRLFs split across chunks included."""
        if csv:
            count = chunk.count(b"\r\n") + (1 if self._cr and chunk[:1] == b"\n" else 0)
            self._cr = chunk[-1:] == b"\r"
        else:
            count = chunk.count(b"\n")
        self.add(count, len(chunk))

    def add(self, count: int, size: int) -> None:
        self.count += count
        self.bytes += size
        now = time.monotonic()
        if self._tty and now - self._shown >= PROGRESS_SECONDS:
            self._shown = now
            print(f"\r{self._line()}", end="", file=sys.stderr, flush=True)

    def _line(self) -> str:
        return f"lgsp audit {self.command}: {self.count} {self.unit}, {self.bytes / 1e6:.1f} MB"

    def done(self, suffix: str = "") -> None:
        print(("\r" if self._tty else "") + self._line() + suffix, file=sys.stderr)


def _run(command: str, args: argparse.Namespace, body: Any) -> int:
    try:
        code: int = body()
        return code
    except _Usage as exc:
        print(f"lgsp audit {command}: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"lgsp audit {command}: the hub refused: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"lgsp audit {command}: cannot reach {args.hub}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lgsp audit {command}: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------- subject


def _identifier(value: str) -> str:
    if value == "-":
        value = sys.stdin.readline()
    return value.strip()


def _subject(args: argparse.Namespace) -> int:
    return _run("subject", args, lambda: _subject_report(args))


def _subject_report(args: argparse.Namespace) -> int:
    identifier = _identifier(args.identifier)
    if not identifier:
        raise _Usage("no identifier given")
    if args.format == "pdf" and args.output == "-" and sys.stdout.isatty():
        raise _Usage("a PDF does not go to a terminal: give -o FILE")
    # POST, the identifier in the body: a URL would carry it into proxies' logs.
    query = {"identifier": identifier, "since": args.since, "until": args.until}
    progress = _Progress("subject", "accesses")
    with _client(args) as client:
        if args.format == "json":
            pending = _subject_json(client, query, args.output, progress)
        else:
            query["format"] = args.format
            with client.stream("POST", SUBJECTS, json=query) as answer:
                if answer.status_code != 200:
                    raise _problem(answer)
                with _output(args.output, binary=True) as out:
                    for chunk in answer.iter_bytes():
                        out.write(chunk)
                        if args.format == "csv":
                            progress.lines(chunk, csv=True)
                        else:
                            progress.add(0, len(chunk))
            if args.format == "csv":
                progress.count = max(progress.count - 1, 0)  # the header line
            pending = 0
    progress.done(f" (written to {args.output})" if args.output != "-" else "")
    if pending:
        print(
            f"lgsp audit subject: {pending} accesses are not in a signed checkpoint yet "
            "(proof null); ask again in a few seconds",
            file=sys.stderr,
        )
    return 0


def _subject_json(
    client: httpx.Client, query: dict[str, Any], output: str, progress: _Progress
) -> int:
    """Follow the report's pages and write them as one JSON document, an access at a time."""
    cursor: str | None = None
    pending = 0
    with _output(output, binary=False) as out:
        while True:
            answer = client.post(SUBJECTS, json={**query, "limit": PAGE, "cursor": cursor})
            if answer.status_code != 200:
                raise _problem(answer)
            page = answer.json()
            if cursor is None:
                head = {
                    k: v
                    for k, v in page.items()
                    if k not in ("accesses", "count", "pending", "next_cursor")
                }
                fields = [f" {json.dumps(k)}: {_compact(v)}" for k, v in head.items()]
                out.write("{\n" + ",\n".join(fields) + ',\n "accesses": [')
            for item in page["accesses"]:
                out.write(("\n  " if progress.count == 0 else ",\n  ") + _compact(item))
                progress.add(1, 0)
            progress.bytes += len(answer.content)
            pending += int(page["pending"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        out.write(f'\n ],\n "count": {progress.count},\n "pending": {pending}\n}}\n')
    return pending


def _compact(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- search


def _search(args: argparse.Namespace) -> int:
    return _run("search", args, lambda: _search_records(args))


def _search_records(args: argparse.Namespace) -> int:
    params = {
        name: getattr(args, option[2:].replace("-", "_"))
        for option, name, _ in FILTERS
        if getattr(args, option[2:].replace("-", "_")) is not None
    }
    with _client(args) as client:
        if args.count_by:
            answer = client.get("/audit/exchanges/counts", params={**params, "by": args.count_by})
            if answer.status_code != 200:
                raise _problem(answer)
            body = answer.json()
            with _output(args.output, binary=False) as out:
                width = max([len(str(c["key"])) for c in body["counts"]] + [len(args.count_by)])
                out.write(f"{args.count_by:<{width}}  count\n")
                for c in body["counts"]:
                    key = "-" if c["key"] is None else str(c["key"])
                    out.write(f"{key:<{width}}  {c['count']}\n")
                out.write(f"{'total':<{width}}  {body['total']}\n")
            return 0
        progress = _Progress("search", "records")
        query = {**params, "format": args.format}
        with client.stream("GET", "/audit/exchanges/export", params=query) as answer:
            if answer.status_code != 200:
                raise _problem(answer)
            with _output(args.output, binary=True) as out:
                for chunk in answer.iter_bytes():
                    out.write(chunk)
                    progress.lines(chunk, csv=args.format == "csv")
        if args.format == "csv":
            progress.count = max(progress.count - 1, 0)  # the header line
    progress.done(f" (written to {args.output})" if args.output != "-" else "")
    return 0
