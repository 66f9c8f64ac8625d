"""The official JSON-Schema-Test-Suite (drafts 2020-12 and 7, required tests) through both
validators the hub builds: each must give the suite's answer, so the two agree.

One pytest test per test case (a schema and its instances). Every departure from the suite is
listed in SKIPS with its reason, and `test_skip_is_still_needed` fails on an entry that no longer
departs, so the list cannot rot. The suite is vendored in tests/data/json-schema-test-suite.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from schemas import store
from schemas.compatibility import Level
from schemas.errors import SchemaError
from schemas.models import SchemaConfig, SchemaDocument, SchemaVersion
from schemas.validation import (
    DRAFT_07,
    DRAFT_2020_12,
    UnresolvedReference,
    compile_validator,
    reference_validator,
)

SUITE = Path(__file__).resolve().parents[2] / "data" / "json-schema-test-suite"
REMOTES_URI = "http://localhost:1234/"  # where the suite's schemas expect remotes/ to be served
DRAFTS = {"draft2020-12": DRAFT_2020_12, "draft7": DRAFT_07}  # suite folder -> `$schema`

ResourcesFor = Callable[[Any], Mapping[str, Any]]  # a case's schema -> resources it refers to
BUILDERS = {"compiled": compile_validator, "reference": reference_validator}

ASSERTS_FORMATS = "the hub asserts formats; the suite's default is annotation-only"
NO_VOCABULARY = (
    "python-jsonschema does not implement $vocabulary: a metaschema without the validation "
    "vocabulary still has `minimum` asserted"
)

# Key: a case id + "::" + a test's description: that test departs from the suite; or a case id:
# a validator cannot be built for that case (the other one is still checked).
SKIPS: dict[str, str] = {
    "draft2020-12/format.json::0::email format"
    "::invalid email string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::1::idn-email format"
    "::invalid idn-email string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::2::regex format"
    "::invalid regex string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::3::ipv4 format"
    "::invalid ipv4 string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::4::ipv6 format"
    "::invalid ipv6 string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::5::idn-hostname format"
    "::invalid idn-hostname string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::6::hostname format"
    "::invalid hostname string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::7::date format"
    "::invalid date string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::8::date-time format"
    "::invalid date-time string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::9::time format"
    "::invalid time string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::10::json-pointer format"
    "::invalid json-pointer string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::11::relative-json-pointer format"
    "::invalid relative-json-pointer string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::12::iri format"
    "::invalid iri string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::13::iri-reference format"
    "::invalid iri-reference string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::14::uri format"
    "::invalid uri string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::15::uri-reference format"
    "::invalid uri-reference string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::16::uri-template format"
    "::invalid uri-template string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::17::uuid format"
    "::invalid uuid string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/format.json::18::duration format"
    "::invalid duration string is only an annotation by default": ASSERTS_FORMATS,
    "draft2020-12/vocabulary.json::0::schema that uses custom metaschema with with no validation"
    "::no validation: invalid number, but it still validates": NO_VOCABULARY,
}


@dataclass(frozen=True, slots=True)
class SuiteTest:
    key: str  # what SKIPS names
    description: str
    data: Any
    valid: bool


@dataclass(frozen=True, slots=True)
class Case:
    id: str  # "draft2020-12/anchor.json::0::Location-independent identifier"
    schema: Any  # with the draft's `$schema` when the suite leaves it out
    tests: tuple[SuiteTest, ...]


def _ascii(text: str, limit: int | None = None) -> str:
    safe = text.encode("ascii", "backslashreplace").decode()
    if limit is None or len(safe) <= limit:
        return safe
    return safe[:limit].rsplit(" ", 1)[0]


def _with_draft(schema: Any, draft: str) -> Any:
    # Both builders pick the draft from `$schema` (neither takes a draft argument), so it is
    # injected. Boolean schemas cannot carry it; they mean the same in every draft.
    if isinstance(schema, dict) and "$schema" not in schema:
        return {"$schema": draft, **schema}
    return schema


def load_cases() -> tuple[Case, ...]:
    cases = []
    for folder, draft in DRAFTS.items():
        for path in sorted((SUITE / "tests" / folder).glob("*.json")):
            for index, case in enumerate(json.loads(path.read_text(encoding="utf-8"))):
                case_id = f"{folder}/{path.name}::{index}::{_ascii(case['description'], 60)}"
                tests = tuple(
                    SuiteTest(
                        key=f"{case_id}::{_ascii(test['description'])}",
                        description=test["description"],
                        data=test["data"],
                        valid=test["valid"],
                    )
                    for test in case["tests"]
                )
                cases.append(Case(case_id, _with_draft(case["schema"], draft), tests))
    return tuple(cases)


CASES = load_cases()
CASE_OF = {key: case for case in CASES for key in (case.id, *(test.key for test in case.tests))}


# Remote documents -----------------------------------------------------------------------------


@functools.cache
def remotes() -> Mapping[str, Any]:
    """Every document under remotes/, by the URI the suite's schemas use for it."""
    root = SUITE / "remotes"
    return {
        REMOTES_URI + path.relative_to(root).as_posix(): json.loads(path.read_text("utf-8"))
        for path in sorted(root.rglob("*.json"))
    }


def remote_resources(schema: Any) -> dict[str, Any]:
    """The remotes `schema` refers to, transitively, as `resources` for the validators.

    Not simply all of remotes/: jsonschema-rs checks each resource's `$schema`, and the
    draft-next ones name a metaschema it does not know. The official metaschemas (2020-12 and
    draft 7, with their vocabularies) are not needed: both libraries ship them and resolve
    them without a retriever.
    """
    available = remotes()
    found: dict[str, Any] = {}
    pending = _references(schema, base="")
    while pending:
        uri = pending.pop()
        if uri in available and uri not in found:
            found[uri] = available[uri]
            pending |= _references(found[uri], base=uri)
    return found


def _references(node: Any, *, base: str) -> set[str]:
    """The documents (absolute URIs, no fragment) that `$ref`, `$dynamicRef` and `$schema` in
    `node` name, against the enclosing `$id`s. It over-approximates (it walks `enum` and
    `const` too, and reads a `$ref` against both bases where draft 7 ignores a sibling `$id`):
    an extra resource is harmless, a missing one is not."""
    found: set[str] = set()
    if isinstance(node, dict):
        inner = urljoin(base, node["$id"]) if isinstance(node.get("$id"), str) else base
        bases = {base, inner}
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef", "$schema") and isinstance(value, str):
                found |= {urldefrag(urljoin(each, value)).url for each in bases}
            else:
                found |= _references(value, base=inner)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value, base=base)
    return found


class RegistryRemotes:
    """The suite's remotes served by the hub's schema registry: each remote a case needs is
    registered (once) as a subject, with the remotes it names as its declared references, and a
    case's resources are what the registry resolves from references by those names."""

    def __init__(self) -> None:
        self.engine = create_engine("sqlite://", poolclass=StaticPool)
        models = (SchemaDocument, SchemaVersion, SchemaConfig)
        tables = [SQLModel.metadata.tables[str(model.__tablename__)] for model in models]
        SQLModel.metadata.create_all(self.engine, tables=tables)
        self.subjects: dict[str, str] = {}  # remote URI -> subject
        self.refused: dict[str, str] = {}  # remote URI -> why the registry refused it
        with Session(self.engine) as session:
            store.set_config(session=session, subject=None, level=Level.NONE)
            session.commit()

    def _register(self, session: Session, uri: str) -> None:
        if uri in self.subjects or uri in self.refused:
            return
        document = remotes()[uri]
        if uri.startswith(REMOTES_URI + "draft7/") and isinstance(document, dict):
            # The registry reads a schema without `$schema` as 2020-12: draft-7 remotes say so.
            document = {"$schema": DRAFT_07, **document}
        # Each reference is declared under the name its `$ref` is written with (relative names
        # resolve against the remote's own URI, as for a retrieved document).
        written = {
            name: absolute
            for name, absolute in _written_references(document, base=uri).items()
            if absolute in remotes() and absolute != uri
        }
        for other in sorted(set(written.values())):
            self._register(session, other)
        refs = [
            {"name": name, "subject": self.subjects[absolute], "version": 1}
            for name, absolute in sorted(written.items())
            if absolute in self.subjects
        ]
        subject = "suite." + uri.removeprefix(REMOTES_URI).replace("/", ".")
        try:
            candidate = store.prepare(session=session, schema=document, references=refs)
            store.register(
                session=session, subject=subject, candidate=candidate, actor="suite", owner=None
            )
        except SchemaError as error:
            self.refused[uri] = f"{error.detail}: {error.errors}"
            return
        self.subjects[uri] = subject

    def __call__(self, schema: Any) -> Mapping[str, Any]:
        wanted = sorted(u for u in _references(schema, base="") if u in remotes())
        with Session(self.engine) as session:
            for uri in wanted:
                self._register(session, uri)
            session.commit()
            refs = [
                store.Reference(name=uri, subject=self.subjects[uri], version=1)
                for uri in wanted
                if uri in self.subjects
            ]
            return store.resources_for(session=session, references=refs)


@pytest.fixture(scope="session")
def suite_resources() -> ResourcesFor:
    """The resources a case's schema needs, resolved through the schema registry."""
    return RegistryRemotes()


def _written_references(node: Any, *, base: str) -> dict[str, str]:
    """`$ref` values (without fragment) as written in `node` -> the document URI each names."""
    found: dict[str, str] = {}
    if isinstance(node, dict):
        inner = urljoin(base, node["$id"]) if isinstance(node.get("$id"), str) else base
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                written = urldefrag(value).url
                if written:
                    found[written] = urldefrag(urljoin(inner, value)).url
            else:
                found.update(_written_references(value, base=inner))
    elif isinstance(node, list):
        for value in node:
            found.update(_written_references(value, base=base))
    return found


# Running a case -------------------------------------------------------------------------------


def departures(case: Case, resources: Mapping[str, Any]) -> dict[str, str]:
    """Where the validators depart from the suite: by test key, and by case id when a validator
    cannot be built (the other one is still run). Empty when both give every expected answer."""
    found: dict[str, str] = {}
    validators, broken = {}, []
    for name, build in BUILDERS.items():
        try:
            validators[name] = build(case.schema, resources=resources)
        except Exception as error:
            broken.append(f"{name} cannot be built: {_describe(error)}")
    if broken:
        found[case.id] = "; ".join(broken)
    for test in case.tests:
        said = {name: _outcome(validator, test.data) for name, validator in validators.items()}
        if any(verdict is not test.valid for verdict in said.values()):
            found[test.key] = " ".join(
                [
                    f"{test.description!r}: the suite says valid={test.valid},",
                    ", ".join(f"{name} {verdict}" for name, verdict in said.items()),
                    "(THE VALIDATORS DISAGREE)" if len(set(map(str, said.values()))) > 1 else "",
                ]
            ).strip()
    return found


def _outcome(validator: Any, instance: Any) -> bool | str:
    try:
        return bool(validator.is_valid(instance))
    except Exception as error:
        return _describe(error)


def _describe(error: BaseException) -> str:
    # jsonschema-rs keeps only the text of our retriever's error; referencing chains it.
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, UnresolvedReference) or "UnresolvedReference" in str(cause):
            return f"UnresolvedReference raised: {str(cause).splitlines()[0]}"
        cause = cause.__cause__ or cause.__context__
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


# Tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_case(case: Case, suite_resources: ResourcesFor) -> None:
    found = departures(case, suite_resources(case.schema))

    unexpected = [message for key, message in found.items() if key not in SKIPS]
    assert not unexpected, "\n".join([f"{case.id} departs from the suite:", *unexpected])
    if case.id in found:
        pytest.skip(SKIPS[case.id])


@pytest.mark.parametrize("key", [pytest.param(key, id=key) for key in sorted(SKIPS)])
def test_skip_is_still_needed(key: str, suite_resources: ResourcesFor) -> None:
    case = CASE_OF.get(key)
    assert case is not None, f"SKIPS names no case or test of the suite: {key}"
    departure = departures(case, suite_resources(case.schema)).get(key)

    assert departure, f"no longer departs from the suite, remove it from SKIPS: {key}"
    assert "UnresolvedReference" not in departure, f"a skip must not hide a missing resource: {key}"


def test_cases_of_both_drafts_are_loaded() -> None:
    assert {case.id.split("/")[0] for case in CASES} == set(DRAFTS)
    assert len(CASES) > 600


def test_remote_resources_follow_references_transitively() -> None:
    schema = {
        "$schema": DRAFT_2020_12,
        "$id": "http://localhost:1234/draft2020-12/some-id",
        "properties": {"name": {"$ref": "nested/foo-ref-string.json"}},
    }

    assert set(remote_resources(schema)) == {
        "http://localhost:1234/draft2020-12/nested/foo-ref-string.json",
        "http://localhost:1234/draft2020-12/nested/string.json",
    }


def test_a_reference_outside_the_resources_is_reported_as_unresolved() -> None:
    schema = {"$ref": "http://localhost:1234/draft2020-12/nowhere.json"}
    case = Case("made-up", schema, (SuiteTest("made-up::any", "any", 1, valid=True),))

    found = departures(case, remote_resources(schema))

    assert "UnresolvedReference" in "".join(found.values())
