"""`lgsp tokens rotate-key`: a new key signs the hub's access tokens from now on; the old keys
stay published until every token they signed has expired (then a later rotation prunes them)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _rotate_key(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

    from gateway.db import make_engine, migrate
    from gateway.db.sealing import attach_ring
    from gateway.settings import Settings
    from registry import signing_keys

    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        attach_ring(engine, settings)  # the new private key is stored sealed
        migrate(engine)
        with Session(engine) as session:
            row, pruned = signing_keys.rotate(
                session, alg=args.alg, token_lifetime=settings.token_lifetime_seconds
            )
            session.commit()
            kid = row.kid
    except OperationalError as exc:
        print(
            f"lgsp tokens rotate-key: the database did not answer: {type(exc.orig)}",
            file=sys.stderr,
        )
        return 2
    finally:
        engine.dispose()
    print(f"new signing key {kid} ({args.alg}); every replica signs with it within a second")
    if pruned:
        lifetime = settings.token_lifetime_seconds
        print(f"removed keys retired over {lifetime} s ago: {', '.join(pruned)}")
    return 0


def add_commands(commands: Any) -> None:
    tokens = commands.add_parser("tokens", help="the signing keys of the hub's access tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True)
    rotate = actions.add_parser(
        "rotate-key",
        help="a new key signs access tokens from now on (database from LGSP_DATABASE_URL)",
    )
    rotate.add_argument("--alg", choices=["EdDSA", "ES256", "RS256"], default="EdDSA")
    rotate.set_defaults(func=_rotate_key)
