"""Proving a break: a document the writer's schema accepts and the reader's refuses, checked with
the real validators (python-jsonschema with formats asserted, plus the caller's if given)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import islice
from typing import Any, Final

from schemas.compatibility.findings import Finding, Frame, Index, Key
from schemas.compatibility.generate import MISSING, POOL, Gen
from schemas.compatibility.model import canonical, item_node
from schemas.compatibility.scope import Document, RecursionLimit
from schemas.validation import reference_validator

Validate = Callable[[Any, Any], bool]
LEAVES: Final = 48  # candidate values tried per finding (and per nested finding)
DOCUMENTS: Final = 240  # documents validated per finding, at most


class Prover:
    """Validators for the documents of one check, built once and reused across findings."""

    def __init__(self, gen: Gen, validate: Validate | None = None) -> None:
        self.gen = gen
        self._validate = validate
        self._validators: dict[int, Any] = {}

    def _accepts(self, document: Document, instance: Any) -> bool | None:
        """True/False when the validators agree; None when they disagree or fail."""
        validator = self._validators.get(id(document))
        if validator is None:
            validator = _reference(canonical([document.root, document.resources]))
            self._validators[id(document)] = validator
        try:
            verdict = bool(validator.is_valid(instance))
            if self._validate is not None and self._validate(document.root, instance) != verdict:
                return None
        except Exception:  # a validator that cannot evaluate this instance proves nothing
            return None
        return verdict

    def find(self, finding: Finding, writer: Document, reader: Document) -> Any:
        """A verified counterexample for the finding, or MISSING."""
        seen: set[str] = set()
        try:
            for instance in islice(self._documents(finding), DOCUMENTS):
                if instance is MISSING:
                    continue
                key = canonical(instance)
                if key in seen:
                    continue
                seen.add(key)
                if (
                    self._accepts(writer, instance) is True
                    and self._accepts(reader, instance) is False
                ):
                    return instance
        except RecursionLimit:  # the schema nests deeper than the generator follows
            pass
        return MISSING

    def _documents(self, finding: Finding) -> Iterator[Any]:
        node = finding.route[-1][0]
        if finding.candidates is not None:
            for leaf in islice(finding.candidates(self.gen, node), LEAVES):
                yield from self._embed(finding.route, leaf)
        for nested in finding.nested:
            if nested.compatible is not True:
                yield from self._documents(nested)
        for leaf in islice(self.gen.samples(node, limit=16), LEAVES):
            yield from self._embed(finding.route, leaf)
        for leaf in POOL:
            yield from self._embed(finding.route, leaf)

    def _embed(self, route: tuple[Frame, ...], leaf: Any) -> Iterator[Any]:
        if leaf is MISSING:
            return
        yield embed(self.gen, route, leaf, full=False)
        if len(route) > 1:
            yield embed(self.gen, route, leaf, full=True)


@lru_cache(maxsize=256)
def _reference(key: str) -> Any:
    """Reference validators by content: building one costs a class, and subjects repeat."""
    schema, resources = json.loads(key)
    return reference_validator(schema, resources=resources)


def embed(gen: Gen, route: tuple[Frame, ...], leaf: Any, *, full: bool) -> Any:
    """The document around `leaf`: each level built from the writer's schema along the route."""
    value = leaf
    for node, step in reversed(route[:-1]):
        if isinstance(step, Key):
            base = gen.instance(node, kind="object", present=(step.name,), full=full)
            obj = dict(base) if isinstance(base, dict) else {}
            obj[step.name] = value
            value = obj
        elif isinstance(step, Index):
            base = gen.instance(node, kind="array", min_items=step.index + 1, full=full)
            items = list(base) if isinstance(base, list) else []
            while len(items) <= step.index:
                filler = gen.instance(item_node(node, len(items)))
                items.append(None if filler is MISSING else filler)
            items[step.index] = value
            value = items
    return value
