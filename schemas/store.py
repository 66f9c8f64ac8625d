"""Registering and reading schema versions: the operations behind both HTTP surfaces.

Keyword-only functions over a Session. They add and flush; the caller records the change and
commits, so a request (or a manifest) is one transaction. Versions are immutable: only their
state moves (active → deprecated → active, either → deleted). Refusals are `schemas.errors`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from schemas.checks import expand, join, problems
from schemas.clock import utcnow
from schemas.compatibility import (
    Break,
    InvalidSchema,
    Level,
    Policy,
    Undecided,
    Verdict,
    check,
    diff,
)
from schemas.errors import (
    Concurrent,
    Incompatible,
    LevelInvalid,
    SchemaInvalid,
    SchemaNotFound,
    StillReferenced,
    SubjectNotFound,
    VersionInvalid,
    VersionNotFound,
)
from schemas.models import GLOBAL, SchemaConfig, SchemaDocument, SchemaVersion, VersionState
from schemas.nesting import too_deep
from schemas.validation import pointer

SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,149}$")
DEFAULT_LEVEL = Level.BACKWARD
DEFAULT_POLICY = Policy.DEFAULT
MAX_REFERENCE_DEPTH = 32
MAX_NESTING = 64  # containers inside containers: deeper schemas are refused, not walked
LATEST = "latest"


class Reference(BaseModel):
    """A `$ref` target by name (as written in `$ref`), resolved to a registered version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=500)
    subject: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)


@dataclass(frozen=True, slots=True)
class Registered:
    """One subject version with its document."""

    subject: str
    version: int
    id: int
    schema: Any
    content: str  # canonical JSON text
    references: tuple[Reference, ...]
    state: VersionState
    schema_type: str
    fingerprint: str
    created_at: datetime
    created_by: str | None
    owner: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": self.schema,
            "references": [r.model_dump() for r in self.references],
            "state": self.state.value,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Config:
    level: Level
    policy: Policy
    level_set: bool  # whether the subject has its own (not the global default)
    policy_set: bool


# ---------------------------------------------------------------- input


def canonical(schema: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text; refuses what JSON cannot carry exactly."""
    _refuse_non_finite(schema, "")
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        raise SchemaInvalid.at("", "the schema holds a lone surrogate (\\ud800-\\udfff)") from None
    return text


def _refuse_non_finite(node: Any, where: str) -> None:
    if isinstance(node, float) and not math.isfinite(node):
        raise SchemaInvalid.at(where, "numbers must be finite")
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_non_finite(value, f"{where}{pointer(key)}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_non_finite(value, f"{where}/{i}")


def check_subject(subject: str) -> str:
    if not SUBJECT_RE.match(subject):
        raise SchemaInvalid.at(
            "/subject",
            f"subject {subject[:60]!r} is not a valid name: 1-150 characters of letters, digits "
            "and '._:-', starting with a letter or digit",
        )
    return subject


def parse_references(raw: Any, where: str = "/references") -> tuple[Reference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SchemaInvalid.at(where, "references must be a list of {name, subject, version}")
    found: list[Reference] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        try:
            ref = Reference.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = "/".join(str(p) for p in first["loc"])
            raise SchemaInvalid.at(f"{where}/{i}/{loc}".rstrip("/"), first["msg"]) from None
        if ref.name in names:
            raise SchemaInvalid.at(f"{where}/{i}/name", f"the name {ref.name!r} appears twice")
        names.add(ref.name)
        found.append(ref)
    return tuple(found)


def parse_version(version: str | int) -> int | None:
    """A version number, or None for "latest" (also -1, as Confluent clients send it)."""
    if isinstance(version, int):
        number = version
    elif version == LATEST:
        return None
    elif re.fullmatch(r"-?[0-9]{1,9}", version):
        number = int(version)
    else:
        raise VersionInvalid(f"version {version[:40]!r} is not a number nor 'latest'")
    if number == -1:
        return None
    if number < 1:
        raise VersionInvalid(f"version {number} is not valid: versions start at 1")
    return number


def parse_level(value: str) -> Level:
    try:
        return Level(value.upper())
    except ValueError:
        names = ", ".join(level.value for level in Level)
        raise LevelInvalid(f"unknown compatibility level {value!r}: one of {names}") from None


def parse_policy(value: str) -> Policy:
    try:
        return Policy(value.upper())
    except ValueError:
        names = ", ".join(p.value for p in Policy)
        raise LevelInvalid(f"unknown compatibility policy {value!r}: one of {names}") from None


# ---------------------------------------------------------------- reading


def _registered(row: SchemaVersion, doc: SchemaDocument) -> Registered:
    assert doc.id is not None
    return Registered(
        subject=row.subject,
        version=row.version,
        id=doc.id,
        schema=json.loads(doc.content),
        content=doc.content,
        references=tuple(Reference.model_validate(r) for r in doc.references),
        state=VersionState(row.state),
        schema_type=doc.schema_type,
        fingerprint=doc.fingerprint,
        created_at=row.created_at,
        created_by=row.created_by,
        owner=row.owner,
    )


def subjects(*, session: Session, deleted: bool = False, prefix: str = "") -> list[str]:
    query = select(SchemaVersion.subject).distinct().order_by(col(SchemaVersion.subject))
    if not deleted:
        query = query.where(col(SchemaVersion.state) != VersionState.DELETED)
    if prefix:
        query = query.where(col(SchemaVersion.subject).startswith(prefix, autoescape=True))
    return list(session.exec(query))


def _rows(session: Session, subject: str, *, deleted: bool) -> list[SchemaVersion]:
    query = (
        select(SchemaVersion)
        .where(SchemaVersion.subject == subject)
        .order_by(col(SchemaVersion.version))
    )
    rows = list(session.exec(query))
    if not deleted:
        rows = [r for r in rows if r.state != VersionState.DELETED]
    return rows


def versions(*, session: Session, subject: str, deleted: bool = False) -> list[Registered]:
    """The subject's versions, oldest first (soft-deleted ones only when asked)."""
    rows = _rows(session, subject, deleted=deleted)
    if not rows:
        if not deleted and _rows(session, subject, deleted=True):
            raise SubjectNotFound(f"subject {subject!r} was deleted (all its versions are)")
        raise SubjectNotFound(f"there is no subject {subject!r}")
    docs = _documents(session, {r.document_id for r in rows})
    return [_registered(r, docs[r.document_id]) for r in rows]


def _documents(session: Session, ids: Iterable[int]) -> dict[int, SchemaDocument]:
    wanted = list(ids)
    found = session.exec(select(SchemaDocument).where(col(SchemaDocument.id).in_(wanted)))
    return {d.id: d for d in found if d.id is not None}


def get_version(
    *, session: Session, subject: str, version: str | int, deleted: bool = False
) -> Registered:
    number = parse_version(version)
    if number is None:
        return versions(session=session, subject=subject, deleted=deleted)[-1]
    row = session.exec(
        select(SchemaVersion).where(
            SchemaVersion.subject == subject, SchemaVersion.version == number
        )
    ).first()
    if row is None or (row.state == VersionState.DELETED and not deleted):
        if not _rows(session, subject, deleted=True):
            raise SubjectNotFound(f"there is no subject {subject!r}")
        gone = " (it was deleted)" if row is not None else ""
        raise VersionNotFound(f"subject {subject!r} has no version {number}{gone}")
    doc = session.get(SchemaDocument, row.document_id)
    assert doc is not None
    return _registered(row, doc)


def get_document(*, session: Session, schema_id: int) -> SchemaDocument:
    doc = session.get(SchemaDocument, schema_id)
    if doc is None:
        raise SchemaNotFound(f"there is no schema with id {schema_id}")
    return doc


def usages_of_document(*, session: Session, schema_id: int) -> list[tuple[str, int]]:
    rows = session.exec(
        select(SchemaVersion.subject, SchemaVersion.version)
        .where(SchemaVersion.document_id == schema_id)
        .order_by(col(SchemaVersion.subject), col(SchemaVersion.version))
    )
    return [(s, v) for s, v in rows]


def referenced_by(*, session: Session, subject: str, version: int) -> list[str]:
    """Schema versions (not deleted) whose references name this one, as `subject/version`."""
    found = []
    rows = session.exec(
        select(SchemaVersion, SchemaDocument)
        .join(SchemaDocument, col(SchemaDocument.id) == col(SchemaVersion.document_id))
        .where(col(SchemaVersion.state) != VersionState.DELETED)
    )
    for row, doc in rows:
        for ref in doc.references:
            if ref.get("subject") == subject and ref.get("version") == version:
                found.append(f"{row.subject}/{row.version}")
    return sorted(set(found))


def resources_for(
    *, session: Session, references: Sequence[Reference], allow_deleted: bool = True
) -> dict[str, Any]:
    """Every document the references reach (transitively), by the name `$ref` uses."""
    resources: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def add(refs: Sequence[Reference], depth: int, where: str, base: str) -> None:
        if depth > MAX_REFERENCE_DEPTH:
            raise SchemaInvalid.at(where, f"references nest deeper than {MAX_REFERENCE_DEPTH}")
        for i, ref in enumerate(refs):
            at = f"{where}/{i}" if depth == 0 else where
            try:
                target = get_version(
                    session=session, subject=ref.subject, version=ref.version, deleted=True
                )
            except (SubjectNotFound, VersionNotFound) as exc:
                raise SchemaInvalid.at(at, f"reference {ref.name!r}: {exc.detail}") from None
            if target.state == VersionState.DELETED and not allow_deleted:
                raise SchemaInvalid.at(
                    at, f"reference {ref.name!r}: {ref.subject}/{ref.version} was deleted"
                )
            source = f"{ref.subject}/{ref.version}"
            # A nested reference's name is relative to the document that declares it, as a
            # `$ref` in a document retrieved from a URI resolves against that URI.
            name = join(base, ref.name) if base else ref.name
            if name in resources and origin[name] != source:
                raise SchemaInvalid.at(
                    at,
                    f"the name {name!r} means both {origin[name]} and {source} "
                    "among the references",
                )
            if name not in resources:
                resources[name] = target.schema
                origin[name] = source
                add(target.references, depth + 1, at, name if "://" in name else "")

    add(references, 0, "/references", "")
    return resources


def config(*, session: Session, subject: str | None = None) -> Config:
    """The level and policy in force for `subject` (or the global default for None)."""
    own = session.get(SchemaConfig, subject) if subject else None
    default = session.get(SchemaConfig, GLOBAL)
    level = (own and own.compatibility) or (default and default.compatibility)
    policy = (own and own.policy) or (default and default.policy)
    return Config(
        level=Level(level) if level else DEFAULT_LEVEL,
        policy=Policy(policy) if policy else DEFAULT_POLICY,
        level_set=bool(own and own.compatibility),
        policy_set=bool(own and own.policy),
    )


def set_config(
    *,
    session: Session,
    subject: str | None,
    level: Level | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Set the level and/or policy; the changes as {field: [old, new]}."""
    key = subject or GLOBAL
    row = session.get(SchemaConfig, key) or SchemaConfig(subject=key)
    changes: dict[str, Any] = {}
    if level is not None and row.compatibility != level.value:
        changes["compatibility"] = [row.compatibility, level.value]
        row.compatibility = level.value
    if policy is not None and row.policy != policy.value:
        changes["policy"] = [row.policy, policy.value]
        row.policy = policy.value
    if changes:
        session.add(row)
        _flush_or_concurrent(session, f"the compatibility setting of {key or 'the registry'}")
    return changes


def _flush_or_concurrent(session: Session, what: str) -> None:
    """Flush; a unique key taken by another request at the same moment is a Concurrent."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Concurrent(
            f"{what} was changed by another request at the same moment; try again"
        ) from None


def delete_config(*, session: Session, subject: str) -> dict[str, Any]:
    row = session.get(SchemaConfig, subject)
    if row is None:
        raise SubjectNotFound(f"subject {subject!r} has no compatibility setting of its own")
    changes = {"compatibility": [row.compatibility, None], "policy": [row.policy, None]}
    session.delete(row)
    session.flush()
    return changes


def owner_of(*, session: Session, subject: str) -> tuple[bool, str | None]:
    """(whether the subject exists, the agency that registered its first version)."""
    first = session.exec(
        select(SchemaVersion)
        .where(SchemaVersion.subject == subject)
        .order_by(col(SchemaVersion.version))
    ).first()
    return (first is not None, first.owner if first else None)


# ---------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class Candidate:
    """A schema as submitted, checked and canonicalised, with what its references reach."""

    schema: Any
    content: str
    references: tuple[Reference, ...]
    resources: dict[str, Any]
    schema_type: str
    fingerprint: str


def prepare(
    *, session: Session, schema: Any, references: Any = None, schema_type: str = "JSON"
) -> Candidate:
    """Check a submitted schema; refuse it with every problem's pointer."""
    if schema_type.upper() != "JSON":
        raise SchemaInvalid.at(
            "/schemaType", f"schema type {schema_type!r} is not supported: only JSON"
        )
    refs = parse_references(references)
    if too_deep(schema, MAX_NESTING):
        raise SchemaInvalid.at(
            "/schema", f"the schema nests more than {MAX_NESTING} levels of objects and arrays"
        )
    content = canonical(schema)
    resources = resources_for(session=session, references=refs, allow_deleted=False)
    found = problems(schema, expand(schema, resources))
    if found:
        count = len(found)
        raise SchemaInvalid(
            f"{count} problem{'s' if count != 1 else ''} in the schema",
            errors=[{"pointer": "/schema" + p.pointer, "message": p.message} for p in found],
        )
    refs_text = canonical([r.model_dump() for r in refs])
    digest = hashlib.sha256(f"JSON\n{content}\n{refs_text}".encode()).hexdigest()
    return Candidate(schema, content, refs, resources, "JSON", digest)


def find_registered(*, session: Session, subject: str, candidate: Candidate) -> Registered | None:
    """The subject's (not deleted) version with exactly this content, if any."""
    doc = session.exec(
        select(SchemaDocument).where(SchemaDocument.fingerprint == candidate.fingerprint)
    ).first()
    if doc is None:
        return None
    row = session.exec(
        select(SchemaVersion)
        .where(
            SchemaVersion.subject == subject,
            SchemaVersion.document_id == doc.id,
            col(SchemaVersion.state) != VersionState.DELETED,
        )
        .order_by(col(SchemaVersion.version))
    ).first()
    return _registered(row, doc) if row is not None else None


def check_candidate(
    *,
    session: Session,
    subject: str,
    candidate: Candidate,
    level: Level | None = None,
    policy: Policy | None = None,
    against: int | None = None,
) -> Verdict:
    """The verdict of the subject's rule (or the given level/policy) on the candidate.

    `against` checks only that version (as Confluent's /compatibility/.../versions/{v} does).
    """
    settings = config(session=session, subject=subject)
    level = level or settings.level
    policy = policy or settings.policy
    try:
        previous = versions(session=session, subject=subject)
    except SubjectNotFound:
        previous = []
    if against is not None:
        previous = [v for v in previous if v.version == against]
        if not previous:
            raise VersionNotFound(f"subject {subject!r} has no version {against}")
        level = _single(level)
    resources = dict(candidate.resources)
    for earlier in previous:
        for name, contents in resources_for(session=session, references=earlier.references).items():
            resources.setdefault(name, contents)
    try:
        return check(
            candidate.schema,
            [(v.version, v.schema) for v in previous],
            level=level,
            policy=policy,
            resources=resources,
        )
    except InvalidSchema as exc:  # the checker's own metaschema check is stricter than ours
        raise SchemaInvalid.at(
            "/schema", f"the compatibility checker cannot read it: {exc}"
        ) from None


def _single(level: Level) -> Level:
    """A transitive level checked against one named version is its plain form."""
    return Level(level.value.removesuffix("_TRANSITIVE"))


def changes_between(
    *, session: Session, old: Registered, candidate: Candidate
) -> list[dict[str, Any]]:
    resources = {
        **resources_for(session=session, references=old.references),
        **candidate.resources,
    }
    policy = config(session=session, subject=old.subject).policy
    try:
        changes = diff(old.schema, candidate.schema, policy=policy, resources=resources)
    except InvalidSchema as exc:
        raise SchemaInvalid.at(
            "/schema", f"the compatibility checker cannot read it: {exc}"
        ) from None
    return [
        {
            "pointer": c.pointer,
            "rule": c.rule,
            "message": c.message,
            "backward": c.backward,
            "forward": c.forward,
        }
        for c in changes
    ]


def register(
    *,
    session: Session,
    subject: str,
    candidate: Candidate,
    actor: str | None,
    owner: str | None,
) -> tuple[Registered, bool]:
    """Add the candidate as the subject's next version (checked under the subject's rule);
    identical content already registered returns that version. (version, created)."""
    check_subject(subject)
    existing = find_registered(session=session, subject=subject, candidate=candidate)
    if existing is not None:
        return existing, False
    verdict = check_candidate(session=session, subject=subject, candidate=candidate)
    if verdict.is_compatible is not True and verdict.level != Level.NONE:
        findings: list[Break | Undecided] = [*verdict.breaks, *verdict.undecided]
        raise Incompatible(
            f"the schema is {verdict.outcome.lower()} with subject {subject!r} under "
            f"{verdict.level.value} ({verdict.policy.value}): "
            + "; ".join(f.message for f in findings[:3]),
            errors=[
                {"pointer": "/schema" + f.pointer, "message": f"{f.rule}: {f.message}"}
                for f in findings
            ],
            extra={"verdict": verdict.to_json()},
        )
    doc = session.exec(
        select(SchemaDocument).where(SchemaDocument.fingerprint == candidate.fingerprint)
    ).first()
    if doc is None:
        doc = SchemaDocument(
            fingerprint=candidate.fingerprint,
            schema_type=candidate.schema_type,
            content=candidate.content,
            references=[r.model_dump() for r in candidate.references],
        )
        session.add(doc)
        _flush_or_concurrent(session, "the same schema")
    assert doc.id is not None
    number = next_version(session=session, subject=subject)
    row = SchemaVersion(
        subject=subject,
        version=number,
        document_id=doc.id,
        created_by=actor,
        owner=owner_of(session=session, subject=subject)[1] if number > 1 else owner,
    )
    session.add(row)
    _flush_or_concurrent(session, f"subject {subject!r}")
    return _registered(row, doc), True


def next_version(*, session: Session, subject: str) -> int:
    """The number the subject's next version gets (deleted versions keep theirs)."""
    last = session.exec(
        select(func.max(SchemaVersion.version)).where(SchemaVersion.subject == subject)
    ).first()
    return (last or 0) + 1


def set_state(
    *, session: Session, subject: str, version: int, state: VersionState
) -> dict[str, Any]:
    """Deprecate, un-deprecate or (softly) delete a version; the change as {state: [old, new]}."""
    row = session.exec(
        select(SchemaVersion).where(
            SchemaVersion.subject == subject, SchemaVersion.version == version
        )
    ).first()
    if row is None:
        raise VersionNotFound(f"subject {subject!r} has no version {version}")
    old = VersionState(row.state)
    if old == state:
        return {}
    if old == VersionState.DELETED:
        raise StillReferenced(
            f"{subject}/{version} was deleted; a deleted version cannot come back "
            "(register the same content again for a new version)"
        )
    if state == VersionState.DELETED:
        users = referenced_by(session=session, subject=subject, version=version)
        if users:
            raise StillReferenced(
                f"{subject}/{version} is referenced by schema versions {', '.join(users)}"
            )
    row.state = state
    row.changed_at = utcnow()
    session.add(row)
    session.flush()
    return {"state": [old.value, state.value]}
