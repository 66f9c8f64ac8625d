"""The key ring that seals the secrets of the hub's database, found from its settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.db.engine import normalise_url
from gateway.settings import Settings
from registry import sealing


def default_key_file(database_url: str) -> Path:
    """Where development keys live when LGSP_SECRETS_KEY_FILE is not set: beside a SQLite
    file, or in the user's state directory, one per database (as the audit signing key)."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return Path(path + ".secrets-key")
    digest = hashlib.sha256(normalise_url(database_url).encode()).hexdigest()[:16]
    return Path.home() / ".local" / "state" / "lgsp" / f"secrets-{digest}.key"


def key_file(settings: Settings) -> Path:
    return settings.secrets_key_file or default_key_file(settings.database_url)


def load_ring(settings: Settings) -> sealing.KeyRing:
    """The ring of LGSP_SECRETS_KEY_FILE (generated there in development when absent)."""
    return sealing.load_key_file(key_file(settings), generate=settings.environment == "development")


def attach_ring(engine: Engine, settings: Settings) -> sealing.KeyRing:
    """Load the ring the settings name and attach it to `engine`'s database."""
    ring = load_ring(settings)
    sealing.attach(engine, ring)
    return ring


def ring_for_migration(engine: Engine) -> sealing.KeyRing:
    """The ring a migration seals with: the one the hub attached, or else the one the
    environment's settings name (`alembic` run by hand), for this engine's database."""
    ring = sealing.find_ring(engine)
    if ring is not None:
        return ring
    settings = Settings()
    url = engine.url.render_as_string(hide_password=False)
    path = settings.secrets_key_file or default_key_file(url)
    ring = sealing.load_key_file(path, generate=settings.environment == "development")
    sealing.attach(engine, ring)
    return ring
