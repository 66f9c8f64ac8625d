"""Who is calling: an agency's application, by its consumer key (X-API-Key) or an OAuth2 access
token (Authorization: Bearer), checked against the in-memory snapshot of the registry (no
database read per call)."""

from __future__ import annotations

from gateway.exchange import tokens
from gateway.exchange.calls import Call
from gateway.problems import Problem
from gateway.runtime.snapshot import KeyEntry, Snapshot
from registry import keys
from registry.types import utcnow

CHALLENGE = {"www-authenticate": f'ApiKey header="X-API-Key", {tokens.challenge()}'}
_NO_HASH = "0" * 64
Caller = KeyEntry | tokens.TokenCaller


def authenticate(
    headers: dict[str, str],
    snapshot: Snapshot,
    pepper: str,
    call: Call,
    *,
    verifier: tokens.Verifier,
    target: tuple[str, str] | None = None,
) -> Caller:
    """The caller (by key or token), or a 401/403 problem. `call` learns the consumer and agency
    as soon as they are known, so that a refused call is recorded with who made it. A token must
    cover `target` (service, version) in its scope; a key's grants are checked afterwards."""
    presented = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if not presented and authorization is not None:
        caller = tokens.check(authorization, snapshot.tokens, verifier, call)
        if target is not None:
            tokens.require_scope(caller, *target)
        return caller
    if not presented:
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "send an access token (Authorization: Bearer, from POST /oauth2/token) or the "
            "consumer's API key in the X-API-Key header",
            headers=CHALLENGE,
        )
    parsed = keys.parse_key(presented)
    key_id, secret = parsed if parsed else ("", presented)
    entry = snapshot.keys.get(key_id)
    # Compare even when the id is unknown, so timing does not tell which ids exist; a refusal
    # always makes the second comparison too, whether the id is a consumer's or not.
    matches = keys.secret_matches(secret, entry.key_hash if entry else _NO_HASH, pepper=pepper)
    if entry is None or not matches:
        management = snapshot.management_keys.get(key_id, _NO_HASH)
        if keys.secret_matches(secret, management, pepper=pepper) and entry is None:
            raise Problem(
                401,
                "not-a-consumer-key",
                "Not a consumer key",
                "this is a management key (for /admin and /audit); calls to shared services and "
                "topics take the API key of a consumer application",
                headers=CHALLENGE,
            )
        raise Problem(
            401,
            "invalid-key",
            "Invalid API key",
            "the API key is unknown or malformed",
            headers=CHALLENGE,
        )
    call.consumer = entry.consumer
    call.agency = entry.agency_code
    if entry.revoked:
        raise Problem(
            401,
            "revoked-key",
            "Revoked API key",
            "this API key has been revoked",
            headers=CHALLENGE,
        )
    if entry.expires_at is not None and entry.expires_at <= utcnow():
        raise Problem(
            401, "expired-key", "Expired API key", "this API key has expired", headers=CHALLENGE
        )
    if not entry.active:
        raise Problem(
            403,
            "consumer-disabled",
            "Consumer disabled",
            f"the consumer {entry.consumer} is disabled",
        )
    return entry
