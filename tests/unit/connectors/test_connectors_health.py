"""Health states move only past their thresholds; a connector is as healthy as its best URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.health import Health, Tracker, overall
from registry.connector_settings import HealthCheck

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
SIGN = {Health.UNKNOWN: "?", Health.HEALTHY: "+", Health.UNHEALTHY: "-"}


def tracker() -> Tracker:
    return Tracker(HealthCheck(healthy_threshold=2, unhealthy_threshold=3), since=T0)


def test_thresholds_of_consecutive_outcomes() -> None:
    t = tracker()
    seen = []
    outcomes = [True, True, False, False, True, False, False, False, True, True]
    for i, ok in enumerate(outcomes):
        t.observe(ok, None if ok else "could not connect", T0 + timedelta(seconds=i))
        seen.append(SIGN[t.state])
    assert "".join(seen) == "?++++++--+"
    assert t.since == T0 + timedelta(seconds=9)
    assert t.last_error == "could not connect"


def test_unhealthy_after_the_threshold_and_since_when() -> None:
    t = tracker()
    for i in range(3):
        t.observe(False, f"failure {i}", T0 + timedelta(seconds=i))
    assert (t.state, t.since, t.last_error) == (Health.UNHEALTHY, T0 + timedelta(seconds=2),
                                                "failure 2")  # fmt: skip


def test_a_connector_is_healthy_when_one_url_is() -> None:
    up, down, new = tracker(), tracker(), tracker()
    up.state, down.state = Health.HEALTHY, Health.UNHEALTHY
    assert overall([down, up]) is Health.HEALTHY
    assert overall([down, down]) is Health.UNHEALTHY
    assert overall([down, new]) is Health.UNKNOWN
