"""What every HTTP-based connector reads from its registry row, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.http import MAX_BODY_BYTES, ClientSettings
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
            ),
            retry=RetryPolicy.model_validate(row.retry or {}),
            auth=row.auth_config(),
            options=ConnectorOptions.model_validate(row.options or {}),
            attempt_deadline=row.attempt_deadline_or_default(),
            max_body=max_body,
        )
