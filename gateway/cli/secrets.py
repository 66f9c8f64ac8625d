"""`lgsp secrets`: the keys that seal the secrets stored in the database (LGSP_SECRETS_KEY_FILE).

    generate   write a new key file (refuses to overwrite one)
    rotate     put a new key first in the file, then seal every stored secret again under it
               (--no-reseal: only add the key, for replicas that each hold a copy of the file)
    reseal     seal every stored secret again under the file's first key (resumes a rotation)
    status     how many stored secrets each key sealed
    prune      remove from the file the keys that no stored secret uses any more

Exit codes: 0 done, 1 refused (a key file or a value that does not open), 2 a local problem.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine

from registry import sealing


def _path(args: argparse.Namespace) -> Path:
    from gateway.db.sealing import key_file
    from gateway.settings import Settings

    return Path(args.key_file) if args.key_file else key_file(Settings())


def _engine(ring: sealing.KeyRing) -> Engine:
    """The hub's database, migrated (0014 seals what is still in clear) under `ring`."""
    from gateway.db import make_engine, migrate
    from gateway.settings import Settings

    engine = make_engine(Settings().database_url)
    sealing.attach(engine, ring)
    migrate(engine)
    return engine


def _used(engine: Engine) -> Counter[str]:
    from registry.sealed import count_by_key

    total: Counter[str] = Counter()
    for counted in count_by_key(engine).values():
        total.update(counted)
    return total


def _generate(args: argparse.Namespace) -> int:
    path = _path(args)
    if path.exists():
        print(f"lgsp secrets generate: {path} exists; use rotate", file=sys.stderr)
        return 1
    ring = sealing.KeyRing.generate()
    sealing.write_key_file(path, ring)
    print(f"wrote {path} (mode 0600), key {ring.current_kid}")
    return 0


def _reseal(ring: sealing.KeyRing, engine: Engine) -> None:
    from registry.sealed import reseal

    for place, count in reseal(engine, ring).items():
        print(f"{place}: {count} sealed again under {ring.current_kid}")
    left = {kid: n for kid, n in _used(engine).items() if kid != ring.current_kid}
    print(f"values under older keys: {left or 'none'}")


def _rotate(args: argparse.Namespace) -> int:
    path = _path(args)
    ring = sealing.read_key_file(path).with_new_key()
    # The new key is in the file before any value is sealed under it, so hubs sharing the file
    # open the new values (a ring reads its file again when it meets an unknown key id).
    sealing.write_key_file(path, ring)
    print(f"new key {ring.current_kid} first in {path}")
    if args.no_reseal:
        print("copy the file to every replica, then run `lgsp secrets reseal`")
        return 0
    engine = _engine(ring)
    try:
        _reseal(ring, engine)
    finally:
        engine.dispose()
    print("the old keys stay in the file until no value uses them: `lgsp secrets prune`")
    return 0


def _reseal_command(args: argparse.Namespace) -> int:
    ring = sealing.read_key_file(_path(args))
    engine = _engine(ring)
    try:
        _reseal(ring, engine)
    finally:
        engine.dispose()
    return 0


def _status(args: argparse.Namespace) -> int:
    from registry.sealed import count_by_key

    ring = sealing.read_key_file(_path(args))
    engine = _engine(ring)
    try:
        counts = count_by_key(engine)
    finally:
        engine.dispose()
    for kid in ring.kids:
        role = "seals " if kid == ring.current_kid else "opens "
        per_place = ", ".join(f"{place} {c[kid]}" for place, c in counts.items())
        print(f"{role} {kid}: {per_place}")
    unknown = {k for c in counts.values() for k in c if k not in ring.kids}
    for kid in sorted(unknown):
        print(f"missing {kid}: values sealed under a key the file does not hold", file=sys.stderr)
    return 1 if unknown else 0


def _prune(args: argparse.Namespace) -> int:
    path = _path(args)
    ring = sealing.read_key_file(path)
    engine = _engine(ring)
    try:
        used = _used(engine)
    finally:
        engine.dispose()
    unused = {kid for kid in ring.kids if kid != ring.current_kid and not used[kid]}
    if not unused:
        print("no key to remove: every key is in use, or only the sealing key is left")
        return 0
    sealing.write_key_file(path, ring.without(unused))
    print(f"removed {', '.join(sorted(unused))} from {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.secrets_func(args)
    except sealing.SealingError as exc:
        print(f"lgsp secrets {args.secrets_action}: {exc}", file=sys.stderr)
        return 1
    return code


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    secrets = commands.add_parser(
        "secrets",
        help="generate, rotate and inspect the keys that seal stored secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = secrets.add_subparsers(dest="secrets_action", required=True)
    for name, func, text in (
        ("generate", _generate, "write a new key file (refuses to overwrite)"),
        ("rotate", _rotate, "put a new key first and seal every stored secret under it"),
        ("reseal", _reseal_command, "seal every stored secret under the first key"),
        ("status", _status, "how many stored secrets each key sealed"),
        ("prune", _prune, "remove the keys no stored secret uses"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--key-file", help="default: LGSP_SECRETS_KEY_FILE")
        if name == "rotate":
            sub.add_argument(
                "--no-reseal",
                action="store_true",
                help="only put the new key first (replicas with their own copy of the file)",
            )
        sub.set_defaults(func=_run, secrets_func=func)
