"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

import registry.models
from gateway.db import make_engine, migrate
from registry.types import as_utc, utcnow
from tests.conftest import BACKENDS
from tests.integration.rows import Rows, tables_with_generated_keys


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_the_models_and_can_run_twice(backend, database_urls):
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine)
        migrate(engine)  # a second replica starting finds nothing to do
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_workers_starting_together_migrate_one_after_the_other(tmp_path):
    """`lgsp serve --workers N` on a fresh SQLite file: every worker's migration succeeds."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = "import sys; from gateway.db import make_engine, migrate; " \
        "migrate(make_engine(sys.argv[1]))"  # fmt: skip
    processes = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.communicate(timeout=60)[1], p.returncode) for p in processes]
    assert [err for err, status in outcomes if status != 0] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_decisions_taken_before_the_history_existed_start_it(backend, database_urls):
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0004")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO agency (code, name, description) "
                    "VALUES ('000.00.12.H12', 'So', '')"
                )
            )
            for n, status in enumerate(["REFUSED", "APPROVED", "REQUESTED"], start=1):
                connection.execute(
                    text(
                        'INSERT INTO "grant" (consumer, service, versions, purposes, fields, '
                        "description, status, reason, legal_basis, decided_by, decided_at, "
                        "created_at) VALUES (:c, 's', '[\"*\"]', '[]', '[\"*\"]', '', :status, "
                        ":reason, :basis, 'admin', :at, :at)"
                    ),
                    {"c": f"app-{n}", "status": status, "at": "2026-11-01 00:00:00",
                     "reason": "r" if status == "REFUSED" else None,
                     "basis": "b" if status == "REFUSED" else None},
                )  # fmt: skip
        migrate(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT g.consumer, d.status, d.reason, d.legal_basis, d.decided_by "
                    'FROM grant_decision d JOIN "grant" g ON g.id = d.grant_id ORDER BY d.id'
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("app-1", "REFUSED", "r", "b", "admin"),
            ("app-2", "APPROVED", None, None, "admin"),
        ]
    finally:
        engine.dispose()


def schema(engine: Engine, tables: list[str]) -> dict[str, Any]:
    """What a rebuild must keep, table by table: columns, keys, indexes (SQLite: their SQL,
    partial ones included) and triggers."""
    inspector = inspect(engine)
    found: dict[str, Any] = {}
    for table in tables:
        found[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
        }
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            statement = (
                "SELECT tbl_name, type, name, sql FROM sqlite_master "
                "WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
            )
        else:
            statement = (
                "SELECT c.relname, 'trigger', t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        for row in connection.execute(text(statement)):
            owner, kind, name, sql = row[0], row[1], row[2], row[3]
            if owner in found:
                found[owner].setdefault(kind, {})[name] = " ".join(str(sql).split())
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_upgrade_keeps_every_row_and_never_gives_an_id_again(backend, database_urls):
    """A database at the revision before 0006 with rows in every table whose ids the database
    generates, where (as in the demo) every record up to seq 40 was archived, SQLite handed seqs
    1, 2, 3… out again, and exchange records name a grant since deleted. After the upgrade: the
    same rows, columns, keys, indexes and append-only triggers, and every table goes on above
    the highest id known to have been given."""
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0005")
        tables = [t for t in tables_with_generated_keys() if inspect(engine).has_table(t)]
        assert len(tables) == 15
        with engine.begin() as connection:
            made = Rows(connection)
            for table in tables:
                for _ in range(3):
                    made.insert(table)
            connection.execute(text("UPDATE audit_tree SET size = 40, last_seq = 40"))
            made.insert("audit_archive", first_leaf=0, end_leaf=40, min_seq=1, max_seq=40)
            made.insert("exchange_record", grant_id=97)
        with engine.connect() as connection:
            rows_before = {t: Rows(connection).rows(t) for t in tables}
            highest = {t: max(Rows(connection).keys(t)) for t in tables}
        highest["exchange_record"] = max(highest["exchange_record"], 40)
        highest["grant"] = 97
        schema_before = schema(engine, tables)

        migrate(engine, "0006")  # the rebuild alone: later migrations change these tables
        assert schema(engine, tables) == schema_before
        migrate(engine)

        with engine.begin() as connection:
            made = Rows(connection)
            assert made.kept(rows_before) == rows_before
            given = {t: made.insert(t) for t in tables}
        assert {t: given[t] > highest[t] for t in tables} == dict.fromkeys(tables, True), given
        refused = [
            "UPDATE exchange_record SET hub_status = 500",
            "DELETE FROM exchange_record",
            "UPDATE audit_checkpoint SET size = 0",
            "DELETE FROM audit_checkpoint",
        ]
        for statement in refused:
            with engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
        with engine.connect() as connection:
            if backend == "sqlite":
                assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
                ddl: dict[str, str] = dict(
                    connection.execute(
                        text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                    ).all()
                )
                assert [t for t in tables if "AUTOINCREMENT" not in ddl[t]] == []
            else:
                sequences = {
                    t: connection.execute(
                        text("SELECT pg_get_serial_sequence(:t, :k)"),
                        {
                            "t": f'"{t}"',
                            "k": "seq" if t in ("exchange_record", "message") else "id",
                        },
                    ).scalar()
                    for t in tables
                }
                assert [t for t, s in sequences.items() if s is None] == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_connector_allowed_a_long_attempt_keeps_it_under_the_exchange_deadline(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    """0005: retry.max_delay becomes the exchange deadline; a stored one below connect + read
    timeout is raised to that sum (at most 120 s), so no call that succeeded before is cut."""
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0004")
        stored = {  # (connect, read, retry as stored) -> max_delay after the upgrade
            (2.0, 30.0, None): 32.0,
            (2.0, 10.0, json.dumps({"max_attempts": 2})): 12.0,
            (1.0, 5.0, json.dumps({"max_delay": 20.0})): 20.0,
            (10.0, 300.0, json.dumps({"max_delay": 15.0})): 120.0,
        }
        with engine.begin() as connection:
            made = Rows(connection)
            ids = {
                made.insert("connector", connect_timeout=c, read_timeout=r, retry=None): (c, r, j)
                for c, r, j in stored
            }
            for key, (_, _, retry) in ids.items():
                if retry is not None:
                    connection.execute(
                        text("UPDATE connector SET retry = :r WHERE id = :i"),
                        {"r": retry, "i": key},
                    )
        migrate(engine)
        with engine.connect() as connection:
            found = {
                row.id: row.retry
                for row in connection.execute(text("SELECT id, retry FROM connector"))
            }
        for key, (c, r, j) in ids.items():
            retry = found[key] if isinstance(found[key], dict) else json.loads(found[key])
            assert retry["max_delay"] == stored[(c, r, j)], (c, r, j, retry)
            if j is not None:  # what else the policy said stays
                assert {k: v for k, v in retry.items() if k != "max_delay"} == {
                    k: v for k, v in json.loads(j).items() if k != "max_delay"
                }
    finally:
        engine.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision`, as `migrate` goes forward (SQLite: foreign keys off meanwhile)."""
    from alembic import command

    from gateway.db.migrate import alembic_config

    config = alembic_config()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


@pytest.mark.parametrize("backend", BACKENDS)
def test_limits_come_in_unset_and_go_out_again(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    """0012: existing grants have no rate limit or quota, existing connectors no concurrency
    limit; the counters' tables start empty; the downgrade takes it all away, rows kept."""
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0009")
        with engine.begin() as connection:
            made = Rows(connection)
            connector = made.insert("connector")
            grant = made.insert("grant")
            before = {t: made.rows(t) for t in ("connector", "grant")}
        migrate(engine)
        with engine.begin() as connection:
            limits = connection.execute(
                text("SELECT max_in_flight, max_waiting, max_wait_seconds FROM connector "
                     "WHERE id = :i"), {"i": connector},
            ).one()  # fmt: skip
            terms = connection.execute(
                text('SELECT rate_limit, quota FROM "grant" WHERE id = :i'), {"i": grant}
            ).one()
            connection.execute(
                text(
                    "INSERT INTO rate_limit_state (grant_id, tat, at, allowed) "
                    "VALUES (:g, 2000000000000000, 1999999999000000, :t)"
                ),
                {"g": grant, "t": True},
            )
            connection.execute(
                text("INSERT INTO quota_usage (grant_id, period, used) VALUES (:g, '2026-12', 7)"),
                {"g": grant},
            )
        assert tuple(limits) == (None, 0, 5.0)
        assert tuple(terms) == (None, None)
        _downgrade(engine, "0009")
        with engine.connect() as connection:
            made = Rows(connection)
            assert made.kept(before) == before
            tables = set(inspect(connection).get_table_names())
            if backend == "sqlite":  # rebuilt both ways, the tables still never reuse an id
                ddl: dict[str, str] = dict(
                    connection.execute(
                        text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                    ).all()
                )
                assert "AUTOINCREMENT" in ddl["connector"] and "AUTOINCREMENT" in ddl["grant"]
        assert not {"rate_limit_state", "quota_usage"} & tables
        migrate(engine)  # and up again
    finally:
        engine.dispose()


KILL_AT = """
import os, sys
from sqlalchemy import event
from gateway.db import make_engine, migrate

engine = make_engine(sys.argv[1])


@event.listens_for(engine, "before_cursor_execute")
def die(conn, cursor, statement, *args):
    if statement.lstrip().startswith(sys.argv[2]):
        os._exit(9)  # as a SIGKILL would: no rollback, no cleanup


migrate(engine)
"""


@pytest.mark.parametrize(
    "statement",
    ["INSERT INTO _alembic_tmp_connector", "INSERT INTO _alembic_tmp_audit_archive",
     "INSERT INTO grant_decision"],
)  # fmt: skip
def test_a_migration_killed_half_way_leaves_the_database_as_it_was(
    tmp_path: Any, statement: str
) -> None:
    """SQLite: the whole upgrade is one transaction (Python's sqlite3 would commit each DDL
    statement on its own), so the next start migrates from where the database was."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = make_engine(url)
    try:
        migrate(engine, "0005")
        with engine.begin() as connection:
            made = Rows(connection)
            for table in ("connector", "apikey", "grant", "audit_archive"):
                made.insert(table)
            before = {t: made.rows(t) for t in ("connector", "apikey", "grant", "consumer")}
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AT, url, statement], capture_output=True, timeout=120
        )
        assert killed.returncode == 9, killed.stderr.decode()
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            leftovers = connection.execute(
                text("SELECT name FROM sqlite_master WHERE name LIKE '_alembic_tmp%'")
            ).all()
        assert (version, leftovers) == ("0005", [])
        migrate(engine)  # the next start
        with engine.connect() as connection:
            made = Rows(connection)
            assert made.kept(before) == before
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_oauth_clients_and_token_keys_come_and_go_with_their_migration(backend, database_urls):
    """0010 adds the OAuth2 tables; its downgrade removes them and nothing else, and it can run
    again."""
    from alembic import command

    from gateway.db.migrate import alembic_config

    tables = {"oauth_client", "token_signing_key", "oauth_consumed_assertion",
              "oauth_revoked_token"}  # fmt: skip
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0009")
        before = set(inspect(engine).get_table_names())
        assert not tables & before
        migrate(engine, "0010")
        assert tables <= set(inspect(engine).get_table_names())
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0009")
        assert set(inspect(engine).get_table_names()) == before
        migrate(engine)
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_connectors_stored_before_0013_keep_their_behaviour_and_it_reverses(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    """0013: a connector stored before has one base URL (its base_url), in-order failover, the
    default health check and breaker, no TLS settings; the downgrade drops the new columns."""
    from alembic import command
    from sqlmodel import Session, select

    from connectors.config import HttpConfig
    from gateway.db.migrate import alembic_config
    from registry.connector_settings import BreakerPolicy, HealthCheck
    from registry.models import Connector

    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0009")
        with engine.begin() as connection:
            key = Rows(connection).insert(
                "connector",
                base_url="http://dan-cu.local",
                kind="REST",  # enums are stored by name
                auth_params={},
                options={},
                retry={},
            )
        migrate(engine)
        with Session(engine) as session:
            row = session.exec(select(Connector).where(Connector.id == key)).one()
            config = HttpConfig.from_row(row)  # what the connector is built from
        assert (config.urls, config.failover.value, config.client.tls, config.health_path) == (
            ("http://dan-cu.local",), "in_order", None, None
        )  # fmt: skip
        assert (config.health, config.breaker) == (HealthCheck(), BreakerPolicy())

        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            with connection.begin():
                alembic = alembic_config()
                alembic.attributes["connection"] = connection
                command.downgrade(alembic, "0009")
        columns = {c["name"] for c in inspect(engine).get_columns("connector")}
        assert columns.isdisjoint({"base_urls", "failover", "health", "breaker", "tls", "tls_key"})
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT base_url FROM connector")).all()
        assert [tuple(r) for r in kept] == [("http://dan-cu.local",)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_service_lifecycle_dates_upgrade_keep_services_and_downgrade(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    """0011: a service's lifecycle dates (empty on existing services) and the index of the
    callers view; the downgrade takes both away and keeps the services."""
    from alembic import command

    from gateway.db.migrate import alembic_config

    engine = make_engine(database_urls(backend))
    try:
        migrate(engine, "0009")
        with engine.begin() as connection:
            service = Rows(connection).insert("service")
            deprecated = Rows(connection).insert("service")
            connection.execute(
                text("UPDATE service SET status = 'DEPRECATED' WHERE id = :i"), {"i": deprecated}
            )
            name: str = connection.execute(
                text("SELECT name FROM service WHERE id = :i"), {"i": service}
            ).scalar_one()

        def shape() -> tuple[set[str], set[str | None]]:
            found = inspect(engine)
            columns = {c["name"] for c in found.get_columns("service")}
            indexes = {i["name"] for i in found.get_indexes("exchange_record")}
            return columns, indexes

        dates = {"deprecated_at", "sunset_at", "retired_at"}
        columns, indexes = shape()
        assert not dates & columns and "ix_exchange_service_version_time" not in indexes
        migrate(engine)
        columns, indexes = shape()
        assert dates <= columns and "ix_exchange_service_version_time" in indexes
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT deprecated_at, sunset_at, retired_at FROM service WHERE id = :i"),
                {"i": service},
            ).one()
        assert tuple(row) == (None, None, None)
        with Session(engine) as session:  # read as the hub reads it
            dated = session.get(registry.models.Service, deprecated)
            assert dated is not None and dated.deprecated_at is not None
            assert as_utc(dated.deprecated_at) <= utcnow()  # type: ignore[operator]

        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0009")
        columns, indexes = shape()
        assert not dates & columns and "ix_exchange_service_version_time" not in indexes
        with engine.connect() as connection:
            names: list[str] = list(connection.execute(text("SELECT name FROM service")).scalars())
        assert name in names and len(names) == 2
        migrate(engine)
        assert dates <= shape()[0]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_stored_in_clear_are_sealed_by_0014_and_opened_by_its_downgrade(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    from registry import sealing

    engine = make_engine(database_urls(backend))
    ring = sealing.KeyRing.generate()
    sealing.attach(engine, ring)  # as the hub does before migrating
    long_secret = "p" * 4000  # the longest a connector may hold, which grows when sealed
    try:
        migrate(engine, "0013")
        with engine.begin() as connection:
            made = Rows(connection)
            for name, secret in (("api", "key-in-clear"), ("long", long_secret), ("none", None)):
                made.insert("connector", name=name, secret=secret)
            made.insert("connector", name="mtls", tls_key="PEM-in-clear")
            made.insert("token_signing_key", kid="k1", private_jwk='{"d": "jwk-in-clear"}')
            for name, given in (("push", ["whsec_A", "whsec_B"]), ("group", [])):
                made.insert("subscription", name=name, secrets=given)
        migrate(engine)

        def stored() -> dict[str, Any]:
            with engine.connect() as connection:
                found: dict[str, Any] = dict(
                    connection.execute(text("SELECT name, secret FROM connector")).all()
                )
                rows = connection.execute(text("SELECT name, secrets FROM subscription")).all()
                for name, given in rows:  # a list on PostgreSQL, JSON text on SQLite
                    found[str(name)] = given if isinstance(given, list) else json.loads(str(given))
                found["tls_key"] = connection.execute(
                    text("SELECT tls_key FROM connector WHERE name = 'mtls'")
                ).scalar_one()
                found["jwk"] = connection.execute(
                    text("SELECT private_jwk FROM token_signing_key WHERE kid = 'k1'")
                ).scalar_one()
            return found

        sealed = stored()
        assert sealed["none"] is None and sealed["group"] == []
        values = [sealed["api"], sealed["long"], *sealed["push"], sealed["tls_key"], sealed["jwk"]]
        assert {sealing.kid_of(v) for v in values} == {ring.current_kid}
        connector = sealing.connector_context
        assert ring.open(sealed["api"], context=connector("api")) == "key-in-clear"
        assert ring.open(sealed["long"], context=connector("long")) == long_secret
        push = sealing.subscription_context("push")
        assert [ring.open(v, context=push) for v in sealed["push"]] == ["whsec_A", "whsec_B"]
        tls_key = ring.open(sealed["tls_key"], context=sealing.tls_key_context("mtls"))
        jwk = ring.open(sealed["jwk"], context=sealing.signing_key_context("k1"))
        assert (tls_key, jwk) == ("PEM-in-clear", '{"d": "jwk-in-clear"}')

        _downgrade(engine, "0013")
        opened = stored()
        assert opened["api"] == "key-in-clear" and opened["long"] == long_secret
        assert (opened["tls_key"], opened["jwk"]) == ("PEM-in-clear", '{"d": "jwk-in-clear"}')
        assert opened["push"] == ["whsec_A", "whsec_B"] and opened["none"] is None
    finally:
        engine.dispose()
