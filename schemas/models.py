"""The schema registry's tables: documents (global ids), subject versions, and compatibility config.

A *document* is one schema content with its references; its id is the global schema id that
Confluent clients put in front of every message, shared by every subject that registers the same
content. A *version* is a subject's numbered, immutable pointer to a document, with a state:
active, deprecated (still served, with a warning) or deleted (soft: no new use, kept for old
records). Config rows hold a subject's compatibility level and policy; subject '' is the global
default.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as Attribute
from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from schemas.clock import utcnow

GLOBAL = ""  # the config row that holds the default for every subject
# The table arguments of every table whose ids are referenced (by records, other rows, people):
# on SQLite, AUTOINCREMENT, so that an id is never given again after the highest row is deleted
# (PostgreSQL's sequences never reuse). Re-exported by registry.types for the other packages.
NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}


class VersionState(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    DELETED = "deleted"


class SchemaDocument(SQLModel, table=True):
    __tablename__ = "schema_document"
    # Clients cache a schema id for good: it never names another schema, not even on SQLite
    # after the highest one is gone (AUTOINCREMENT).
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(max_length=64, unique=True)  # sha256 of canonical content + refs
    schema_type: str = Field(default="JSON", max_length=16)
    content: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON text
    references: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    __table_args__ = (UniqueConstraint("subject", "version"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=150, index=True)
    version: int
    document_id: int = Field(foreign_key="schema_document.id", index=True)
    state: VersionState = Field(default=VersionState.ACTIVE, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str | None = Field(default=None, max_length=150)
    owner: str | None = Field(default=None, max_length=20)  # agency code of the registrant
    changed_at: datetime | None = None  # when the state last changed


class SchemaConfig(SQLModel, table=True):
    __tablename__ = "schema_config"

    subject: str = Field(primary_key=True, max_length=150)  # GLOBAL for the default
    compatibility: str | None = Field(default=None, max_length=32)
    policy: str | None = Field(default=None, max_length=16)


class SchemaRef(BaseModel):
    """Where a service or topic names its contract: a subject and one of its versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Attribute(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    version: int = Attribute(ge=1)

    def __str__(self) -> str:
        return f"{self.subject}/{self.version}"
