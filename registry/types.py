"""Validated field types shared by every registry entity (the bottom of the import chain)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, StringConstraints

# Shared with the schema registry (the package below), re-exported for the registry's modules.
from schemas.clock import utcnow as utcnow
from schemas.models import NEVER_REUSED as NEVER_REUSED
from schemas.validation import pointer as pointer

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
VERSION_RE = r"^v[1-9][0-9]{0,3}$"
# Mã định danh cơ quan, e.g. 000.00.12.H12 (province units) or 000.00.00.G10 (ministries).
AGENCY_CODE_RE = r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$"

# Topic names: dot-separated lowercase segments, e.g. dossier.status, civil.birth-registered.
TOPIC_RE = r"^[a-z][a-z0-9-]{0,30}(?:\.[a-z][a-z0-9-]{0,30}){0,4}$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE)]
TopicName = Annotated[str, StringConstraints(pattern=TOPIC_RE, max_length=120)]
Version = Annotated[str, StringConstraints(pattern=VERSION_RE)]
AgencyCode = Annotated[str, StringConstraints(pattern=AGENCY_CODE_RE)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=4000)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or a fragment")
    if parts.username or parts.password:
        raise ValueError("must not embed credentials; use the connector's auth instead")
    return value.rstrip("/")


HttpUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_http_url)]


def _json_pointer(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError("must be a JSON pointer (RFC 6901) starting with '/'")
    if re.search(r"~[^01]|~$", value):
        raise ValueError("has an invalid '~' escape (only ~0 and ~1 are allowed)")
    return value


JsonPointer = Annotated[str, StringConstraints(max_length=500), AfterValidator(_json_pointer)]


def pointer_tokens(pointer: str) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens."""
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at `pointer` in `document`, or None where the path does not exist."""
    node = document
    for token in pointer_tokens(pointer):
        if isinstance(node, dict):
            if token not in node:
                return None
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


class RuleError(ValueError):
    """A rule across fields, broken; raised by a model validator, naming the field it is about.

    Pydantic reports a model validator's error at the model itself; `error_location` adds `at`
    so the problem's pointer says which field to change (/legal_basis, /options/namespace).
    """

    def __init__(self, message: str, *, at: str) -> None:
        super().__init__(message)
        self.at: tuple[str, ...] = tuple(at.split("/"))


def error_location(error: Mapping[str, Any]) -> list[str | int]:
    """Where a pydantic error is, as path elements, with RuleError's field added."""
    loc: list[str | int] = [
        p
        for p in error.get("loc", ())
        # pydantic names the failing union member or validator in the location; drop those.
        if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
    ]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, RuleError):
        loc += list(cause.at)
    return loc


def as_utc(value: datetime | None) -> datetime | None:
    """In UTC: a naive value is taken as UTC already (SQLite hands back naive datetimes)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(StrEnum):
    """What a management key may do."""

    ADMINISTRATOR = "administrator"
    INTEGRATOR = "integrator"  # its own agency's connectors and services only
    AUDITOR = "auditor"  # read-only audit


class ConnectorKind(StrEnum):
    REST = "rest"
    SOAP = "soap"


class AuthType(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    BASIC = "basic"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"


class ServiceStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class GrantStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class Delivery(StrEnum):
    """How a subscription receives its topic's messages."""

    PUSH = "push"  # signed HTTP POSTs (Standard Webhooks) to an endpoint of a connector
    GROUP = "group"  # a consumer group reads the topic itself (Kafka, or the hub's pull API)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by an operator; resumes where it stopped
    DISABLED = "disabled"  # the receiver answered 410 Gone; resumed by an operator
