"""`x-vn-personal-id`: a personal identification number agrees with the birth date (and sex)
held elsewhere in the same object, for both validators.

The keyword sits on an object schema and names that object's properties:

    "x-vn-personal-id": {"id": "so_dinh_danh", "birth_date": "ngay_sinh", "sex": "gioi_tinh"}

`id` is required, with `birth_date`, `sex` or both. When the id is 12 digits and the named
field is present and well formed, digits 4-6 of the number (G YY) must give the birth year, and
G's parity the sex. A birth date is `yyyyMMdd`, `yyyy-MM-dd` or `dd/MM/yyyy`; a sex is 1 (nam)
or 2 (nữ), as a number or a string. Anything absent or malformed is left to the fields' own
`format` / `required`: this rule only judges values it can read.

The error sits at the object (jsonschema-rs puts a custom keyword's error where the keyword
applies, and python-jsonschema is made to agree) and its message names both fields, id first.
A malformed keyword value fails compilation in jsonschema-rs and raises `SchemaError` in
python-jsonschema; `check_keyword_value` says what is wrong with it before registration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import jsonschema
import jsonschema.exceptions

from schemas.formats import FEMALE, MALE, birth_year, holder_sex

if TYPE_CHECKING:
    from jsonschema_rs import KeywordValidator

__all__ = ["KEYWORD", "KEYWORDS", "PYTHON_KEYWORDS", "PersonalIdRule", "check_keyword_value"]

KEYWORD = "x-vn-personal-id"
_MEMBERS = ("id", "birth_date", "sex")
_WELL_FORMED_ID = re.compile(r"[0-9]{12}")
_DATE_SHAPES = (  # (pattern, group order as year, month, day)
    (re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})"), (1, 2, 3)),
    (re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"), (1, 2, 3)),
    (re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})"), (3, 2, 1)),
)
_SEX_NAMES = {MALE: "nam", FEMALE: "nữ"}
_FIRST_YEAR, _LAST_YEAR = 1900, 2399  # what G (0-9) and YY can encode


def check_keyword_value(value: object) -> str | None:
    """What is wrong with a value of `x-vn-personal-id`, in one sentence; None when it is fine."""
    if not isinstance(value, Mapping):
        return f"{KEYWORD} must be an object naming properties: id, and birth_date and/or sex"
    unknown = sorted(str(k) for k in value if k not in _MEMBERS)
    if unknown:
        return f"{KEYWORD} knows id, birth_date and sex, not {', '.join(unknown)}"
    for member in _MEMBERS:
        named = value.get(member)
        if member in value and not (isinstance(named, str) and named):
            return f"{KEYWORD}.{member} must be the name of a property (a non-empty string)"
    if "id" not in value:
        return f"{KEYWORD} needs id: the property holding the personal identification number"
    if "birth_date" not in value and "sex" not in value:
        return f"{KEYWORD} needs birth_date, sex or both: the fields the number must agree with"
    names = [value[m] for m in _MEMBERS if m in value]
    if len(set(names)) != len(names):
        return f"{KEYWORD} must name a different property for each of id, birth_date and sex"
    return None


def _read_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    for shape, (y, m, d) in _DATE_SHAPES:
        match = shape.fullmatch(value)
        if match:
            try:
                return date(int(match[y]), int(match[m]), int(match[d]))
            except ValueError:
                return None
    return None


def _read_sex(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value in ("1", "2"):
        return int(value)
    return value if isinstance(value, int) and value in (MALE, FEMALE) else None


@dataclass(frozen=True, slots=True)
class PersonalIdRule:
    """One use of the keyword: the property names it was given."""

    id: str
    birth_date: str | None = None
    sex: str | None = None

    @classmethod
    def from_value(cls, value: object) -> PersonalIdRule:
        """The rule a keyword value describes; ValueError (the sentence) when it is malformed."""
        problem = check_keyword_value(value)
        if problem:
            raise ValueError(problem)
        assert isinstance(value, Mapping)
        return cls(value["id"], value.get("birth_date"), value.get("sex"))

    def problem(self, instance: object) -> str | None:
        """Why the object's number disagrees with its birth date or sex; None when it does not
        (or when there is nothing readable to compare)."""
        if not isinstance(instance, Mapping):
            return None
        number = instance.get(self.id)
        if not (isinstance(number, str) and _WELL_FORMED_ID.fullmatch(number)):
            return None
        found = []
        if self.birth_date is not None:
            born = _read_date(instance.get(self.birth_date))
            if born is not None:
                found.append(self._year_problem(number, born))
        if self.sex is not None:
            sex = _read_sex(instance.get(self.sex))
            if sex is not None and sex != holder_sex(number):
                encoded = holder_sex(number)
                found.append(
                    f"{self.id} encodes sex {encoded} ({_SEX_NAMES[encoded]}) in digit 4 "
                    f"(G={number[3]}) but {self.sex} is {sex} ({_SEX_NAMES[sex]})"
                )
        problems = [p for p in found if p]
        return "; ".join(problems) if problems else None

    def _year_problem(self, number: str, born: date) -> str | None:
        assert self.birth_date is not None
        if not _FIRST_YEAR <= born.year <= _LAST_YEAR:
            return (
                f"{self.birth_date} gives birth year {born.year}, which no personal "
                f"identification number in {self.id} can encode ({_FIRST_YEAR}-{_LAST_YEAR})"
            )
        encoded = birth_year(number)
        if encoded == born.year:
            return None
        return (
            f"{self.id} encodes birth year {encoded} in digits 4-6 ({number[3:6]}) "
            f"but {self.birth_date} gives {born.year}"
        )


class PersonalIdKeyword:
    """The keyword for jsonschema-rs (`validator_for(..., keywords=KEYWORDS)`)."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: list[str | int]) -> None:
        try:
            self.rule = PersonalIdRule.from_value(value)
        except ValueError as exc:
            where = "".join(f"/{p}" for p in schema_path)
            raise ValueError(f"{exc} (at {where})") from None

    def validate(self, instance: Any) -> None:
        problem = self.rule.problem(instance)
        if problem:
            raise ValueError(problem)


def _python_keyword(
    validator: Any, value: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """The keyword for python-jsonschema (`jsonschema.validators.extend`)."""
    try:
        rule = PersonalIdRule.from_value(value)
    except ValueError as exc:
        raise jsonschema.exceptions.SchemaError(str(exc)) from None
    problem = rule.problem(instance)
    if problem:
        yield jsonschema.ValidationError(problem)


KEYWORDS: dict[str, type[KeywordValidator]] = {KEYWORD: PersonalIdKeyword}
PYTHON_KEYWORDS: dict[str, Callable[[Any, Any, Any, Any], Iterator[Any]]] = {
    KEYWORD: _python_keyword
}
