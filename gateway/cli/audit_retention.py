"""`lgsp audit archive` and `lgsp audit erase`: retention and payload erasure, on the database.

Both act on the database named by the settings (LGSP_DATABASE_URL), as the hub's own operator.
Exit codes: 0 done (also: nothing to do), 1 refused (the log does not match its tree; a bad
request), 2 a usage problem.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any


def add_commands(subparsers: Any) -> None:
    """Add `archive` and `erase` to the `lgsp audit` group."""
    archive = subparsers.add_parser(
        "archive",
        help="move records older than an age to archive files (verifiable bundles)",
        description="Records older than the age, and already covered by a signed checkpoint, "
        "move to archive files; each file verifies offline with `lgsp audit verify-bundle`.",
    )
    archive.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="archive records older than this many days (default LGSP_AUDIT_RETENTION_DAYS)",
    )
    archive.add_argument(
        "--dir", metavar="D", help="where the files go (default LGSP_AUDIT_ARCHIVE_DIR)"
    )
    archive.set_defaults(func=_archive)

    erase = subparsers.add_parser(
        "erase",
        help="erase the message payloads holding a data subject's identifier",
        description="Message payloads (outbox, embedded broker log, dead letters) that hold the "
        "identifier are replaced by a tombstone; audit records and their proofs are unchanged, "
        "and an `erase` audit record is appended under the subject's keyed hash.",
    )
    erase.add_argument("identifier", metavar="ID", help="the subject's identifier (e.g. CCCD)")
    erase.add_argument("--reason", required=True, help="why (the request, its legal basis)")
    erase.add_argument("--actor", help="who asked for it (default: cli:<user>)")
    erase.add_argument(
        "--vacuum",
        action="store_true",
        help="PostgreSQL: rewrite the message tables (VACUUM FULL, which locks them meanwhile) so "
        "the old values leave the database files too; SQLite does that on its own",
    )
    erase.set_defaults(func=_erase)


def _archive(args: argparse.Namespace) -> int:
    from audit.errors import ArchiveError
    from audit.retention import archive, default_archive_dir
    from gateway.db import make_engine
    from gateway.settings import Settings

    settings = Settings()
    days = args.older_than if args.older_than is not None else settings.audit_retention_days
    if days is None:
        print(
            "lgsp audit archive: give --older-than DAYS or set LGSP_AUDIT_RETENTION_DAYS",
            file=sys.stderr,
        )
        return 2
    if days < 0:
        print("lgsp audit archive: --older-than must not be negative", file=sys.stderr)
        return 2
    configured = args.dir or settings.audit_archive_dir
    directory = (
        Path(configured)
        if configured
        else default_archive_dir(settings.database_url, settings.audit_key_file)
    )
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        results = archive(engine, older_than=timedelta(days=days), directory=directory)
    except ArchiveError as exc:
        print(f"lgsp audit archive: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if not results:
        print("nothing to archive")
    for r in results:
        print(
            f"{r.path}  leaves {r.first_leaf}-{r.end_leaf - 1}  {r.records} records  "
            f"checkpoint {r.checkpoint_size}  sha256 {r.sha256}"
        )
    return 0


def _erase(args: argparse.Namespace) -> int:
    from audit.erasure import erase
    from audit.errors import ErasureError
    from audit.records import subject_hash as keyed
    from gateway.db import make_engine
    from gateway.settings import Settings

    settings = Settings()
    actor = args.actor or f"cli:{getpass.getuser()}"
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        result = erase(
            engine,
            identifier=args.identifier,
            subject_hash=keyed(settings.subject_hmac_key, args.identifier),
            actor=actor[:63],
            reason=args.reason,
            vacuum=args.vacuum,
        )
    except ErasureError as exc:
        print(f"lgsp audit erase: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"erased {result.messages} messages, {result.broker_log} broker log entries, "
        f"{result.dead_letters} dead letters; audit record {result.record_id}"
    )
    if not result.compacted:
        print(
            "the old values may remain in the database files until they are reclaimed "
            "(PostgreSQL: run again with --vacuum, or VACUUM FULL message, broker_log, "
            "dead_letter; SQLite: a reader held the write-ahead log, it is truncated later)"
        )
    return 0
