"""JSON Web Keys through joserfc, one place: the algorithms the hub signs and accepts, its JWS
registry, and the check of a consumer's public key set."""

from __future__ import annotations

import copy
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from registry.types import RuleError

SIGNING_ALGS = ("EdDSA", "ES256", "RS256")
# Client assertions (RFC 7523) may use these; never "none" nor a symmetric algorithm.
ASSERTION_ALGS = ("EdDSA", "ES256", "ES384", "PS256", "RS256")


def _registry() -> jws.JWSRegistry:
    """joserfc's registry with the algorithms above allowed. RFC 9864 deprecates the name
    "EdDSA" for "Ed25519", and joserfc warns on each use; the hub keeps "EdDSA" because the
    clients it serves (PyJWT, authlib, Java's Nimbus) know only that name."""
    registry = jws.JWSRegistry(algorithms=[*SIGNING_ALGS, *ASSERTION_ALGS])
    eddsa = copy.copy(jws.JWSRegistry.algorithms["EdDSA"])
    eddsa.security_warning = None
    registry.algorithms = {**jws.JWSRegistry.algorithms, "EdDSA": eddsa}
    return registry


REGISTRY = _registry()


def check_public_jwks(value: dict[str, Any]) -> KeySet:
    """A consumer's JWK set: public signing keys only, each with a kid; else a RuleError."""
    keys = value.get("keys")
    if not isinstance(keys, list) or not keys:
        raise RuleError('must be a JWK set: {"keys": [...]} with at least one key', at="jwks")
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
            raise RuleError(f"key {i} needs a kid", at=f"jwks/keys/{i}")
        if "d" in key or key.get("kty") == "oct":
            raise RuleError(
                f"key {i} must be a public key (no private or symmetric keys)", at=f"jwks/keys/{i}"
            )
    try:
        return KeySet.import_key_set(value)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise RuleError(f"not a usable JWK set: {type(exc).__name__}", at="jwks") from None
