"""Schema subjects as registry objects: who may evolve them, what uses them, and their place
in manifests (declared versions are checked against the stored, immutable ones).

Like every registry operation these add and flush; the caller records and commits. A manifest
entry:

    - subject: dan-cu.cong-dan
      compatibility: BACKWARD          # optional: the subject's own level and policy
      policy: DEFAULT
      versions:
        - version: 1                   # the number it must get (versions are immutable)
          schema: {...}                # lgsp apply reads `schema: {file: path}` for you
          references: [{name, subject, version}]
          state: active                # or deprecated, deleted
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from registry.crud.access import Caller, require_admin
from registry.crud.errors import Forbidden, Invalid
from registry.crud.services import contract_users
from registry.crud.topics import schema_users
from registry.types import Role
from schemas import store
from schemas.compatibility import Level, Policy, Verdict
from schemas.errors import SchemaError, StillReferenced, SubjectNotFound, VersionNotFound
from schemas.models import VersionState


def require_owner(session: Session, caller: Caller, subject: str) -> None:
    """Administrators evolve any subject; an integrator its agency's (or a new one)."""
    if caller.role is Role.ADMINISTRATOR:
        return
    exists, owner = store.owner_of(session=session, subject=subject)
    if caller.role is Role.INTEGRATOR and (not exists or owner == caller.agency_code):
        return
    whose = f"agency {owner}" if owner else "an administrator"
    raise Forbidden(
        f"subject {subject!r} belongs to {whose}; the key of {caller.name} may not change it"
    )


def users(session: Session, subject: str, version: int) -> dict[str, list[str]]:
    """What still uses a version: services' routes, topics and other schema versions."""
    return {
        "services": contract_users(session=session, subject=subject, version=version),
        "topics": schema_users(session=session, subject=subject, version=version),
        "schemas": store.referenced_by(session=session, subject=subject, version=version),
    }


def register(
    session: Session,
    caller: Caller,
    subject: str,
    schema: Any,
    references: Any,
    schema_type: str = "JSON",
) -> tuple[store.Registered, bool]:
    """Check and add the subject's next version; identical content returns the existing one."""
    store.check_subject(subject)
    require_owner(session, caller, subject)
    candidate = store.prepare(
        session=session, schema=schema, references=references, schema_type=schema_type
    )
    return store.register(
        session=session,
        subject=subject,
        candidate=candidate,
        actor=caller.name,
        owner=caller.agency_code,
    )


def compatibility(
    session: Session,
    subject: str,
    schema: Any,
    references: Any,
    *,
    level: Level | None = None,
    policy: Policy | None = None,
    against: int | None = None,
) -> Verdict:
    """The verdict on a candidate, registering nothing."""
    store.check_subject(subject)
    candidate = store.prepare(session=session, schema=schema, references=references)
    return store.check_candidate(
        session=session,
        subject=subject,
        candidate=candidate,
        level=level,
        policy=policy,
        against=against,
    )


def change_state(
    session: Session, caller: Caller, subject: str, version: int, state: VersionState
) -> dict[str, Any]:
    """Deprecate, reactivate or softly delete a version (deleting one that a service or a
    topic uses is refused)."""
    require_owner(session, caller, subject)
    if state is VersionState.DELETED:
        services = contract_users(session=session, subject=subject, version=version)
        if services:
            raise StillReferenced(
                f"{subject}/{version} is the contract of services {', '.join(services)}; "
                "point them at another version first"
            )
        topics = schema_users(session=session, subject=subject, version=version)
        if topics:
            raise StillReferenced(
                f"{subject}/{version} is the schema of topics {', '.join(topics)}; "
                "point them at another version first"
            )
    return store.set_state(session=session, subject=subject, version=version, state=state)


def delete_subject(session: Session, caller: Caller, subject: str) -> list[int]:
    """Soft-delete every version (all or nothing); the version numbers deleted."""
    found = store.versions(session=session, subject=subject)
    for version in found:
        change_state(session, caller, subject, version.version, VersionState.DELETED)
    return [v.version for v in found]


def set_config(
    session: Session,
    caller: Caller,
    subject: str | None,
    level: Level | None,
    policy: Policy | None,
) -> dict[str, Any]:
    if subject is None:
        require_admin(caller, "changing the global compatibility default")
    else:
        store.check_subject(subject)
        require_owner(session, caller, subject)
    return store.set_config(session=session, subject=subject, level=level, policy=policy)


def delete_config(session: Session, caller: Caller, subject: str) -> dict[str, Any]:
    require_owner(session, caller, subject)
    try:
        return store.delete_config(session=session, subject=subject)
    except SubjectNotFound:
        return {}


# ---------------------------------------------------------------- manifests


class VersionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    schema_: Any = Field(alias="schema")
    references: list[dict[str, Any]] = []
    state: VersionState = VersionState.ACTIVE


class SubjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str
    compatibility: Level | None = None
    policy: Policy | None = None
    versions: list[VersionSpec] = Field(min_length=1)


Done = tuple[Literal["create", "update"], str, dict[str, Any]]


def apply_subject(session: Session, caller: Caller, spec: SubjectSpec) -> list[Done]:
    """Make the subject hold the declared versions: (action, key, changes) for each change.

    The level and policy are set first, so the versions are checked under the declared rule.
    """
    done: list[Done] = []
    store.check_subject(spec.subject)
    if spec.compatibility or spec.policy:
        changes = set_config(session, caller, spec.subject, spec.compatibility, spec.policy)
        if changes:
            done.append(("update", f"{spec.subject}/config", changes))
    for i, declared in enumerate(spec.versions):
        try:
            done += _apply_version(session, caller, spec.subject, declared, f"/versions/{i}")
        except SchemaError as exc:
            errors = [{**e, "pointer": f"/versions/{i}{e['pointer']}"} for e in exc.errors or []]
            raise type(exc)(exc.detail, errors=errors or None, extra=exc.extra) from None
    return done


def _apply_version(
    session: Session, caller: Caller, subject: str, declared: VersionSpec, where: str
) -> list[Done]:
    done: list[Done] = []
    key = f"{subject}/{declared.version}"
    try:
        stored = store.get_version(
            session=session, subject=subject, version=declared.version, deleted=True
        )
    except (SubjectNotFound, VersionNotFound):
        stored = None
    candidate = store.prepare(
        session=session, schema=declared.schema_, references=declared.references
    )
    if stored is None:
        same = store.find_registered(session=session, subject=subject, candidate=candidate)
        expected = store.next_version(session=session, subject=subject)
        if same is not None or declared.version != expected:
            reason = (
                f"the same content is already version {same.version}"
                if same is not None
                else f"the subject's next version is {expected} (versions are numbered in order)"
            )
            raise Invalid.at(f"{where}/version", f"{key} cannot be created: {reason}")
        require_owner(session, caller, subject)
        found, _ = store.register(
            session=session,
            subject=subject,
            candidate=candidate,
            actor=caller.name,
            owner=caller.agency_code,
        )
        done.append(("create", key, {"id": [None, found.id]}))
    elif stored.fingerprint != candidate.fingerprint:
        raise Invalid.at(
            f"{where}/schema",
            f"{key} already holds a different schema, and versions are immutable: "
            "declare the change as a new version",
        )
    if declared.state is not VersionState.ACTIVE or (
        stored is not None and stored.state is not declared.state
    ):
        changes = change_state(session, caller, subject, declared.version, declared.state)
        if changes:
            done.append(("update", key, changes))
    return done


def export_subjects(session: Session, *, owner: str | None = None) -> list[dict[str, Any]]:
    """Every subject (or one agency's) as manifest entries, deleted versions included."""
    out = []
    for subject in store.subjects(session=session, deleted=True):
        found = store.versions(session=session, subject=subject, deleted=True)
        if owner is not None and found[0].owner != owner:
            continue
        entry: dict[str, Any] = {"subject": subject}
        config = store.config(session=session, subject=subject)
        if config.level_set:
            entry["compatibility"] = config.level.value
        if config.policy_set:
            entry["policy"] = config.policy.value
        entry["versions"] = []
        for version in found:
            item: dict[str, Any] = {"version": version.version, "schema": version.schema}
            if version.references:
                item["references"] = [r.model_dump() for r in version.references]
            if version.state is not VersionState.ACTIVE:
                item["state"] = version.state.value
            entry["versions"].append(item)
        out.append(entry)
    return out
