"""The two validators built from a registered schema: the compiled one the data plane uses
(jsonschema-rs) and the reference one (python-jsonschema) that checks it and the registry's
counterexamples. Both assert formats, ours included, and resolve `$ref` only against the
resources handed in (registered schema versions): never over the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.validators
import jsonschema_rs
import referencing
import referencing.exceptions
import referencing.jsonschema

from schemas.formats import FORMATS, describe_failure
from schemas.keywords import KEYWORD, KEYWORDS, PYTHON_KEYWORDS

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
KNOWN_DRAFTS = {DRAFT_2020_12, DRAFT_07, DRAFT_07.rstrip("#")}

Resources = Mapping[str, Any]  # reference name (URI) -> schema contents


class UnresolvedReference(ValueError):
    """A `$ref` names a document that is not among the registered references."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"unresolved reference {uri}: declare it in the version's references "
            "(name, subject, version); the registry never fetches a URL"
        )
        self.uri = uri


def _refuse(uri: str) -> Any:
    raise UnresolvedReference(uri)


def _draft(schema: Any) -> str:
    if isinstance(schema, dict):
        declared = schema.get("$schema")
        if isinstance(declared, str):
            return declared
    return DRAFT_2020_12


def compile_validator(schema: Any, *, resources: Resources | None = None) -> Any:
    """The compiled (jsonschema-rs) validator the data plane uses: formats asserted."""
    registry = None
    if resources:
        # References without their own $schema are read in the draft of the schema using them.
        draft = jsonschema_rs.Draft7 if _draft(schema).startswith(DRAFT_07.rstrip("#")) else None
        registry = jsonschema_rs.Registry(list(resources.items()), draft=draft)
    return jsonschema_rs.validator_for(
        schema,
        formats=FORMATS,
        validate_formats=True,
        retriever=_refuse,
        registry=registry,
        keywords=KEYWORDS,
    )


def _python_class(schema: Any) -> type[Any]:
    cls: type[Any] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return cls


def format_checker(cls: type[Any]) -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(list(cls.FORMAT_CHECKER.checkers))
    for name, check in FORMATS.items():
        checker.checks(name)(_string_only(check))
    return checker


def _string_only(check: Any) -> Any:
    def run(value: object) -> bool:
        return not isinstance(value, str) or bool(check(value))

    return run


def reference_validator(schema: Any, *, resources: Resources | None = None) -> Any:
    """The python-jsonschema validator for the same schema and resources."""
    cls = jsonschema.validators.extend(_python_class(schema), PYTHON_KEYWORDS)
    spec = referencing.jsonschema.specification_with(
        _draft(schema), default=referencing.jsonschema.DRAFT202012
    )
    registry: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse)  # type: ignore[call-arg]
    for uri, contents in (resources or {}).items():
        resource = referencing.Resource.from_contents(contents, default_specification=spec)
        registry = registry.with_resource(uri, resource)
    return cls(schema, registry=registry, format_checker=format_checker(cls))


def explain(error: Any) -> str:
    """A compiled validator's error message, with why a value fails one of our formats."""
    name = getattr(error.kind, "format", None)
    if isinstance(name, str) and isinstance(error.instance, str):
        why = describe_failure(name, error.instance)
        if why:
            return f"{error.message}: {why}"
    return str(error.message)


def error_pointer(error: Any, schema: Any) -> str:
    """Where a compiled validator's error is in the document. A cross-field rule reports at the
    object that holds the fields; `x-vn-personal-id` is pointed at its number's property."""
    where = pointer(*error.instance_path)
    path = list(error.schema_path)
    if not path or path[-1] != KEYWORD:
        return where
    # The keyword's value: in the (inlined) subschema that governs the object, found along the
    # document; else along the schema path (a `$ref` step has no node of its own).
    rule = _walk(_along(schema, list(error.instance_path)), [KEYWORD]) or _walk(
        schema, [step for step in path if step != "$ref"]
    )
    field = rule.get("id") if isinstance(rule, dict) else None
    return f"{where}{pointer(field)}" if isinstance(field, str) else where


def _walk(node: Any, steps: list[Any]) -> Any:
    for step in steps:
        found = isinstance(node, dict) and step in node
        found = found or (isinstance(node, list) and isinstance(step, int) and step < len(node))
        if not found:
            return None
        node = node[step]
    return node


def _along(schema: Any, instance_path: list[Any]) -> Any:
    """The (inlined) subschema that governs the value at `instance_path`, by properties/items."""
    node = schema
    for step in instance_path:
        if not isinstance(node, dict):
            return None
        if isinstance(step, str):
            node = (node.get("properties") or {}).get(step)
        else:
            node = node.get("items")
    return node


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path elements."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
