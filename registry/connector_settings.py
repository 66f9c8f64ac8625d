"""How a connector guards its provider: health checks, circuit breaker, failover, mutual TLS.

Declared per connector in the admin API and manifests; each block has sane defaults, so a
connector that says nothing gets a breaker and no health checks (no `health_path`).

    health:   {interval, timeout, healthy_threshold, unhealthy_threshold}   (path: health_path)
    breaker:  {enabled, failures, window, cool_down}
    base_urls: [...], failover: in_order | round_robin
    tls:      {client_cert, client_key (write-only), ca_bundle}             (PEM text)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from registry.types import RuleError

MAX_PEM = 64 * 1024

# A path on every base URL, without query or fragment: "/health", "/ws/status".
HealthPath = Annotated[str, StringConstraints(pattern=r"^/[^?#\s]{0,499}$")]


class Failover(StrEnum):
    IN_ORDER = "in_order"  # always the first URL first; the next ones only when it fails
    ROUND_ROBIN = "round_robin"  # calls start on each URL in turn; a failure moves to the next


class HealthCheck(BaseModel):
    """Active checks of `GET {base_url}{health_path}`, run by each hub process."""

    model_config = ConfigDict(extra="forbid")

    interval: float = Field(default=10.0, gt=0, le=3600)  # seconds between two checks
    timeout: float = Field(default=2.0, gt=0, le=60)  # one check whole
    healthy_threshold: int = Field(default=2, ge=1, le=100)  # successes in a row to be healthy
    unhealthy_threshold: int = Field(default=3, ge=1, le=100)  # failures in a row: unhealthy

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> HealthCheck:
        if self.timeout > self.interval:
            raise RuleError(
                f"the timeout ({self.timeout:g} s) cannot exceed the interval "
                f"({self.interval:g} s)",
                at="timeout",
            )
        return self


class BreakerPolicy(BaseModel):
    """After `failures` transient failures within `window` seconds the circuit opens: calls are
    answered 503 at once for `cool_down` seconds, then one probe call decides."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    failures: int = Field(default=5, ge=1, le=1000)
    window: float = Field(default=30.0, gt=0, le=3600)
    cool_down: float = Field(default=15.0, gt=0, le=3600)


def _certificates(pem: str, at: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise RuleError("is not a PEM certificate (-----BEGIN CERTIFICATE-----)", at=at) from None
    return certificates


class ConnectorTls(BaseModel):
    """Mutual TLS towards the provider and the CA that signs its certificate; PEM text.

    `client_key` is write-only (stored apart, in `Connector.tls_key`, never returned).
    """

    model_config = ConfigDict(extra="forbid")

    client_cert: str | None = Field(default=None, max_length=MAX_PEM)  # the chain, leaf first
    client_key: SecretStr | None = Field(default=None)
    ca_bundle: str | None = Field(default=None, max_length=MAX_PEM)  # else the system's CAs

    @field_validator("client_key")
    @classmethod
    def _key_size(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) > MAX_PEM:
            raise ValueError(f"must be at most {MAX_PEM} characters")
        return value

    @model_validator(mode="after")
    def _pem(self) -> ConnectorTls:
        if self.ca_bundle is not None:
            _certificates(self.ca_bundle, "ca_bundle")
        if self.client_cert is None and self.client_key is None:
            return self
        if self.client_cert is None:
            raise RuleError("a client key needs its client_cert", at="client_cert")
        if self.client_key is None:
            raise RuleError("a client certificate needs its client_key", at="client_key")
        leaf = _certificates(self.client_cert, "client_cert")[0]
        try:
            key = serialization.load_pem_private_key(
                self.client_key.get_secret_value().encode(), password=None
            )
        except (ValueError, TypeError):
            # Never quote the key: the message says what is wrong, not what was sent.
            raise RuleError(
                "is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)",
                at="client_key",
            ) from None
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise RuleError("does not belong to client_cert", at="client_key")
        return self

    @property
    def mutual(self) -> bool:
        return self.client_cert is not None
