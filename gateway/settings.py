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
    registry_poll_seconds: float = 0.5
    audit_batch_max: int = 512
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
