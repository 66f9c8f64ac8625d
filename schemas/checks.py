"""Is a document a valid JSON Schema? (draft 2020-12 unless it names draft-07)."""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

KNOWN_DRAFTS = {
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
}


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
    # The data plane compiles with jsonschema-rs; a schema it cannot compile is refused here too.
    import jsonschema_rs

    try:
        jsonschema_rs.validator_for(schema)
    except (ValueError, jsonschema_rs.ValidationError) as exc:
        raise ValueError(f"schema cannot be compiled: {exc}") from None
