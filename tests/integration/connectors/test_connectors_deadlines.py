"""Deadlines against real providers on loopback: one that drips its answer, a slow one, a slow
token endpoint. Upper bounds on time are the deadline plus 3 s, for a loaded CI machine."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from connectors import UpstreamResponse, create_connector
from connectors.errors import ConnectorError, DeadlinePassed
from tests.integration.connectors.connector_upstreams import Provider, connector_row
from tests.integration.connectors.test_connectors_oauth2 import oauth_row
from tests.integration.connectors.test_connectors_rest import failure, request
from tests.integration.dripping import DrippingServer
from tests.wait import wait_until

SLACK = 3.0


def drip(key: str, fail: int = 0, slow: int = 9) -> str:
    return f"/drip/{key}/{fail}/{slow}"


def test_a_dripping_answer_is_cut_at_the_attempt_deadline_and_its_connection_closed(
    dripping: DrippingServer, unique: Any
) -> None:
    # No read waits more than 0.05 s: only a deadline on the whole answer stops it. Without one
    # set, the attempt deadline is connect + read timeout: 1.5 s.
    row = connector_row(dripping.url, connect_timeout=0.5, read_timeout=1.0)
    key, then = unique("cut"), unique("then")

    async def main() -> tuple[ConnectorError, float, UpstreamResponse]:
        connector = create_connector(row)
        try:
            started = time.monotonic()
            try:
                await connector.call(request("POST", drip(key), body={"a": 1}))
            except ConnectorError as exc:
                error = exc
            else:
                raise AssertionError("the dripping answer was waited for to its end")
            took = time.monotonic() - started
            # The same pool answers the next call (on a fresh connection).
            return error, took, await connector.call(request("GET", drip(then, 0, 0)))
        finally:
            await connector.aclose()

    error, took, after = asyncio.run(main())
    assert type(error) is DeadlinePassed
    assert error.detail == (
        "the provider did not finish its answer within the attempt deadline of 1.5 s"
    )
    assert (error.deadline, error.seconds) == ("attempt", 1.5)
    assert error.attempts == 1 and error.request_sent  # a POST under way: not retried
    assert took < 1.5 + SLACK
    assert after.status == 200 and after.body == {"key": then, "call": 1}
    # The half-read connection was closed, not put back in the pool.
    wait_until(lambda: dripping.keys[key].cut == 1, what="the provider to see its drip cut")
    assert dripping.keys[key].finished == 0


def test_a_provider_silent_past_the_attempt_deadline(provider: Provider, unique: Any) -> None:
    row = connector_row(provider.base_url, read_timeout=5.0, attempt_deadline=0.5)
    key = unique("silent")
    started = time.monotonic()
    error = failure(row, request("POST", "/slow/{k}/{s}", path_params={"k": key, "s": "2"}))
    assert type(error) is DeadlinePassed
    assert error.detail == "the provider did not answer within the attempt deadline of 0.5 s"
    assert error.attempts == 1 and error.request_sent
    assert time.monotonic() - started < 0.5 + SLACK


def test_retries_stop_when_no_whole_attempt_fits_in_the_exchange(
    dripping: DrippingServer, unique: Any
) -> None:
    # Just under three attempt deadlines: room for a late first attempt on a loaded machine.
    retry = {"max_attempts": 5, "backoff_initial": 0.01, "backoff_max": 0.01, "max_delay": 2.9}
    row = connector_row(
        dripping.url, connect_timeout=0.5, read_timeout=1.0, attempt_deadline=1, retry=retry
    )
    key = unique("twice")
    started = time.monotonic()
    error = failure(row, request("GET", drip(key)))
    assert type(error) is DeadlinePassed
    assert error.detail.endswith("within the attempt deadline of 1 s")
    # 0-1 s, 1-2 s: a third attempt would have had 0.9 s, less than the provider already used.
    assert error.attempts == 2
    assert time.monotonic() - started < 2.9 + SLACK
    assert dripping.keys[key].calls == 2
    wait_until(lambda: dripping.keys[key].cut == 2, what="both drips cut")


def test_a_retry_is_cut_at_the_exchange_deadline(dripping: DrippingServer, unique: Any) -> None:
    retry = {"max_attempts": 5, "backoff_initial": 0.01, "backoff_max": 0.01, "max_delay": 2}
    row = connector_row(
        dripping.url, connect_timeout=0.5, read_timeout=1.0, attempt_deadline=2, retry=retry
    )
    key = unique("capped")
    started = time.monotonic()
    error = failure(row, request("GET", drip(key, fail=1)))  # a 503 at once, then a drip
    assert type(error) is DeadlinePassed
    assert error.detail == (
        "the provider did not finish its answer within the exchange deadline of 2 s"
    )
    assert (error.deadline, error.seconds, error.attempts) == ("exchange", 2, 2)
    assert time.monotonic() - started < 2 + SLACK


def test_the_token_fetch_is_part_of_the_attempt(provider: Provider) -> None:
    """A token endpoint too slow for the attempt deadline: the provider never saw the request,
    so even a POST is tried again, while the exchange deadline leaves time for it."""
    provider.state.token_delay = 1.5
    row = oauth_row(provider)
    row.attempt_deadline = 0.5
    row.retry = {**row.retry, "max_attempts": 5, "max_delay": 1.45}
    started = time.monotonic()
    error = failure(row, request("POST", "/protected"))
    assert type(error) is DeadlinePassed
    assert error.detail == "the token endpoint did not answer within the attempt deadline of 0.5 s"
    assert error.request_sent is False
    assert error.attempts == 2  # 0-0.5 s, 0.5-1 s; 0.45 s left for a third
    assert provider.state.token_requests == 2
    assert provider.state.calls["protected"] == 0
    assert time.monotonic() - started < 1.45 + SLACK
