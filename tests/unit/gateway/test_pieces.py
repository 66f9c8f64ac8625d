"""Small pure pieces of the gateway: trace context, request ids, path templates, keys, settings."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.exchange.calls import trace_context, valid_request_id
from gateway.runtime.snapshot import compile_path
from gateway.settings import Settings
from registry import keys


def test_traceparent_is_continued_with_a_new_span():
    trace_id, sent = trace_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    version, trace, span, flags = sent.split("-")
    assert (version, trace, flags) == ("00", trace_id, "01")
    assert span != "00f067aa0ba902b7" and len(span) == 16


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        "00-XYZ-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
)
def test_invalid_traceparent_starts_a_newtrace_context(bad):
    trace_id, sent = trace_context(bad)
    assert len(trace_id) == 32 and sent.startswith(f"00-{trace_id}-")


def test_request_ids():
    assert valid_request_id("req-1")
    assert not valid_request_id("")
    assert not valid_request_id("x" * 129)
    assert not valid_request_id("bad\nid")
    assert not valid_request_id("không-ascii")


def test_path_templates():
    pattern = compile_path("/cong-dan/{so_dinh_danh}/ho-so/{ma}")
    match = pattern.match("/cong-dan/012090001234/ho-so/H12.99")
    assert match and match.groupdict() == {"so_dinh_danh": "012090001234", "ma": "H12.99"}
    assert pattern.match("/cong-dan/a/b/ho-so/c") is None  # a parameter is one segment
    assert compile_path("/a.b").match("/aXb") is None  # literal dots stay literal


def test_keys_round_trip_and_compare():
    issued = keys.issue_key(pepper="p")
    parsed = keys.parse_key(issued.key)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == issued.key_id
    assert keys.secret_matches(secret, issued.key_hash, pepper="p")
    assert not keys.secret_matches(secret, issued.key_hash, pepper="other")
    assert issued.key not in issued.key_hash and secret not in issued.key_hash
    assert keys.parse_key("lgsp_short.x") is None


def test_settings_refuse_default_secrets_outside_development():
    with pytest.raises(ValueError, match="LGSP_KEY_PEPPER"):
        Settings(environment="production", subject_hmac_key="s" * 40)
    with pytest.raises(ValueError, match="LGSP_SUBJECT_HMAC_KEY"):
        Settings(environment="production", key_pepper="k" * 40, subject_hmac_key="short")
    strong: dict[str, Any] = {"key_pepper": "k" * 40, "subject_hmac_key": "s" * 40}
    with pytest.raises(ValueError, match="LGSP_AUDIT_KEY_FILE"):
        Settings(environment="production", **strong)
    with pytest.raises(ValueError, match="LGSP_SECRETS_KEY_FILE"):
        Settings(environment="production", audit_key_file="/etc/lgsp/audit.key", **strong)
    ok = Settings(
        environment="production",
        audit_key_file="/etc/lgsp/audit.key",
        secrets_key_file="/etc/lgsp/secrets.key",
        **strong,
    )
    assert ok.environment == "production"
