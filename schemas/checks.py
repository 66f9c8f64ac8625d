"""Is a document a schema the registry can hold: known draft, valid against its metaschema, every
`$ref` resolvable among its own parts and its declared references, no reference cycle that never
reaches the document. Each problem comes with the JSON pointer (into the schema) where it is.

Nothing here touches the network: a `$ref` that only a URL fetch could satisfy is a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import jsonschema_rs

from schemas.validation import (
    KNOWN_DRAFTS,
    Resources,
    UnresolvedReference,
    compile_validator,
    pointer,
)

BASE = "https://lgsp.invalid/"  # the base of a schema without $id, for resolving relative refs
MAX_PROBLEMS = 20
# Keywords whose values are data, not subschemas: never walked for $ref / $id.
DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "description", "title"})
# Applicators that apply a subschema to the *same* instance: a cycle through only these loops.
IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
IN_PLACE_ONE = ("not", "if", "then", "else")


@dataclass(frozen=True, slots=True)
class Problem:
    pointer: str  # into the schema
    message: str


OFFICIAL = ("https://json-schema.org/draft/2020-12/", "http://json-schema.org/draft-07/schema")


def join(base: str, ref: str) -> str:
    """`ref` resolved against `base`, also for bases urljoin does not know (urn:, tag:)."""
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    return urljoin(base, ref)


def _nodes(node: Any, where: str, base: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Every schema object with its pointer and base URI."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = join(base, node["$id"])
        yield node, where, base
        for key, value in node.items():
            if key not in DATA_KEYWORDS:
                yield from _nodes(value, f"{where}{pointer(key)}", base)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _nodes(item, f"{where}/{i}", base)


def _resolve_pointer(document: Any, fragment: str) -> Any:
    node = document
    for token in fragment[1:].split("/") if fragment != "/" else [""]:
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(token)
    return node


class _Index:
    """Where each URI and anchor of a schema (and of its references) lives."""

    def __init__(self, schema: Any, resources: Resources) -> None:
        self.documents: dict[str, tuple[Any, str]] = {}  # uri -> (node, pointer or "")
        self.anchors: set[str] = set()
        root_base = urljoin(BASE, schema["$id"]) if _has_id(schema) else BASE
        self.root_base = root_base
        self._add(schema, "", BASE)
        self.documents.setdefault(urldefrag(root_base)[0], (schema, ""))
        for name, contents in resources.items():
            uri = urljoin(root_base, name)
            self.documents.setdefault(urldefrag(uri)[0], (contents, "(reference)"))
            self.documents.setdefault(urldefrag(urljoin(BASE, name))[0], (contents, "(reference)"))
            self._add(contents, "(reference)", uri)

    def _add(self, schema: Any, origin: str, base: str) -> None:
        for node, where, node_base in _nodes(schema, "" if origin == "" else origin, base):
            if isinstance(node.get("$id"), str):
                self.documents.setdefault(urldefrag(node_base)[0], (node, where))
            for key in ("$anchor", "$dynamicAnchor"):
                if isinstance(node.get(key), str):
                    self.anchors.add(f"{urldefrag(node_base)[0]}#{node[key]}")
            # draft-07 style anchors: "$id": "#foo"
            if isinstance(node.get("$id"), str) and node["$id"].startswith("#"):
                self.anchors.add(node_base)

    def resolves(self, uri: str) -> bool:
        if uri.startswith(OFFICIAL):
            return True  # the drafts' own metaschemas and vocabularies ship with the validators
        document, fragment = urldefrag(uri)
        found = self.documents.get(document)
        if found is None:
            return False
        if not fragment:
            return True
        if fragment.startswith("/"):
            try:
                _resolve_pointer(found[0], fragment)
            except KeyError:
                return False
            return True
        return uri in self.anchors or found[1] == "(reference)"


def _has_id(schema: Any) -> bool:
    return isinstance(schema, dict) and isinstance(schema.get("$id"), str)


def _reference_problems(schema: Any, resources: Resources) -> list[Problem]:
    index = _Index(schema, resources)
    problems = []
    for node, where, base in _nodes(schema, "", BASE):
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if not isinstance(ref, str):
                continue
            target = join(base, ref)
            if key == "$dynamicRef" and not ref.startswith("#/"):
                continue  # resolved dynamically; its static target may legitimately be absent
            if not index.resolves(target):
                problems.append(
                    Problem(
                        f"{where}/{key}",
                        f"unresolved reference {ref!r}: not a part of this schema nor one of "
                        "its declared references (name, subject, version); the registry "
                        "never fetches a URL",
                    )
                )
    return problems


def _cycle_problems(schema: Any) -> list[Problem]:
    """A `$ref` chain (through allOf/anyOf/oneOf/not/if/then/else) that returns to itself
    without descending into the document would make any validator loop forever."""
    if not isinstance(schema, dict):
        return []

    def edges(node: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
        ref = node.get("$ref")
        if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
            yield f"{where}/$ref", unquote(ref[1:])
        for key in IN_PLACE_LISTS:
            items = node.get(key)
            if isinstance(items, list):
                for i, _ in enumerate(items):
                    yield f"{where}/{key}/{i}", f"{where}/{key}/{i}"
        for key in IN_PLACE_ONE:
            if key in node:
                yield f"{where}/{key}", f"{where}/{key}"

    problems: list[Problem] = []
    done: set[str] = set()

    def visit(where: str, path: list[str], via: list[str]) -> None:
        if where in path:
            problems.append(
                Problem(
                    via[path.index(where)],
                    "reference cycle: "
                    + " -> ".join("#" + p for p in [*path[path.index(where) :], where])
                    + " never descends into the document, so validation would not end",
                )
            )
            return
        if where in done:
            return
        try:
            node = _resolve_pointer(schema, where) if where else schema
        except KeyError:
            return
        if not isinstance(node, dict):
            done.add(where)
            return
        for step, target in edges(node, where):
            visit(target, [*path, where], [*via, step])
        done.add(where)

    for _, where, _ in _nodes(schema, "", BASE):
        if where not in done and not problems:
            visit(where, [], [])
    return problems[:1]


def expand(schema: Any, resources: Resources) -> dict[str, Any]:
    """The references under their names and, for a schema with an absolute `$id`, also under
    the URI each name resolves to from there (where a `$ref` by that name will look)."""
    expanded = dict(resources)
    if _has_id(schema):
        for name, contents in resources.items():
            expanded.setdefault(urljoin(urljoin(BASE, schema["$id"]), name), contents)
    return expanded


def problems(schema: Any, resources: Resources | None = None) -> list[Problem]:
    """Everything that keeps `schema` from being registered (empty when it can be)."""
    resources = resources or {}
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [Problem("", "a schema must be a JSON object (or true / false)")]
    dialect = schema.get("$schema")
    if dialect is not None and (not isinstance(dialect, str) or dialect not in KNOWN_DRAFTS):
        return [
            Problem(
                "/$schema",
                f"unknown draft {dialect!r}: use https://json-schema.org/draft/2020-12/schema "
                "or http://json-schema.org/draft-07/schema#",
            )
        ]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    found = [
        Problem(pointer(*error.path), f"not a valid JSON Schema: {error.message}")
        for error in cls(cls.META_SCHEMA).iter_errors(schema)
    ][:MAX_PROBLEMS]
    if found:
        return found
    try:
        found = _reference_problems(schema, resources) + _cycle_problems(schema)
    except ValueError as exc:  # urljoin on a malformed URI, e.g. "http://[::1"
        return [Problem("", f"a $id or $ref is not a valid URI reference: {exc}")]
    except RecursionError:
        return [Problem("", "its $ref chains are too long to check (hundreds of hops)")]
    if found:
        return found[:MAX_PROBLEMS]
    try:
        compile_validator(schema, resources=expand(schema, resources))
    except UnresolvedReference as exc:
        return [Problem("", str(exc))]
    except (ValueError, jsonschema_rs.ValidationError) as exc:
        message = str(exc).split("\n", 1)[0]
        return [Problem("", f"schema cannot be compiled: {message}")]
    return []
