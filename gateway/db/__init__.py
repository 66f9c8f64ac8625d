"""The hub's database: the engine (SQLite in WAL mode, or PostgreSQL) and its migrations."""

from gateway.db.engine import make_engine, normalise_url
from gateway.db.migrate import migrate

__all__ = ["make_engine", "migrate", "normalise_url"]
