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
import sys
from collections.abc import Iterator
from typing import IO, Any

from gateway.cli import hub as hubs
from gateway.cli.hub import Hub, LocalError, Refused
from gateway.cli.progress import Progress

REPORT_TIMEOUT = 300.0  # a long report or export streams for minutes
AUDITOR = "an auditor's key"
ACCESSES_HEADER = "x-lgsp-accesses"  # how many accesses a PDF report lists
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
    hubs.add_options(subject, key="an auditor's key")
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
    hubs.add_options(search, key="an auditor's key")
    search.set_defaults(func=_search)


@contextlib.contextmanager
def _output(path: str, *, binary: bool) -> Iterator[IO[Any]]:
    if path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
        yield out


def _run(command: str, body: Any) -> int:
    try:
        code: int = body()
        return code
    except LocalError as exc:
        print(f"lgsp audit {command}: {exc}", file=sys.stderr)
        return hubs.LOCAL
    except Refused as exc:
        exc.print(sys.stderr, prefix=f"lgsp audit {command}: the hub refused")
        return hubs.REFUSED
    except OSError as exc:
        print(f"lgsp audit {command}: {exc}", file=sys.stderr)
        return hubs.LOCAL


# ---------------------------------------------------------------- subject


def _identifier(value: str) -> str:
    if value == "-":
        value = sys.stdin.readline()
    return value.strip()


def _subject(args: argparse.Namespace) -> int:
    return _run("subject", lambda: _subject_report(args))


def _subject_report(args: argparse.Namespace) -> int:
    identifier = _identifier(args.identifier)
    if not identifier:
        raise LocalError("no identifier given")
    if args.format == "pdf" and args.output == "-" and sys.stdout.isatty():
        raise LocalError("a PDF does not go to a terminal: give -o FILE")
    # POST, the identifier in the body: a URL would carry it into proxies' logs.
    query = {"identifier": identifier, "since": args.since, "until": args.until}
    progress = Progress("audit subject", "accesses")
    with Hub.from_args(args, whose=AUDITOR) as hub:
        if args.format == "json":
            pending = _subject_json(hub, query, args.output, progress)
        else:
            query["format"] = args.format
            with hub.stream("POST", SUBJECTS, json=query, timeout=REPORT_TIMEOUT) as answer:
                with _output(args.output, binary=True) as out:
                    for chunk in answer.iter_bytes():
                        out.write(chunk)
                        if args.format == "csv":
                            progress.lines(chunk, csv=True)
                        else:
                            progress.add(0, len(chunk))
                if args.format == "pdf":  # the PDF's own count; its bytes are not lines
                    progress.count = int(answer.headers.get(ACCESSES_HEADER, "0"))
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


def _subject_json(hub: Hub, query: dict[str, Any], output: str, progress: Progress) -> int:
    """Follow the report's pages and write them as one JSON document, an access at a time."""
    cursor: str | None = None
    pending = 0
    with _output(output, binary=False) as out:
        while True:
            answer = hub.request(
                "POST",
                SUBJECTS,
                json={**query, "limit": PAGE, "cursor": cursor},
                timeout=REPORT_TIMEOUT,
            )
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
    return _run("search", lambda: _search_records(args))


def _search_records(args: argparse.Namespace) -> int:
    params = {
        name: getattr(args, option[2:].replace("-", "_"))
        for option, name, _ in FILTERS
        if getattr(args, option[2:].replace("-", "_")) is not None
    }
    with Hub.from_args(args, whose=AUDITOR) as hub:
        if args.count_by:
            answer = hub.request(
                "GET", "/audit/exchanges/counts", params={**params, "by": args.count_by}
            )
            body = answer.json()
            with _output(args.output, binary=False) as out:
                width = max([len(str(c["key"])) for c in body["counts"]] + [len(args.count_by)])
                out.write(f"{args.count_by:<{width}}  count\n")
                for c in body["counts"]:
                    key = "-" if c["key"] is None else str(c["key"])
                    out.write(f"{key:<{width}}  {c['count']}\n")
                out.write(f"{'total':<{width}}  {body['total']}\n")
            return 0
        progress = Progress("audit search", "records")
        query = {**params, "format": args.format}
        with (
            hub.stream(
                "GET", "/audit/exchanges/export", params=query, timeout=REPORT_TIMEOUT
            ) as answer,
            _output(args.output, binary=True) as out,
        ):
            for chunk in answer.iter_bytes():
                out.write(chunk)
                progress.lines(chunk, csv=args.format == "csv")
        if args.format == "csv":
            progress.count = max(progress.count - 1, 0)  # the header line
    progress.done(f" (written to {args.output})" if args.output != "-" else "")
    return 0
