"""Compiled validators per registered schema document, built once and kept across snapshots.

A document's id names immutable content (and references), so a validator compiled for it never
goes stale; the data plane looks validators up by id on every reload, never recompiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from sqlmodel import Session

from schemas.checks import expand
from schemas.models import VersionState
from schemas.store import Registered, resources_for
from schemas.validation import compile_validator, error_pointer, explain

Validator = Any  # a compiled jsonschema_rs validator


@dataclass(frozen=True, slots=True)
class Compiled:
    id: int
    subject: str
    version: int
    validator: Validator
    schema: Any  # with every $ref inlined where possible (for schema-guided conversions)
    deprecated: bool  # the version's state when the snapshot was loaded

    def errors(self, instance: Any, prefix: str = "", limit: int = 50) -> list[dict[str, str]]:
        """`{pointer, message}` per violation (at most `limit`), pointers under `prefix`; the
        common, valid case builds no error objects."""
        if self.validator.is_valid(instance):
            return []
        found = []
        for error in self.validator.iter_errors(instance):
            found.append(
                {"pointer": prefix + error_pointer(error, self.schema), "message": explain(error)}
            )
            if len(found) >= limit:
                break
        return found


class ValidatorCache:
    """Compiled validators by document id."""

    def __init__(self) -> None:
        self._compiled: dict[int, tuple[Validator, Any]] = {}

    def get(self, *, session: Session, version: Registered) -> Compiled:
        found = self._compiled.get(version.id)
        if found is None:
            resources = expand(
                version.schema, resources_for(session=session, references=version.references)
            )
            validator = compile_validator(version.schema, resources=resources)
            try:
                registry = jsonschema_rs.Registry(list(resources.items())) if resources else None
                inlined = jsonschema_rs.dereference(version.schema, registry=registry)
            except (ValueError, jsonschema_rs.ReferencingError):
                inlined = version.schema
            found = (validator, inlined)
            self._compiled[version.id] = found
        return Compiled(
            id=version.id,
            subject=version.subject,
            version=version.version,
            validator=found[0],
            schema=found[1],
            deprecated=version.state is VersionState.DEPRECATED,
        )
