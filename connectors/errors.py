"""Errors raised by connectors, mapped from transport and provider failures at this edge, once.

    ConnectorError                 root; carries attempts, provider status and a sentence
    ├── Transient                  a retry may help
    │   ├── UpstreamUnavailable    connection refused/reset, DNS           -> 502
    │   ├── UpstreamTimeout        connect or read timeout, 408            -> 504
    │   │   └── DeadlinePassed     an attempt or the whole exchange ran past its deadline
    │   │                          (it names which, and its value)        -> 504
    │   └── UpstreamOverloaded     503, 429 (Retry-After honoured), 502/504 from the provider
    │                                                                      -> 503/502
    └── Terminal                   a retry will not help
        ├── UpstreamBadResponse    garbage, wrong content type, invalid XML/JSON -> 502
        ├── UpstreamAuthFailed     the provider refused the hub's credentials     -> 502
        ├── ProviderRejected       the provider answered 4xx about the request    -> same 4xx
        ├── SoapFault              a SOAP fault; its code maps to a status         -> mapped
        └── RequestNotMappable     the request cannot be put in the provider's format
                                   (a JSON key that is not an XML name); nothing sent -> 400
The gateway maps each class to an HTTP status, once (gateway/exchange/providers.py); the retry
policy reads only the Transient/Terminal marker, plus `request_sent`: a failure raised
before any byte of the request left the hub (connection refused, connect timeout, token endpoint
down or too slow) is safe to retry even for a route that is not idempotent. A deadline that
passes once the request was handed to the HTTP client counts as sent: the hub cannot tell
whether it left.

Messages reach consumers: they say which side failed (the provider, the token endpoint), the
status and what was wrong, never a secret nor a host name inside the province's network.
"""

from __future__ import annotations

from typing import Any, Literal

Deadline = Literal["attempt", "exchange"]


class ConnectorError(Exception):
    """A provider call that did not produce a usable answer."""

    def __init__(
        self,
        detail: str,
        *,
        provider_status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.provider_status = provider_status
        self.retry_after = retry_after
        self.body = body  # what the provider said, when it said something parseable
        self.attempts = 1  # set by the retry loop to the number of attempts made
        self.request_sent = request_sent  # False: the provider certainly never saw the request

    def __repr__(self) -> str:
        status = f", provider_status={self.provider_status}" if self.provider_status else ""
        return f"{type(self).__name__}({self.detail!r}{status}, attempts={self.attempts})"


class Transient(ConnectorError):
    """A retry may help: timeouts, refused connections, 502/503/504, 429."""


class Terminal(ConnectorError):
    """A retry will not help: 4xx, contract violations, garbage."""


class UpstreamUnavailable(Transient):
    pass


class UpstreamTimeout(Transient):
    pass


class DeadlinePassed(UpstreamTimeout):
    """An attempt, or the exchange with its retries, did not finish within its deadline."""

    def __init__(self, detail: str, *, deadline: Deadline, seconds: float, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.deadline = deadline
        self.seconds = seconds  # the deadline's value


class UpstreamOverloaded(Transient):
    pass


class UpstreamBadResponse(Terminal):
    pass


class UpstreamAuthFailed(Terminal):
    pass


class ProviderRejected(Terminal):
    pass


class SoapFault(Terminal):
    def __init__(self, detail: str, *, code: str, status: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.code = code  # e.g. "soap:Client" or the provider's detail code
        self.status = status  # HTTP status the gateway answers with


class RequestNotMappable(Terminal):
    """The consumer's request cannot be expressed in the provider's format; nothing was sent."""
