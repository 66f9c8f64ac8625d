"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver verifies.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; each signature is `v1,` and the
base64 HMAC-SHA256 under one secret. During a secret's rotation the hub signs with every current
secret, space-separated, so a receiver holding either the old or the new one accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def signature(secrets: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in secrets
    )


def headers(
    secrets: Sequence[bytes], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature header without a secret)."""
    out = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        out["webhook-signature"] = signature(secrets, message_id, timestamp, body)
    return out
