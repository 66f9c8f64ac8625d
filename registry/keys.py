"""API keys for consumers and principals: `lgsp_<key id>.<secret>`, stored as a keyed hash.

The key id is public (it names the key in listings and logs); the secret is hashed with
HMAC-SHA256 under the server's pepper, so a stolen database does not yield usable keys and the
check costs a microsecond on the hot path (a password KDF would cost tens of milliseconds per
call, and API secrets carry 256 bits of entropy, so stretching adds nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_RE = re.compile(r"^lgsp_([a-z0-9]{12})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    key: str  # the whole key, shown once
    key_hash: str


def hash_secret(secret: str, *, pepper: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def issue_key(*, pepper: str) -> IssuedKey:
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return IssuedKey(
        key_id=key_id, key=f"lgsp_{key_id}.{secret}", key_hash=hash_secret(secret, pepper=pepper)
    )


def parse_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = KEY_RE.match(key)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, key_hash: str, *, pepper: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret, pepper=pepper), key_hash)
