"""Is a document a valid JSON Schema, and its compiled validator (draft 2020-12 or draft-07).

Schemas are compiled without ever touching the network: a `$ref` to a remote document is
refused, so registering a schema cannot make the hub fetch a URL (no SSRF, no hang).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import jsonschema_rs

KNOWN_DRAFTS = {
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
}


class RemoteReferenceRefused(ValueError):
    pass


def _refuse_remote(uri: str) -> Any:
    raise RemoteReferenceRefused(
        f"remote reference {uri} is not allowed: a schema may only refer inside itself"
    )


def compile_validator(schema: dict[str, Any]) -> Any:
    """The compiled (jsonschema-rs) validator the data plane uses."""
    return jsonschema_rs.validator_for(schema, retriever=_refuse_remote)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError naming the problem and its place when `schema` is not a valid schema."""
    if not isinstance(schema, dict):
        raise ValueError("a schema must be a JSON object")
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in KNOWN_DRAFTS:
        raise ValueError(f"unknown $schema {dialect!r}: use draft 2020-12 or draft-07")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/" + "/".join(str(p) for p in exc.path)
        raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    try:
        compile_validator(schema)
    except (ValueError, jsonschema_rs.ValidationError) as exc:
        message = str(exc).split("\n", 1)[0]
        raise ValueError(f"schema cannot be compiled: {message}") from None
