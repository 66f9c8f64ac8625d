"""Where a subschema lives and what it stands for: documents, parts, `$ref` and `allOf` flattening.

A `Part` is one schema object together with the document it belongs to, the base URI in effect
and its JSON pointer. A `Conj` (conjunction) is the tuple of parts an instance must satisfy at
one place: a schema, its resolved `$ref` and its `allOf` subschemas, flattened. An empty `Conj`
accepts everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

import jsonschema_rs
import referencing
import referencing.exceptions
import referencing.jsonschema

from schemas.compatibility.types import InvalidSchema
from schemas.validation import DRAFT_07, UnresolvedReference, pointer

FLATTEN_LIMIT = 64  # parts gathered at one place before we stop following `$ref`/`allOf`


class RecursionLimit(Exception):
    """`$ref`/`allOf` chains that do not settle: reported as RECURSION_UNRESOLVED."""


@dataclass(eq=False)
class Document:
    """One schema document and the references it may use."""

    root: Any
    uri: str
    draft7: bool
    resources: Mapping[str, Any] | None = None
    memo: dict[Any, Any] = field(default_factory=dict)  # per-document caches (flatten, ...)
    _registry: referencing.Registry[Any] | None = None

    @classmethod
    def load(
        cls, schema: Any, resources: Mapping[str, Any] | None = None, *, name: str = "schema"
    ) -> Document:
        """Raises InvalidSchema when the schema breaks its meta-schema (checked, fast, by
        jsonschema-rs: the comparison relies on keywords having the types the drafts say)."""
        for label, contents in [
            (name, schema),
            *((f"reference {k}", v) for k, v in (resources or {}).items()),
        ]:
            try:
                jsonschema_rs.meta.validate(contents)
            except jsonschema_rs.ValidationError as error:
                first = str(error).splitlines()[0]
                raise InvalidSchema(f"the {label} is not a valid JSON Schema: {first}") from error
            except jsonschema_rs.ReferencingError as error:
                raise InvalidSchema(f"the {label} names an unknown meta-schema: {error}") from error
        declared = schema.get("$schema") if isinstance(schema, dict) else None
        draft7 = isinstance(declared, str) and declared.rstrip("#") == DRAFT_07.rstrip("#")
        uri = ""
        if isinstance(schema, dict) and isinstance(schema.get("$id"), str):
            uri = urldefrag(schema["$id"]).url
        return cls(schema, uri, draft7, resources)

    @property
    def registry(self) -> referencing.Registry[Any]:
        """Built on the first `$ref`: most schemas compared never need it."""
        if self._registry is None:
            spec = (
                referencing.jsonschema.DRAFT7 if self.draft7 else referencing.jsonschema.DRAFT202012
            )
            registry: referencing.Registry[Any] = referencing.Registry()
            for name, contents in (self.resources or {}).items():
                resource = referencing.Resource.from_contents(contents, default_specification=spec)
                registry = registry.with_resource(name, resource)
            root = referencing.Resource.from_contents(self.root, default_specification=spec)
            self._registry = registry.with_resource(self.uri, root).crawl()
        return self._registry

    @property
    def top(self) -> Part:
        return Part(self.root, self, self.uri, "")


@dataclass(frozen=True, eq=False, slots=True)
class Part:
    schema: Any  # a dict or a boolean
    doc: Document
    base: str
    ptr: str

    @property
    def location(self) -> str:
        """Where the part is: a JSON pointer in the document, or `uri#pointer` elsewhere."""
        if self.base == self.doc.uri:
            return self.ptr
        return f"{self.base}#{self.ptr}"

    def at(self, *path: str | int) -> str:
        """The location of a keyword (or deeper) of this part."""
        return self.location + pointer(*path)

    def get(self, keyword: str, default: Any = None) -> Any:
        if isinstance(self.schema, dict):
            return self.schema.get(keyword, default)
        return default

    def has(self, keyword: str) -> bool:
        return isinstance(self.schema, dict) and keyword in self.schema

    def child(self, *path: str | int) -> Part:
        sub: Any = self.schema
        for step in path:
            sub = sub[step]
        base, ptr = self.base, self.ptr + pointer(*path)
        identifier = sub.get("$id") if isinstance(sub, dict) else None
        if isinstance(identifier, str) and not identifier.startswith("#") and "$ref" not in sub:
            base, ptr = urldefrag(urljoin(self.base, identifier)).url, ""
        return Part(sub, self.doc, base, ptr)


Conj = tuple[Part, ...]


def synthetic(schema: Any, like: Part, ptr: str) -> Part:
    """A part the checker makes up (a `true` for an absent keyword, a `required` it adds)."""
    return Part(schema, like.doc, like.base, ptr)


def deref(part: Part, keyword: str = "$ref") -> Part:
    reference = part.schema[keyword]
    local = _local(part, reference)
    if local is not None:
        return local
    resolver = part.doc.registry.resolver(base_uri=part.base)
    try:
        resolved = resolver.lookup(reference)
    except referencing.exceptions.Unresolvable as error:
        raise UnresolvedReference(urljoin(part.base, reference)) from error
    target, fragment = urldefrag(urljoin(part.base, reference))
    fragment = unquote(fragment)
    ptr = fragment if fragment.startswith("/") or not fragment else f"#{fragment}"
    base = target if target or not part.base else part.base
    return Part(resolved.contents, part.doc, base, ptr)


def _local(part: Part, reference: str) -> Part | None:
    """`#/a/b` within the root resource, walked directly: no registry needed for the common
    case. None when the walk leaves the root resource (an embedded `$id`) or fails."""
    if part.base != part.doc.uri or not (reference == "#" or reference.startswith("#/")):
        return None
    node: Any = part.doc.root
    for token in reference[2:].split("/") if reference != "#" else ():
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
        if isinstance(node, dict) and isinstance(node.get("$id"), str):
            return None
    return Part(node, part.doc, part.doc.uri, unquote(reference[1:]))


def flatten(part: Part) -> Conj:
    """The conjunction a part stands for: itself, its `$ref` target and its `allOf`, recursively.

    In draft-07 a `$ref` replaces its siblings; in 2020-12 it is one more conjunct. A part met
    twice adds nothing (a and a is a), which is what keeps cycles through `allOf` finite.
    """
    key = (id(part.schema), part.base + "#" + part.ptr)
    cached = part.doc.memo.get(key)
    if cached is None:
        found: list[Part] = []
        _gather(part, found, set())
        cached = tuple(found)
        part.doc.memo[key] = cached
    return cached


def _gather(part: Part, found: list[Part], seen: set[tuple[int, str]]) -> None:
    key = (id(part.schema), part.base)
    if key in seen:
        return
    seen.add(key)
    if len(found) >= FLATTEN_LIMIT:
        raise RecursionLimit(part.location)
    if not isinstance(part.schema, dict):
        found.append(part)
        return
    if "$ref" in part.schema and isinstance(part.schema["$ref"], str):
        target = deref(part)
        if part.doc.draft7:
            _gather(target, found, seen)
            return
        found.append(part)
        _gather(target, found, seen)
    else:
        found.append(part)
    for index, _ in enumerate(_list(part.schema.get("allOf"))):
        _gather(part.child("allOf", index), found, seen)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def flatten_all(parts: Conj) -> Conj:
    out: list[Part] = []
    for part in parts:
        out.extend(flatten(part))
    return tuple(out)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 and key order does not matter."""
    if a is b:
        return True
    if a != b:  # Python equality is looser than JSON's (true == 1): unequal is unequal
        return False
    if isinstance(a, dict | list) and _dumps(a) == _dumps(b):
        return True  # the common case, at C speed
    return _strict_equal(a, b)


# Within one check, the same subschemas are compared again and again (a transitive check meets
# the candidate's properties once per version): their JSON text is kept for the check's length.
# Each entry holds its object, so no id is reused while the cache lives.
_DUMPED: ContextVar[dict[int, tuple[Any, str]] | None] = ContextVar("dumped", default=None)


@contextmanager
def dump_cache() -> Iterator[None]:
    """Keep subschemas' JSON text until the block ends (one compatibility check)."""
    token = _DUMPED.set({})
    try:
        yield
    finally:
        _DUMPED.reset(token)


def _dumps(value: Any) -> str:
    cache = _DUMPED.get()
    if cache is not None:
        hit = cache.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)
    if cache is not None:
        cache[id(value)] = (value, text)
    return text


def _strict_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strict_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def refers(doc: Document, schema: Any) -> bool:
    """`has_ref`, remembered per document (subschemas are walked again and again)."""
    if not isinstance(schema, dict | list):
        return False
    key = ("has_ref", id(schema))
    found = doc.memo.get(key)
    if found is None:
        found = doc.memo[key] = has_ref(schema)
    return bool(found)


def has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return any(
            (k in ("$ref", "$dynamicRef") and isinstance(v, str)) or has_ref(v)
            for k, v in schema.items()
        )
    if isinstance(schema, list):
        return any(has_ref(v) for v in schema)
    return False


def same(a: Part, b: Part) -> bool:
    """The two parts accept the same documents because they are written the same way,
    `$ref` targets included (a cycle met again is taken as the same)."""
    return _same(a, b, set())


def _same(a: Part, b: Part, seen: set[tuple[int, int]]) -> bool:
    if not json_equal(a.schema, b.schema):
        return False
    if a.doc is b.doc and a.base == b.base:
        return True
    if not refers(a.doc, a.schema):
        return True
    key = (id(a.schema), id(b.schema))
    if key in seen:
        return True
    seen.add(key)
    return _same_refs(a, b, seen)


def _same_refs(a: Part, b: Part, seen: set[tuple[int, int]]) -> bool:
    if isinstance(a.schema, dict):
        for keyword, value in a.schema.items():
            if keyword == "$ref" and isinstance(value, str):
                if not _same(deref(a), deref(b), seen):
                    return False
            elif keyword == "$dynamicRef":
                continue
            elif (
                isinstance(value, dict | list)
                and refers(a.doc, value)
                and not _same_refs(a.child(keyword), b.child(keyword), seen)
            ):
                return False
    elif isinstance(a.schema, list):
        for index, value in enumerate(a.schema):
            if refers(a.doc, value) and not _same_refs(a.child(index), b.child(index), seen):
                return False
    return True


def same_conj(a: Conj, b: Conj) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
