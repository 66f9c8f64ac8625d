"""The hub's one settings object, read from `LGSP_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-only-secret-change-me"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    """Configuration of one hub process; every field can be set as `LGSP_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="LGSP_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(
        default=f"sqlite:///{Path('lgsp.db').absolute()}",
        description="SQLAlchemy URL: sqlite:///path.db (WAL) or postgresql+psycopg://...",
    )
    # Keys: one pepper for API-key hashes, one for data-subject hashes in the audit log.
    key_pepper: str = DEV_SECRET
    subject_hmac_key: str = DEV_SECRET
    bootstrap_admin_key: str | None = Field(
        default=None,
        description="An administrator key (lgsp_<id>.<secret>) created on start if absent.",
    )
    max_body_bytes: int = 1_048_576
    # OAuth2 access tokens (POST /oauth2/token): who issues them, for whom, for how long.
    token_issuer: str = Field(
        default="https://lgsp.laichau.gov.vn",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The tokens' iss and the OAuth2 metadata's issuer (an https URL)",
    )
    token_audience: str | None = Field(
        default=None, description="The tokens' aud, checked on the data plane (default: issuer)"
    )
    token_lifetime_seconds: int = Field(default=600, ge=30, le=86_400)
    registry_poll_seconds: float = 0.5
    audit_batch_max: int = 512
    # The audit log's Merkle tree: its name, its signing keys, how often it signs a checkpoint.
    audit_origin: str = Field(
        default="lgsp.laichau.gov.vn/audit",
        pattern=r"^[A-Za-z0-9.\-/]{1,200}$",
        description="The log's name in its checkpoints (C2SP origin line) and signing key",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="Checkpoint-signing keys, newest first (lgsp audit keys generate); generated "
        "beside the SQLite file or in ~/.local/state/lgsp in development when unset",
    )
    secrets_key_file: Path | None = Field(
        default=None,
        description="Keys sealing the secrets stored in the database (AES-256-GCM), newest "
        "first (lgsp secrets generate); generated beside the SQLite file or in "
        "~/.local/state/lgsp in development when unset",
    )
    audit_checkpoint_seconds: float = Field(default=5.0, gt=0, le=10)
    audit_retention_days: int | None = Field(
        default=None, ge=1, description="Archive records older than this (None: keep them all)"
    )
    audit_archive_dir: Path | None = Field(
        default=None, description="Where archive files go (default: beside the key file)"
    )
    # Messaging: the embedded log in the database, or Kafka.
    broker: Literal["database", "kafka"] = "database"
    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port] of the Kafka brokers (broker=kafka)"
    )
    kafka_topic_prefix: str = "lgsp."
    max_publish_batch: int = 1000  # messages in one POST /topics/{topic}/messages
    relay_batch: int = 500  # outbox rows handed to the broker at once
    delivery_in_flight: int = 64  # pushes in flight per subscription
    delivery_window: int = 2000  # messages read ahead per subscription and partition
    lease_seconds: float = 10.0  # a dead replica's relay or delivery is taken over after this
    retirement_guard_days: int = Field(
        default=30,
        ge=0,
        description="Retiring a service version called in this many past days needs force=true",
    )
    log_level: str = "info"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment != "development":
            weak = [
                name
                for name in ("key_pepper", "subject_hmac_key")
                if getattr(self, name) == DEV_SECRET or len(getattr(self, name)) < 32
            ]
            if weak:
                raise ValueError(
                    f"{', '.join('LGSP_' + w.upper() for w in weak)} must be set to a random "
                    "value of at least 32 characters outside development"
                )
        return self

    @model_validator(mode="after")
    def _kafka_needs_bootstrap(self) -> Settings:
        if self.broker == "kafka" and not self.kafka_bootstrap:
            raise ValueError("LGSP_BROKER=kafka needs LGSP_KAFKA_BOOTSTRAP (host:port)")
        return self

    @model_validator(mode="after")
    def _production_needs_a_key_file(self) -> Settings:
        if self.environment != "development" and self.audit_key_file is None:
            raise ValueError(
                "LGSP_AUDIT_KEY_FILE must name the checkpoint-signing key file outside "
                "development (create one with `lgsp audit keys generate --key-file PATH`)"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_a_secrets_key_file(self) -> Settings:
        if self.environment != "development" and self.secrets_key_file is None:
            raise ValueError(
                "LGSP_SECRETS_KEY_FILE must name the file of keys that seal stored secrets "
                "outside development (create one with `lgsp secrets generate --key-file PATH`)"
            )
        return self

    @property
    def audience(self) -> str:
        return self.token_audience or self.token_issuer

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
