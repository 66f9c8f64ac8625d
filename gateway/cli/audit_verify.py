"""`lgsp audit verify | export | verify-bundle`: prove the live log, export and check evidence.

Exit codes of `verify`: 0 verified; 1 could not run; 10 modified, 11 deleted, 12 inserted,
13 reordered, 14 truncated records; 15 replayed (or rolled back) checkpoint; 16 unknown key;
17 bad signature; 18 tree storage altered; 19 records with no checkpoint; 20 a record holds the
seq of an archived leaf (the seq was handed out twice).
Exit codes of `verify-bundle`: 0 valid; 2 malformed; 3 signature or key; 4 inclusion;
5 consistency; 6 counts or manifest disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

VERIFY_EPILOG = (
    "exit codes: 0 verified, 1 could not run, 10 modified, 11 deleted, 12 inserted, "
    "13 reordered, 14 truncated, 15 replayed checkpoint, 16 unknown key, 17 bad signature, "
    "18 tree storage altered, 19 no checkpoint, 20 seq reused (a record at an archived leaf's seq)"
)
BUNDLE_EPILOG = (
    "exit codes: 0 valid, 2 malformed bundle, 3 signature invalid or key not trusted, "
    "4 a record's inclusion fails, 5 consistency fails, 6 counts or manifest disagree"
)


def _read_keys_file(path: str) -> list[str]:
    """Verifier keys, one a line; the last word of a line counts (`lgsp audit keys show`)."""
    keys = []
    for line in Path(path).read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            keys.append(words[-1])
    return keys


def _given_keys(args: argparse.Namespace) -> list[str] | None:
    keys = list(args.key or [])
    if args.keys_file:
        keys += _read_keys_file(args.keys_file)
    return keys or None


def _fail(command: str, message: str) -> int:
    print(f"lgsp audit {command}: {message}", file=sys.stderr)
    return 1


def _verify(args: argparse.Namespace) -> int:
    from audit.errors import KeyFileError, VerifyError
    from audit.keys import default_key_file, load_signers
    from audit.notes import Verifier
    from audit.verify import format_report, verify_log
    from gateway.settings import Settings

    settings = Settings()
    try:
        vkeys = _given_keys(args)
        if vkeys is None:  # the hub's own keys: current and previous
            path = settings.audit_key_file or default_key_file(settings.database_url)
            vkeys = [s.vkey for s in load_signers(path, name=settings.audit_origin, generate=False)]
        trusted = [Verifier.from_vkey(k) for k in vkeys]
    except (OSError, ValueError, KeyFileError) as exc:
        return _fail("verify", f"no trusted key: {exc} (give --key VKEY or --keys-file FILE)")
    with _database(settings.database_url, "verify", "leaves", quiet=args.quiet) as (
        engine,
        progress,
    ):
        try:
            report = verify_log(
                engine,
                trusted,
                state_file=args.state,
                origin=settings.audit_origin,
                progress=progress,
            )
        except VerifyError as exc:
            return _fail("verify", str(exc))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report))
    return report.exit_code


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _export(args: argparse.Namespace) -> int:
    from audit.bundle import export_bundle
    from audit.errors import ExportError
    from audit.queries import ExchangeFilter
    from audit.records import RecordKind
    from gateway.settings import Settings

    settings = Settings()
    try:
        since = _moment(args.since) if args.since else None
        until = _moment(args.until) if args.until else None
        kind = RecordKind(args.kind) if args.kind else None
    except ValueError as exc:
        return _fail("export", str(exc))
    from audit.records import subject_hash as keyed

    subject_hash = keyed(settings.subject_hmac_key, args.subject) if args.subject else None
    where = ExchangeFilter(
        kind=kind,
        consumer=args.consumer,
        agency=args.agency,
        service=args.service,
        subject_hash=subject_hash,
        since=since,
        until=until,
    )
    description = {
        "subject_hash": subject_hash,
        "consumer": args.consumer,
        "agency": args.agency,
        "service": args.service,
        "kind": args.kind,
        "since": since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else None,
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ") if until else None,
    }
    with _database(settings.database_url, "export", "records", quiet=args.quiet) as (
        engine,
        progress,
    ):
        try:
            result = export_bundle(
                engine,
                args.output,
                where=where,
                origin=settings.audit_origin,
                size=args.size,
                earlier=args.checkpoint or (),
                description={k: v for k, v in description.items() if v is not None},
                progress=progress,
            )
        except ExportError as exc:
            return _fail("export", str(exc))
    print(
        f"wrote {result.path}: {result.records} records with inclusion proofs against the "
        f"checkpoint of size {result.checkpoint_size}"
        + (
            f"; {result.pending} newer records are not in a checkpoint yet"
            if result.pending
            else ""
        )
    )
    if result.mismatched:
        print(
            f"warning: {len(result.mismatched)} records do not hash to their leaves (first: "
            f"{result.mismatched[0]}); the bundle will not verify: run `lgsp audit verify`",
            file=sys.stderr,
        )
        return 1
    return 0


def _verify_bundle(args: argparse.Namespace) -> int:
    from audit.bundle import verify_bundle

    try:
        trusted = _given_keys(args)
    except OSError as exc:
        print(f"lgsp audit verify-bundle: {exc}", file=sys.stderr)
        return 2
    result = verify_bundle(args.bundle, trusted_vkeys=trusted)
    stream = sys.stdout if result.ok else sys.stderr
    print(f"{args.bundle}: {result.message}", file=stream)
    if result.ok and trusted is None:
        print(
            "note: trusted the bundle's own keys.txt; compare the key ids above with the ones "
            "the hub publishes at /audit/keys, or pin them with --key",
            file=stream,
        )
    return result.exit_code


@contextlib.contextmanager
def _database(
    database_url: str, command: str, unit: str, *, quiet: bool
) -> Iterator[tuple[Engine, Callable[[int, int], None]]]:
    """An engine for one command, and how it reports progress (on stderr unless `quiet`)."""
    from gateway.cli.progress import Progress
    from gateway.db import make_engine

    engine = make_engine(database_url, pool_size=2)
    progress = Progress(f"audit {command}", unit, quiet=quiet)
    try:
        yield engine, progress.at
    finally:
        engine.dispose()
        progress.done()


def add_commands(audit: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    verify = audit.add_parser(
        "verify",
        help="check the live database against the signed checkpoints",
        description="Recompute every leaf from the records and every checkpoint's root; name "
        "the first bad leaf and what happened to it.",
        epilog=VERIFY_EPILOG,
    )
    _key_options(verify, "default: the public halves of LGSP_AUDIT_KEY_FILE's keys")
    verify.add_argument(
        "--state", help="remember the last verified checkpoint here, to catch a later rollback"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--quiet", action="store_true", help="no progress on stderr")
    verify.set_defaults(func=_verify)

    export = audit.add_parser(
        "export",
        help="write an evidence bundle (records, proofs, checkpoint, keys) for a filter",
        description="Every record matching all the filters given, with its inclusion proof "
        "against the latest checkpoint (or --size), in one zip file.",
    )
    export.add_argument("-o", "--output", required=True, help="the bundle (.zip) to write")
    export.add_argument("--subject", help="a data subject's identifier (hashed, never stored)")
    export.add_argument("--consumer")
    export.add_argument("--service")
    export.add_argument("--agency")
    export.add_argument("--kind", help="exchange, publish, delivery, registry_change, audit")
    export.add_argument("--since", help="ISO 8601, inclusive")
    export.add_argument("--until", help="ISO 8601, exclusive")
    export.add_argument("--size", type=int, help="against this checkpoint size (default latest)")
    export.add_argument(
        "--checkpoint", type=int, action="append", metavar="SIZE",
        help="also include this earlier checkpoint with a consistency proof (repeatable)",
    )  # fmt: skip
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")
    export.set_defaults(func=_export)

    bundle = audit.add_parser(
        "verify-bundle",
        help="check an evidence bundle offline (no database, no network)",
        epilog=BUNDLE_EPILOG,
    )
    bundle.add_argument("bundle")
    _key_options(bundle, "default: the bundle's own keys.txt")
    bundle.set_defaults(func=_verify_bundle)


def _key_options(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--key",
        action="append",
        metavar="VKEY",
        help=f"a trusted verifier key, repeatable; {default}",
    )
    parser.add_argument("--keys-file", help="trusted verifier keys, one a line")


def main(argv: list[str] | None = None) -> int:
    """These commands on their own: `python -m gateway.cli.audit_verify verify-bundle B.zip`."""
    parser = argparse.ArgumentParser(prog="lgsp audit")
    add_commands(parser.add_subparsers(dest="audit_command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
