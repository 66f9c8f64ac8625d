"""What every HTTP-based connector reads from its registry row, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.http import MAX_BODY_BYTES, ClientSettings
from registry.connector_settings import BreakerPolicy, Failover, HealthCheck
from registry.models import Connector, ConnectorAuth, ConnectorOptions, RetryPolicy


@dataclass(frozen=True, slots=True)
class HttpConfig:
    name: str
    base_url: str  # without a trailing slash
    client: ClientSettings
    retry: RetryPolicy
    auth: ConnectorAuth
    options: ConnectorOptions
    attempt_deadline: float  # the exchange deadline is retry.max_delay (connectors/deadline.py)
    max_body: int = MAX_BODY_BYTES
    base_urls: tuple[str, ...] = ()  # every URL, base_url first (connectors/failover.py)
    failover: Failover = Failover.IN_ORDER
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    health: HealthCheck = field(default_factory=HealthCheck)
    health_path: str | None = None  # None: no active health checks

    @property
    def urls(self) -> tuple[str, ...]:
        return self.base_urls or (self.base_url,)

    def __repr__(self) -> str:
        return f"HttpConfig(name={self.name!r}, base_url={self.base_url!r})"

    @classmethod
    def from_row(cls, row: Connector, *, max_body: int = MAX_BODY_BYTES) -> HttpConfig:
        return cls(
            name=row.name,
            base_url=row.base_url.rstrip("/"),
            client=ClientSettings(
                max_connections=row.max_connections,
                connect_timeout=row.connect_timeout,
                read_timeout=row.read_timeout,
                tls=row.tls_config(),
            ),
            retry=RetryPolicy.model_validate(row.retry or {}),
            auth=row.auth_config(),
            options=ConnectorOptions.model_validate(row.options or {}),
            attempt_deadline=row.attempt_deadline_or_default(),
            max_body=max_body,
            base_urls=tuple(url.rstrip("/") for url in row.urls()),
            failover=Failover(row.failover),
            breaker=BreakerPolicy.model_validate(row.breaker or {}),
            health=HealthCheck.model_validate(row.health or {}),
            health_path=row.health_path,
        )
