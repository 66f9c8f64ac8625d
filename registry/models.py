"""The registry's entities, each as a SQLModel family (Base, Create, Update, Public, table).

Nouns as in DESIGN.md: agencies, connectors, services (with routes), consumers (with API keys),
grants (sharing agreements), and principals (management keys with a role).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    field_validator,
    model_validator,
)
from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.connector_settings import (
    BreakerPolicy,
    ConnectorTls,
    Failover,
    HealthCheck,
    HealthPath,
)
from registry.limits import Quota, RateLimit
from registry.sealing import NotOpened, is_sealed
from registry.types import (
    NEVER_REUSED,
    AgencyCode,
    AuthType,
    ConnectorKind,
    Delivery,
    GrantStatus,
    HttpMethod,
    HttpUrl,
    JsonPointer,
    Role,
    RuleError,
    ServiceStatus,
    Slug,
    SubscriptionStatus,
    Text,
    Title,
    TopicName,
    Version,
    as_utc,
    utcnow,
)
from schemas.models import SchemaRef

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]

PATH_TEMPLATE_RE = re.compile(r"^(/(?:[A-Za-z0-9._~-]+|\{[a-z_][a-z0-9_]*\}))*/?$")
XML_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# ---------------------------------------------------------------- agencies


class AgencyBase(SQLModel):
    code: AgencyCode = Field(primary_key=True, max_length=20)
    name: Title
    description: Text = ""


class AgencyCreate(AgencyBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class AgencyUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    name: Title | None = None
    description: Text | None = None


class AgencyPublic(AgencyBase):
    pass


class Agency(AgencyBase, table=True):
    pass


# ---------------------------------------------------------------- connectors


class ConnectorAuth(BaseModel):
    """How the hub authenticates towards the provider; `secret` is write-only."""

    model_config = ConfigDict(extra="forbid")

    type: AuthType = AuthType.NONE
    header: str | None = None  # api_key: header name (default X-API-Key)
    username: str | None = None  # basic
    token_url: HttpUrl | None = None  # oauth2_client_credentials
    client_id: str | None = None
    scope: str | None = None
    secret: SecretStr | None = None  # api key, password or client secret

    @model_validator(mode="after")
    def _fields_for_type(self) -> ConnectorAuth:
        needs: dict[AuthType, tuple[str, ...]] = {
            AuthType.NONE: (),
            AuthType.API_KEY: ("secret",),
            AuthType.BASIC: ("username", "secret"),
            AuthType.OAUTH2_CLIENT_CREDENTIALS: ("token_url", "client_id", "secret"),
        }
        missing = [f for f in needs[self.type] if getattr(self, f) in (None, "")]
        if missing:
            raise RuleError(
                f"auth type {self.type.value} needs {', '.join(missing)}", at=missing[0]
            )
        if self.type is AuthType.NONE and self.secret is not None:
            raise RuleError("auth type none takes no secret", at="secret")
        return self


class ConnectorOptions(BaseModel):
    """Kind-specific settings: SOAP needs its namespace and version."""

    model_config = ConfigDict(extra="forbid")

    soap_version: Literal["1.1", "1.2"] = "1.1"
    namespace: str | None = None
    headers: dict[str, str] = {}  # static headers sent upstream (never secrets: use auth)


class RetryPolicy(BaseModel):
    """How a failing call is retried, and the exchange deadline: `max_delay` bounds every attempt
    and every wait between them (connectors/deadline.py)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_initial: float = Field(default=0.05, ge=0, le=10)
    backoff_max: float = Field(default=2.0, ge=0, le=60)
    max_delay: float = Field(default=10.0, gt=0, le=120)  # the exchange deadline, in seconds


class ConnectorBase(SQLModel):
    name: Slug = Field(index=True, unique=True, max_length=63)
    agency_code: AgencyCode = Field(foreign_key="agency.code", max_length=20)
    kind: ConnectorKind
    base_url: HttpUrl
    description: Text = ""
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    read_timeout: float = Field(default=10.0, gt=0, le=300)  # between two reads of an answer
    # One attempt whole (connection, token, request, the whole answer); None: connect + read.
    # It never runs past the exchange deadline, retry.max_delay, which is at most 120 s.
    attempt_deadline: float | None = Field(default=None, gt=0, le=120)
    max_connections: int = Field(default=100, ge=1, le=1000)
    # Calls to the provider at once, per hub process (None: up to max_connections), and how
    # many more may wait for a slot, each at most max_wait_seconds (gateway/exchange/limits.py).
    max_in_flight: int | None = Field(default=None, ge=1, le=1000)
    max_waiting: int = Field(default=0, ge=0, le=10_000)
    max_wait_seconds: float = Field(default=5.0, gt=0, le=120)
    # GET {each base URL}{health_path}: active health checks (registry/connector_settings.py).
    health_path: HealthPath | None = None

    def attempt_deadline_or_default(self) -> float:
        """The attempt deadline in force (the exchange deadline may cut it shorter)."""
        if self.attempt_deadline is not None:
            return self.attempt_deadline
        return self.connect_timeout + self.read_timeout


MAX_BASE_URLS = 10


class ConnectorCreate(ConnectorBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    auth: ConnectorAuth = ConnectorAuth()
    options: ConnectorOptions = ConnectorOptions()
    retry: RetryPolicy = RetryPolicy()
    # Every URL of the provider, `base_url` first (given alone, it is the only one).
    base_urls: list[HttpUrl] | None = Field(default=None, min_length=1, max_length=MAX_BASE_URLS)
    failover: Failover = Failover.IN_ORDER
    health: HealthCheck = HealthCheck()
    breaker: BreakerPolicy = BreakerPolicy()
    tls: ConnectorTls | None = None

    @model_validator(mode="before")
    @classmethod
    def _base_url_from_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("base_url") is None:
            urls = data.get("base_urls")
            if isinstance(urls, list) and urls:
                return {**data, "base_url": urls[0]}
        return data

    @model_validator(mode="after")
    def _base_urls(self) -> ConnectorCreate:
        if self.base_urls is None:
            self.base_urls = [self.base_url]
        elif self.base_urls[0] != self.base_url:
            raise RuleError("the first of base_urls must be base_url", at="base_urls/0")
        if len(set(self.base_urls)) != len(self.base_urls):
            raise RuleError("lists a URL twice", at="base_urls")
        return self

    @model_validator(mode="after")
    def _kind_options(self) -> ConnectorCreate:
        if self.kind is ConnectorKind.SOAP and not self.options.namespace:
            raise RuleError("a soap connector needs options.namespace", at="options/namespace")
        return self

    @model_validator(mode="after")
    def _deadlines(self) -> ConnectorCreate:
        if self.attempt_deadline is not None and self.attempt_deadline > self.retry.max_delay:
            raise RuleError(
                f"the attempt deadline ({self.attempt_deadline:g} s) cannot exceed the exchange "
                f"deadline, retry.max_delay ({self.retry.max_delay:g} s)",
                at="attempt_deadline",
            )
        return self


class ConnectorUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    base_url: HttpUrl | None = None
    description: Text | None = None
    connect_timeout: float | None = Field(default=None, gt=0, le=60)
    read_timeout: float | None = Field(default=None, gt=0, le=300)
    attempt_deadline: float | None = Field(default=None, gt=0, le=120)  # null: the default
    max_connections: int | None = Field(default=None, ge=1, le=1000)
    max_in_flight: int | None = Field(default=None, ge=1, le=1000)  # null: no limit
    max_waiting: int | None = Field(default=None, ge=0, le=10_000)
    max_wait_seconds: float | None = Field(default=None, gt=0, le=120)
    health_path: HealthPath | None = None
    auth: ConnectorAuth | None = None
    options: ConnectorOptions | None = None
    retry: RetryPolicy | None = None
    base_urls: list[HttpUrl] | None = Field(default=None, min_length=1, max_length=MAX_BASE_URLS)
    failover: Failover | None = None
    health: HealthCheck | None = None
    breaker: BreakerPolicy | None = None
    tls: ConnectorTls | None = None  # a given `tls` replaces the whole block, key included


class ConnectorPublic(ConnectorBase):
    id: int
    auth: dict[str, Any]
    options: dict[str, Any]
    retry: dict[str, Any]
    base_urls: list[str]
    failover: Failover
    health: dict[str, Any]
    breaker: dict[str, Any]
    tls: dict[str, Any] | None  # client_cert, ca_bundle and `client_key_set`, never the key


class Connector(ConnectorBase, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    auth_params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Sealed (registry/sealing.py): a 4000-character secret takes about 5400 once sealed.
    secret: str | None = Field(default=None, max_length=8000)  # write-only, never returned
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    retry: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    base_urls: list[str] = Field(default_factory=list, sa_column=Column(JSON))  # [] : [base_url]
    failover: str = Field(default=Failover.IN_ORDER.value, max_length=20)
    health: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    breaker: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    tls: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))  # without the key
    tls_key: str | None = Field(default=None, max_length=70000)  # write-only, never returned

    def auth_config(self) -> ConnectorAuth:
        """The credentials to use; the secret must be opened first
        (registry.crud.connectors.with_secret_opened), never sent sealed."""
        if self.secret is not None and is_sealed(self.secret):
            raise NotOpened(f"connector {self.name}: its secret is sealed; open it first")
        return ConnectorAuth.model_validate(
            {**self.auth_params, "secret": self.secret} if self.secret else self.auth_params
        )

    def urls(self) -> list[str]:
        """Every base URL, the first being `base_url`."""
        return list(self.base_urls or []) or [self.base_url]

    def tls_config(self) -> ConnectorTls | None:
        if self.tls is None:
            return None
        return ConnectorTls.model_validate({**self.tls, "client_key": self.tls_key})

    def to_public(self) -> ConnectorPublic:
        auth = dict(self.auth_params)
        auth["secret_set"] = self.secret is not None
        tls = None if self.tls is None else {**self.tls, "client_key_set": self.tls_key is not None}
        return ConnectorPublic.model_validate(
            {
                **self.model_dump(exclude={"auth_params", "secret", "tls_key"}),
                "auth": auth,
                "base_urls": self.urls(),
                "health": HealthCheck.model_validate(self.health or {}).model_dump(mode="json"),
                "breaker": BreakerPolicy.model_validate(self.breaker or {}).model_dump(mode="json"),
                "tls": tls,
            }
        )


# ---------------------------------------------------------------- services


class Route(BaseModel):
    """One operation of a service: the consumer-facing method and path, and what it maps to."""

    model_config = ConfigDict(extra="forbid")

    method: HttpMethod
    path: str = Field(max_length=300)  # template, e.g. /cong-dan/{so_dinh_danh}
    # rest: where to send it upstream (defaults to the same method and path)
    upstream_method: HttpMethod | None = None
    upstream_path: str | None = Field(default=None, max_length=300)
    # soap: the operation (request element), its SOAPAction, JSON field -> XML element names
    operation: str | None = None
    soap_action: str | None = None
    field_map: dict[str, str] = {}
    fault_status: dict[str, int] = {}  # SOAP fault code (or detail code) -> HTTP status
    # Contracts, as registered schema versions: path + query parameters (as one object),
    # request body, response body.
    params_schema: SchemaRef | None = None
    request_schema: SchemaRef | None = None
    response_schema: SchemaRef | None = None
    request_id_field: str | None = None  # body field set to the exchange's request id (MaYeuCau)
    idempotent: bool | None = None  # default: GET, PUT, DELETE yes; POST, PATCH no
    subject_pointer: JsonPointer | None = None  # overrides the service's

    @field_validator("path", "upstream_path")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and not PATH_TEMPLATE_RE.match(value):
            raise ValueError(
                "must be a path template such as /cong-dan/{so_dinh_danh} "
                "(segments of letters, digits, '._~-', or {snake_case} parameters)"
            )
        return value

    @field_validator("operation")
    @classmethod
    def _xml_name(cls, value: str | None) -> str | None:
        if value is not None and not XML_NAME_RE.match(value):
            raise ValueError("must be an XML element name")
        return value

    @field_validator("fault_status")
    @classmethod
    def _statuses(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [code for code, status in value.items() if not 400 <= status <= 599]
        if bad:
            raise ValueError(f"statuses must be 4xx or 5xx (see {', '.join(bad)})")
        return value

    @cached_property
    def reverse_field_map(self) -> dict[str, str]:
        """XML element name -> JSON field name, for reading replies (computed once per route)."""
        return {xml: name for name, xml in self.field_map.items()}

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in (HttpMethod.GET, HttpMethod.PUT, HttpMethod.DELETE)


class ServiceBase(SQLModel):
    name: Slug = Field(max_length=63)
    version: Version = Field(max_length=8)
    connector: Slug = Field(max_length=63)
    title: Title
    description: Text = ""
    status: ServiceStatus = ServiceStatus.DRAFT
    personal_data: bool = False
    subject_pointer: JsonPointer | None = None  # into {"path":…, "query":…, "body":…}
    # Lifecycle dates the integrator announces (RFC 9745 Deprecation, RFC 8594 Sunset headers);
    # deprecated_at is set to the moment of deprecation when the integrator gave none.
    deprecated_at: UtcDatetime | None = None
    sunset_at: UtcDatetime | None = None


def _check_lifecycle(deprecated_at: datetime | None, sunset_at: datetime | None) -> None:
    if deprecated_at is not None and sunset_at is not None and sunset_at < deprecated_at:
        raise RuleError("the sunset cannot come before the deprecation", at="sunset_at")


def _check_routes(routes: list[Route]) -> None:
    seen: set[tuple[str, str]] = set()
    for route in routes:
        shape = re.sub(r"\{[^}]+\}", "{}", route.path)
        if (route.method, shape) in seen:
            raise ValueError(f"two routes answer {route.method.value} {route.path}")
        seen.add((route.method, shape))


class ServiceCreate(ServiceBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    routes: list[Route] = Field(min_length=1)

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, value: list[Route]) -> list[Route]:
        _check_routes(value)
        return value

    @model_validator(mode="after")
    def _subject_known(self) -> ServiceCreate:
        if (
            self.personal_data
            and not self.subject_pointer
            and not all(r.subject_pointer for r in self.routes)
        ):
            raise RuleError(
                "a service with personal data needs subject_pointer (or one on every route)",
                at="subject_pointer",
            )
        _check_lifecycle(self.deprecated_at, self.sunset_at)
        return self


class ServiceUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    connector: Slug | None = None
    title: Title | None = None
    description: Text | None = None
    status: ServiceStatus | None = None
    personal_data: bool | None = None
    subject_pointer: JsonPointer | None = None
    deprecated_at: UtcDatetime | None = None
    sunset_at: UtcDatetime | None = None
    routes: list[Route] | None = Field(default=None, min_length=1)

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, value: list[Route] | None) -> list[Route] | None:
        if value is not None:
            _check_routes(value)
        return value


class ServicePublic(ServiceBase):
    id: int
    agency_code: str
    routes: list[Route]
    retired_at: datetime | None = None


class Service(ServiceBase, table=True):
    __table_args__ = (UniqueConstraint("name", "version"), NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True)
    agency_code: str = Field(foreign_key="agency.code", max_length=20)
    routes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    retired_at: datetime | None = None  # set by the hub when the version is retired

    def route_models(self) -> list[Route]:
        return [Route.model_validate(r) for r in self.routes]


# ---------------------------------------------------------------- consumers and keys


class ConsumerBase(SQLModel):
    name: Slug = Field(index=True, unique=True, max_length=63)
    agency_code: AgencyCode = Field(foreign_key="agency.code", max_length=20)
    title: Title
    description: Text = ""
    active: bool = True


class ConsumerCreate(ConsumerBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class ConsumerUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    title: Title | None = None
    description: Text | None = None
    active: bool | None = None


class ConsumerPublic(ConsumerBase):
    id: int


class Consumer(ConsumerBase, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)


class ApiKeyCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    label: str = Field(default="", max_length=100)
    expires_at: UtcDatetime | None = None


class ApiKeyPublic(SQLModel):
    key_id: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyPublic):
    key: str  # shown once


class ApiKey(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    consumer_id: int = Field(foreign_key="consumer.id", index=True)
    key_id: str = Field(index=True, unique=True, max_length=32)
    key_hash: str = Field(max_length=128)
    label: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


# ---------------------------------------------------------------- OAuth2 clients and token keys

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
PRIVATE_KEY_JWT = "private_key_jwt"


class OAuthClientCreate(SQLModel):
    """A consumer's OAuth2 client: a secret (basic or post), or its public keys (private_key_jwt,
    RFC 7523), given inline as a JWK set or as the URL where the consumer publishes them."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    label: str = Field(default="", max_length=100)
    token_endpoint_auth_method: TokenAuthMethod = "client_secret_basic"  # noqa: S105
    jwks: dict[str, Any] | None = None
    jwks_uri: HttpUrl | None = None

    @model_validator(mode="after")
    def _keys_for_private_key_jwt(self) -> OAuthClientCreate:
        if self.token_endpoint_auth_method == PRIVATE_KEY_JWT:
            if (self.jwks is None) == (self.jwks_uri is None):
                raise RuleError("private_key_jwt needs exactly one of jwks or jwks_uri", at="jwks")
        elif self.jwks is not None or self.jwks_uri is not None:
            raise RuleError("jwks and jwks_uri are only for private_key_jwt", at="jwks")
        if self.jwks is not None:
            from registry.jwks import check_public_jwks  # joserfc, only when keys are given

            check_public_jwks(self.jwks)
        return self


class OAuthClientPublic(SQLModel):
    client_id: str
    label: str
    token_endpoint_auth_method: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class OAuthClientIssued(OAuthClientPublic):
    client_secret: str | None  # shown once (None for private_key_jwt)


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    consumer_id: int = Field(foreign_key="consumer.id", index=True)
    client_id: str = Field(index=True, unique=True, max_length=40)
    label: str = Field(default="", max_length=100)
    token_endpoint_auth_method: str = Field(max_length=32)
    secret_hash: str | None = Field(default=None, max_length=128)
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    jwks_uri: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


class SigningKey(SQLModel, table=True):
    """A key the hub signs access tokens with; the newest unretired one signs, every key whose
    tokens may still be alive is published (JWKS), so every worker and replica agrees."""

    __tablename__ = "token_signing_key"
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(index=True, unique=True, max_length=64)
    alg: str = Field(max_length=16)
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    private_jwk: str  # sealed (registry/signing_keys.py)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class ConsumedAssertion(SQLModel, table=True):
    """A client assertion's jti (RFC 7523 §3), kept until it expires so it cannot be replayed."""

    __tablename__ = "oauth_consumed_assertion"
    client_id: str = Field(primary_key=True, max_length=40)
    jti: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(index=True)


class RevokedToken(SQLModel, table=True):
    """An access token revoked before its expiry (RFC 7009), refused until it expires."""

    __tablename__ = "oauth_revoked_token"
    jti: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=40)
    expires_at: datetime = Field(index=True)
    revoked_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- grants


class GrantBase(SQLModel):
    consumer: Slug = Field(max_length=63, index=True)
    service: Slug = Field(max_length=63, index=True)
    versions: list[str] = Field(default_factory=lambda: ["*"], sa_column=Column(JSON))
    purposes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields: list[str] = Field(default_factory=lambda: ["*"], sa_column=Column(JSON))
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    description: Text = ""


class GrantCreate(GrantBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    rate_limit: RateLimit | None = None  # registry/limits.py
    quota: Quota | None = None

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v != "*" and not re.match(r"^v[1-9][0-9]{0,3}$", v)]
        if not value or bad:
            raise ValueError("must list versions such as v1, or '*' for all")
        return value

    @field_validator("purposes")
    @classmethod
    def _purposes(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", p)]
        if bad:
            raise ValueError(f"purposes must be lowercase codes (see {', '.join(bad)})")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        bad = [
            f for f in value if f != "*" and not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", f)
        ]
        if bad:
            raise ValueError(f"fields are names or dotted paths, or '*' (see {', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _period(self) -> GrantCreate:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise RuleError("valid_until must be after valid_from", at="valid_until")
        return self


class GrantUpdate(SQLModel):
    """Changing terms sends an approved grant back to `requested`."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    versions: list[str] | None = None
    purposes: list[str] | None = None
    fields: list[str] | None = None
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    description: Text | None = None
    rate_limit: RateLimit | None = None  # null: none
    quota: Quota | None = None


class GrantDecision(SQLModel):
    """Approve, or refuse with a written reason and its legal basis."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    decision: Literal["approve", "refuse"]
    reason: Text | None = None
    legal_basis: Text | None = None

    @model_validator(mode="after")
    def _refusal_is_reasoned(self) -> GrantDecision:
        if self.decision == "refuse":
            missing = [
                name
                for name in ("reason", "legal_basis")
                if not (getattr(self, name) or "").strip()
            ]
            if missing:
                raise RuleError("a refusal must carry a reason and a legal basis", at=missing[0])
        return self


class GrantDecisionPublic(SQLModel):
    """One decision on a grant, as it was taken: kept when a later one replaces it."""

    status: GrantStatus  # approved, refused, or requested again (its terms changed)
    reason: str | None
    legal_basis: str | None
    decided_by: str | None
    decided_at: datetime


class GrantPublic(GrantBase):
    id: int
    status: GrantStatus
    reason: str | None
    legal_basis: str | None
    requested_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    rate_limit: RateLimit | None = None
    quota: Quota | None = None
    history: list[GrantDecisionPublic] = []  # every decision, oldest first


class Grant(GrantBase, table=True):
    # One agreement per consumer and service (its versions list covers several versions), so
    # manifests can name a grant by (consumer, service).
    __table_args__ = (UniqueConstraint("consumer", "service"), NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True)
    status: GrantStatus = GrantStatus.REQUESTED
    reason: str | None = None
    legal_basis: str | None = None
    requested_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    rate_limit: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    quota: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class GrantDecisionRow(SQLModel, table=True):
    """The history of a grant's decisions: who decided what, when, why and on what legal basis
    (Grant's own columns hold only the latest)."""

    __tablename__ = "grant_decision"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grant.id", index=True, ondelete="CASCADE")
    status: GrantStatus
    reason: str | None = None
    legal_basis: str | None = None
    decided_by: str | None = Field(default=None, max_length=63)
    decided_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- topics and subscriptions

# The largest message (its JSON value, encoded) a topic may allow. The Kafka backend sizes its
# requests and topics from it (messaging/kafka_broker.py, MAX_RECORD_BYTES).
MAX_MESSAGE_BYTES = 1_048_576


class TopicBase(SQLModel):
    name: TopicName = Field(index=True, unique=True, max_length=120)
    agency_code: AgencyCode = Field(foreign_key="agency.code", max_length=20)  # the owner
    title: Title
    description: Text = ""
    # The key field: a JSON pointer into each message (e.g. /MaHoSo). Messages with one key
    # keep their order, in the broker and in every delivery.
    key_pointer: JsonPointer | None = None
    partitions: int = Field(default=3, ge=1, le=64)
    retention_hours: int = Field(default=168, ge=1, le=24 * 365)
    max_message_bytes: int = Field(default=262_144, ge=256, le=MAX_MESSAGE_BYTES)


def _consumer_names(value: list[str]) -> list[str]:
    bad = [v for v in value if not re.match(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", v)]
    if bad:
        raise ValueError(f"must list consumer names (see {', '.join(bad)})")
    if len(set(value)) != len(value):
        raise ValueError("lists a consumer twice")
    return sorted(value)


class TopicCreate(TopicBase):
    """A topic: its messages follow `schema`; `publishers` and `subscribers` are the access
    rights its owner grants, as consumer names."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    schema_ref: SchemaRef = Field(alias="schema")
    publishers: list[str] = []
    subscribers: list[str] = []

    @field_validator("publishers", "subscribers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _consumer_names(value)


class TopicUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    title: Title | None = None
    description: Text | None = None
    schema_ref: SchemaRef | None = Field(default=None, alias="schema")
    retention_hours: int | None = Field(default=None, ge=1, le=24 * 365)
    max_message_bytes: int | None = Field(default=None, ge=256, le=MAX_MESSAGE_BYTES)
    publishers: list[str] | None = None
    subscribers: list[str] | None = None

    @field_validator("publishers", "subscribers")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _consumer_names(value)


class TopicPublic(TopicBase):
    model_config = ConfigDict(populate_by_name=True)  # type: ignore[assignment]
    id: int
    schema_ref: SchemaRef = Field(alias="schema")
    publishers: list[str]
    subscribers: list[str]


class Topic(TopicBase, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    schema_subject: str = Field(max_length=150)
    schema_version: int
    publishers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    subscribers: list[str] = Field(default_factory=list, sa_column=Column(JSON))

    @property
    def schema_ref(self) -> SchemaRef:
        return SchemaRef(subject=self.schema_subject, version=self.schema_version)

    def to_public(self) -> TopicPublic:
        # Read attribute by attribute: after a commit the row's state is loaded lazily.
        data = {name: getattr(self, name) for name in TopicPublic.model_fields}
        data["schema"] = self.schema_ref.model_dump()
        del data["schema_ref"]
        return TopicPublic.model_validate(data)


class MessageFilter(BaseModel):
    """Deliver only messages whose value at `pointer` is one of `values`."""

    model_config = ConfigDict(extra="forbid")

    pointer: JsonPointer
    values: list[str | int | bool] = Field(min_length=1, max_length=100)


class RetrySchedule(BaseModel):
    """When a push fails: wait delays[i] seconds (±jitter) before attempt i+2, the last delay
    repeating; give up (dead-letter) after max_attempts or once the first attempt is older than
    max_age_seconds."""

    model_config = ConfigDict(extra="forbid")

    delays: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0], min_length=1, max_length=20
    )
    jitter: float = Field(default=0.2, ge=0, le=1)
    max_attempts: int = Field(default=10, ge=1, le=100)
    max_age_seconds: float = Field(default=86_400.0, gt=0, le=7 * 86_400)
    timeout: float = Field(default=10.0, gt=0, le=120)  # per attempt, the whole answer included

    @field_validator("delays")
    @classmethod
    def _delays(cls, value: list[float]) -> list[float]:
        if any(d < 0 or d > 86_400 for d in value):
            raise ValueError("delays are seconds between 0 and 86400")
        return value


class SubscriptionBase(SQLModel):
    name: Slug = Field(index=True, unique=True, max_length=63)
    topic: TopicName = Field(index=True, max_length=120)
    consumer: Slug = Field(max_length=63)  # the subscribing application
    delivery: Delivery = Field(sa_type=String(16))
    # push: where to (the connector's base URL + path)
    connector: Slug | None = Field(default=None, max_length=63)
    path: str = Field(default="/", max_length=300)
    description: Text = ""


class SubscriptionCreate(SubscriptionBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    filter: MessageFilter | None = None
    retry: RetrySchedule = RetrySchedule()
    # Signing secrets (Standard Webhooks, whsec_ + base64); generated when absent. Write-only.
    secrets: list[SecretStr] | None = Field(default=None, max_length=5)

    @model_validator(mode="after")
    def _delivery_needs(self) -> SubscriptionCreate:
        if self.delivery is Delivery.PUSH and not self.connector:
            raise RuleError("a push subscription needs the connector to push to", at="connector")
        if self.delivery is Delivery.GROUP and self.connector:
            raise RuleError(
                "a group subscription reads the topic itself: no connector", at="connector"
            )
        if not self.path.startswith("/"):
            raise RuleError("the path starts with /", at="path")
        return self


class SubscriptionUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    connector: Slug | None = None
    path: str | None = Field(default=None, max_length=300)
    description: Text | None = None
    filter: MessageFilter | None = None
    retry: RetrySchedule | None = None


class SubscriptionPublic(SubscriptionBase):
    id: int
    filter: dict[str, Any] | None
    retry: dict[str, Any]
    status: SubscriptionStatus
    status_reason: str | None
    status_changed_at: datetime | None
    secrets_set: int
    replay_generation: int
    created_at: datetime


class Subscription(SubscriptionBase, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    filter: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    retry: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    secrets: list[str] = Field(default_factory=list, sa_column=Column(JSON))  # never returned
    status: SubscriptionStatus = Field(default=SubscriptionStatus.ACTIVE, sa_type=String(16))
    status_reason: str | None = Field(default=None, max_length=1000)
    status_changed_at: datetime | None = None
    # Bumped by a replay, so every replica's delivery restarts from the stored positions.
    replay_generation: int = 0
    # Delivery starts with the messages accepted from this moment on.
    created_at: datetime = Field(default_factory=utcnow)

    def retry_schedule(self) -> RetrySchedule:
        return RetrySchedule.model_validate(self.retry)

    def message_filter(self) -> MessageFilter | None:
        return None if self.filter is None else MessageFilter.model_validate(self.filter)

    def to_public(self) -> SubscriptionPublic:
        data = {
            name: getattr(self, name)
            for name in SubscriptionPublic.model_fields
            if name != "secrets_set"
        }
        return SubscriptionPublic.model_validate({**data, "secrets_set": len(self.secrets)})


# ---------------------------------------------------------------- principals (management keys)


class PrincipalBase(SQLModel):
    name: Slug = Field(index=True, unique=True, max_length=63)
    role: Role
    agency_code: AgencyCode | None = Field(default=None, foreign_key="agency.code", max_length=20)


class PrincipalCreate(PrincipalBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _integrators_have_an_agency(self) -> PrincipalCreate:
        if self.role is Role.INTEGRATOR and not self.agency_code:
            raise RuleError("an integrator belongs to an agency: set agency_code", at="agency_code")
        return self


class PrincipalPublic(PrincipalBase):
    id: int
    key_id: str
    created_at: datetime
    revoked_at: datetime | None


class PrincipalIssued(PrincipalPublic):
    key: str  # shown once


class Principal(PrincipalBase, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(index=True, unique=True, max_length=32)
    key_hash: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


# ---------------------------------------------------------------- change detection


class RegistryState(SQLModel, table=True):
    """One row whose revision every change bumps, so each replica knows when to reload."""

    id: int = Field(default=1, primary_key=True)
    revision: int = 0
