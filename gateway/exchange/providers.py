"""A provider's failure, or its answer outside the route's contract, as the consumer's problem:
which provider, what failed, after how many attempts (the mapping of connectors/errors.py's
classes to HTTP statuses lives here, once)."""

from __future__ import annotations

import math
from typing import Any

from connectors import errors as ce
from connectors.breaker import CircuitOpen
from gateway.problems import Problem
from registry.types import pointer

MAX_ERRORS = 50


def connector_problem(exc: ce.ConnectorError, connector: str) -> Problem:
    attempts = f" after {exc.attempts} attempt{'s' if exc.attempts != 1 else ''}"
    extra: dict[str, Any] = {"attempts": exc.attempts}
    if exc.provider_status is not None:
        extra["provider_status"] = exc.provider_status
    if isinstance(exc, ce.RequestNotMappable):
        return Problem(
            400,
            "request-not-mappable",
            "The request cannot be sent to the provider",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.SoapFault):
        extra["fault"] = exc.body
        return Problem(
            exc.status,
            "provider-fault",
            "The provider answered with a fault",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.ProviderRejected):
        status = exc.provider_status or 400
        if isinstance(exc.body, dict):
            extra["provider_detail"] = exc.body
        return Problem(
            status,
            "provider-rejected",
            "The provider rejected the request",
            f"{connector} answered {status}: {exc.detail}",
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamTimeout):
        if isinstance(exc, ce.DeadlinePassed):
            extra["deadline"] = exc.deadline  # "attempt" or "exchange"
            extra["deadline_seconds"] = exc.seconds
        return Problem(
            504,
            "provider-timeout",
            "The provider did not answer in time",
            f"{connector}: {exc.detail}{attempts}",
            extra=extra,
        )
    if isinstance(exc, CircuitOpen):
        extra["retry_after"] = max(1, math.ceil(exc.retry_after or 0))
        return Problem(
            503,
            "provider-circuit-open",
            "The provider is unavailable",
            f"{connector}: {exc.detail}; nothing was sent",
            headers={"retry-after": str(extra["retry_after"])},
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamOverloaded):
        headers: dict[str, str] = {}
        status = 503 if exc.provider_status in (429, 503) else 502
        if status == 503 and exc.retry_after is not None:
            headers["retry-after"] = str(max(1, round(exc.retry_after)))
        return Problem(
            status,
            "provider-unavailable",
            "The provider is unavailable",
            f"{connector}: {exc.detail}{attempts}",
            headers=headers,
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamUnavailable):
        return Problem(
            502,
            "provider-unreachable",
            "The provider could not be reached",
            f"{connector}: {exc.detail}{attempts}",
            extra=extra,
        )
    if isinstance(exc, ce.UpstreamAuthFailed):
        return Problem(
            502,
            "provider-auth-failed",
            "The provider refused the hub's credentials",
            f"{connector}: {exc.detail}",
            extra=extra,
        )
    return Problem(
        502,
        "provider-bad-response",
        "The provider's answer was unusable",
        f"{connector}: {exc.detail}{attempts}",
        extra=extra,
    )


def contract_errors(validator: Any, instance: Any) -> list[dict[str, str]]:
    """Where the provider broke its contract, without echoing its (ungranted) values."""
    if validator.is_valid(instance):
        return []
    errors = []
    for error in validator.iter_errors(instance):
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        errors.append(
            {
                "pointer": pointer(*error.instance_path),
                "message": f"fails '{keyword}' at schema {pointer(*error.schema_path)}",
            }
        )
        if len(errors) >= MAX_ERRORS:
            break
    return errors
