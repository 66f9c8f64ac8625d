"""The rule table: every kind of change the checker names, and what it means each way.

Ids are Confluent's `io.confluent.kafka.schemaregistry.json.diff.Difference.Type` names where
Confluent has the rule (`source="confluent"`), so integrators recognise them; the few the
checker adds (formats, const, enum added or removed, conditionals, patternProperties, oneOf
ambiguity...) say `source="lgsp"`.

A change is always described from the schema documents are *written* with to the schema they
are *read* with. BACKWARD reads old documents with the new schema, so `backward` is the verdict
for the change as named (old -> new). `forward` is what the same edit means for FORWARD, where
the new schema writes and the old one reads: the verdict of its `mirror`, the name the edit
takes when the pair is swapped (that is how FORWARD is checked). `None` means the table cannot
tell: the checker then looks for a counterexample and reports UNDECIDED when it finds none.

Templates are filled in two steps: the comparison fills the domain fields; `{where}` (the place
in the document), `{writer}` and `{reader}` ("old"/"new") are filled when the finding is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.compatibility.types import Policy


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    family: str
    keyword: str
    template: str
    backward: bool | None
    forward: bool | None
    mirror: str | None = None
    robust: bool = False  # under Policy.ROBUST: compatible when the property concerned is optional
    source: str = "confluent"


def _annotation(rule_id: str, keyword: str, noun: str) -> Rule:
    return Rule(
        rule_id,
        "annotation",
        keyword,
        f"{noun} of {{where}} is {{r}} in the {{reader}} schema and {{w}} in the {{writer}} "
        "schema (an annotation: no document is accepted or refused because of it)",
        True,
        True,
        rule_id,
    )


_ANNOTATIONS = (
    _annotation("ID_CHANGED", "$id", "the $id"),
    _annotation("TITLE_CHANGED", "title", "the title"),
    _annotation("DESCRIPTION_CHANGED", "description", "the description"),
    _annotation("DEFAULT_CHANGED", "default", "the default"),
)

_TYPES = (
    Rule(
        "TYPE_EXTENDED",
        "type",
        "type",
        "{where} accepts {r} in the {reader} schema, more than {w} in the {writer} schema",
        True,
        False,
        "TYPE_NARROWED",
    ),
    Rule(
        "TYPE_NARROWED",
        "type",
        "type",
        "{where} accepts only {r} in the {reader} schema but {w} in the {writer} schema: "
        "{lost} values written under the {writer} schema are refused",
        False,
        True,
        "TYPE_EXTENDED",
    ),
    Rule(
        "TYPE_CHANGED",
        "type",
        "type",
        "{where} accepts {r} in the {reader} schema and {w} in the {writer} schema: "
        "{lost} values written under the {writer} schema are refused",
        False,
        False,
        "TYPE_CHANGED",
    ),
)


def _bound_family(
    prefix: str, family: str, keyword: str, noun: str, *, upper: bool, lost: str
) -> tuple[Rule, ...]:
    """ADDED/REMOVED/INCREASED/DECREASED for a bound; `upper` bounds loosen when raised."""
    tighter, looser = ("DECREASED", "INCREASED") if upper else ("INCREASED", "DECREASED")
    return (
        Rule(
            f"{prefix}_ADDED",
            family,
            keyword,
            f"{{where}} has {keyword} {{r}} in the {{reader}} schema and none in the {{writer}} "
            f"schema: {lost} written under the {{writer}} schema are refused",
            False,
            True,
            f"{prefix}_REMOVED",
        ),
        Rule(
            f"{prefix}_REMOVED",
            family,
            keyword,
            f"{{where}} has no {keyword} in the {{reader}} schema ({{w}} in the {{writer}} schema)",
            True,
            False,
            f"{prefix}_ADDED",
        ),
        Rule(
            f"{prefix}_{looser}",
            family,
            keyword,
            f"{noun} of {{where}} is {{r}} in the {{reader}} schema, looser than {{w}} in the "
            "{writer} schema",
            True,
            False,
            f"{prefix}_{tighter}",
        ),
        Rule(
            f"{prefix}_{tighter}",
            family,
            keyword,
            f"{noun} of {{where}} is {{r}} in the {{reader}} schema, stricter than {{w}} in the "
            f"{{writer}} schema: {lost} written under the {{writer}} schema are refused",
            False,
            True,
            f"{prefix}_{looser}",
        ),
    )


_STRINGS = (
    *_bound_family(
        "MAX_LENGTH", "string", "maxLength", "maxLength", upper=True, lost="longer strings"
    ),
    *_bound_family(
        "MIN_LENGTH", "string", "minLength", "minLength", upper=False, lost="shorter strings"
    ),
    Rule(
        "PATTERN_ADDED",
        "string",
        "pattern",
        "{where} must match pattern {r} in the {reader} schema and has no pattern in the "
        "{writer} schema: strings not matching it written under the {writer} schema are refused",
        False,
        True,
        "PATTERN_REMOVED",
    ),
    Rule(
        "PATTERN_REMOVED",
        "string",
        "pattern",
        "{where} does not have to match pattern {w} in the {reader} schema (it does in the "
        "{writer} schema)",
        True,
        False,
        "PATTERN_ADDED",
    ),
    Rule(
        "PATTERN_CHANGED",
        "string",
        "pattern",
        "{where} must match pattern {r} in the {reader} schema instead of {w} in the {writer} "
        "schema: strings matching only the {writer} pattern are refused",
        False,
        False,
        "PATTERN_CHANGED",
    ),
    Rule(
        "FORMAT_ADDED",
        "string",
        "format",
        "{where} must have format {r} in the {reader} schema and has no format in the {writer} "
        "schema: strings of another shape written under the {writer} schema are refused",
        False,
        True,
        "FORMAT_REMOVED",
        source="lgsp",
    ),
    Rule(
        "FORMAT_REMOVED",
        "string",
        "format",
        "{where} does not have to have format {w} in the {reader} schema (it does in the "
        "{writer} schema)",
        True,
        False,
        "FORMAT_ADDED",
        source="lgsp",
    ),
    Rule(
        "FORMAT_CHANGED",
        "string",
        "format",
        "{where} must have format {r} in the {reader} schema instead of {w} in the {writer} "
        "schema: strings of format {w} that are not {r} are refused",
        False,
        False,
        "FORMAT_CHANGED",
        source="lgsp",
    ),
)

_NUMBERS = (
    *_bound_family(
        "MAXIMUM", "number", "maximum", "the maximum", upper=True, lost="larger numbers"
    ),
    *_bound_family(
        "MINIMUM", "number", "minimum", "the minimum", upper=False, lost="smaller numbers"
    ),
    *_bound_family(
        "EXCLUSIVE_MAXIMUM",
        "number",
        "exclusiveMaximum",
        "exclusiveMaximum",
        upper=True,
        lost="larger numbers",
    ),
    *_bound_family(
        "EXCLUSIVE_MINIMUM",
        "number",
        "exclusiveMinimum",
        "exclusiveMinimum",
        upper=False,
        lost="smaller numbers",
    ),
    Rule(
        "MULTIPLE_OF_ADDED",
        "number",
        "multipleOf",
        "{where} must be a multiple of {r} in the {reader} schema and has no multipleOf in the "
        "{writer} schema: other numbers written under the {writer} schema are refused",
        False,
        True,
        "MULTIPLE_OF_REMOVED",
    ),
    Rule(
        "MULTIPLE_OF_REMOVED",
        "number",
        "multipleOf",
        "{where} does not have to be a multiple of {w} in the {reader} schema (it does in the "
        "{writer} schema)",
        True,
        False,
        "MULTIPLE_OF_ADDED",
    ),
    Rule(
        "MULTIPLE_OF_EXPANDED",
        "number",
        "multipleOf",
        "{where} must be a multiple of {r} in the {reader} schema, a multiple of {w} in the "
        "{writer} schema: the other multiples of {w} are refused",
        False,
        True,
        "MULTIPLE_OF_REDUCED",
    ),
    Rule(
        "MULTIPLE_OF_REDUCED",
        "number",
        "multipleOf",
        "{where} must be a multiple of {r} in the {reader} schema, which divides {w} of the "
        "{writer} schema",
        True,
        False,
        "MULTIPLE_OF_EXPANDED",
    ),
    Rule(
        "MULTIPLE_OF_CHANGED",
        "number",
        "multipleOf",
        "{where} must be a multiple of {r} in the {reader} schema instead of {w} in the "
        "{writer} schema: multiples of {w} that are not multiples of {r} are refused",
        False,
        False,
        "MULTIPLE_OF_CHANGED",
    ),
)

_VALUES = (
    Rule(
        "ENUM_ARRAY_EXTENDED",
        "enum",
        "enum",
        "{where} allows {r} in the {reader} schema, all of {w} and more",
        True,
        False,
        "ENUM_ARRAY_NARROWED",
    ),
    Rule(
        "ENUM_ARRAY_NARROWED",
        "enum",
        "enum",
        "{where} allows only {r} in the {reader} schema: the values {lost} written under the "
        "{writer} schema are refused",
        False,
        True,
        "ENUM_ARRAY_EXTENDED",
    ),
    Rule(
        "ENUM_ARRAY_CHANGED",
        "enum",
        "enum",
        "{where} allows {r} in the {reader} schema and {w} in the {writer} schema: the values "
        "{lost} written under the {writer} schema are refused",
        False,
        False,
        "ENUM_ARRAY_CHANGED",
    ),
    Rule(
        "ENUM_ARRAY_ADDED",
        "enum",
        "enum",
        "{where} is limited to {r} in the {reader} schema and is not enumerated in the "
        "{writer} schema: other values written under the {writer} schema are refused",
        False,
        True,
        "ENUM_ARRAY_REMOVED",
        source="lgsp",
    ),
    Rule(
        "ENUM_ARRAY_REMOVED",
        "enum",
        "enum",
        "{where} is not limited to {w} in the {reader} schema (it is in the {writer} schema)",
        True,
        False,
        "ENUM_ARRAY_ADDED",
        source="lgsp",
    ),
    Rule(
        "CONST_ADDED",
        "enum",
        "const",
        "{where} must be {r} in the {reader} schema and is not fixed in the {writer} schema: "
        "other values written under the {writer} schema are refused",
        False,
        True,
        "CONST_REMOVED",
        source="lgsp",
    ),
    Rule(
        "CONST_REMOVED",
        "enum",
        "const",
        "{where} does not have to be {w} in the {reader} schema (it does in the {writer} schema)",
        True,
        False,
        "CONST_ADDED",
        source="lgsp",
    ),
    Rule(
        "CONST_CHANGED",
        "enum",
        "const",
        "{where} must be {r} in the {reader} schema and {w} in the {writer} schema: documents "
        "written under the {writer} schema are refused",
        False,
        False,
        "CONST_CHANGED",
        source="lgsp",
    ),
)

_REQUIRED = (
    Rule(
        "REQUIRED_ATTRIBUTE_ADDED",
        "object",
        "required",
        "property '{name}' of {where} is required by the {reader} schema but not by the "
        "{writer} schema, and has no default: documents written without it are refused",
        False,
        True,
        "REQUIRED_ATTRIBUTE_REMOVED",
    ),
    Rule(
        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
        "object",
        "required",
        "property '{name}' of {where} is required by the {reader} schema but not by the "
        "{writer} schema; it has a default ({default}) that readers fill in",
        True,
        True,
        "REQUIRED_ATTRIBUTE_REMOVED",
    ),
    Rule(
        "REQUIRED_ATTRIBUTE_REMOVED",
        "object",
        "required",
        "property '{name}' of {where} is required by the {writer} schema but not by the "
        "{reader} schema",
        True,
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
    ),
)

_PROPERTIES = (
    Rule(
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {reader} schema with constraints, "
        "while the open content model of the {writer} schema accepts any value for it: "
        "documents written with another value are refused",
        False,
        True,
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
        robust=True,
    ),
    Rule(
        "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared and required by the {reader} schema, "
        "without a default, while the open content model of the {writer} schema does not "
        "declare it: documents written without it, or with another value, are refused",
        False,
        True,
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared and required, with a default ({default}), by "
        "the {reader} schema, while the open content model of the {writer} schema accepts any "
        "value for it: documents written with another value are refused",
        False,
        True,
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared without constraints by the {reader} schema; "
        "the open content model of the {writer} schema already accepts any value for it",
        True,
        True,
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "optional property '{name}' of {where} is declared by the {reader} schema; the content "
        "model of the {writer} schema does not let documents carry it",
        True,
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    Rule(
        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is required by the {reader} schema, without a default, "
        "and documents written under the {writer} schema cannot carry it: they are refused",
        False,
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    Rule(
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is required by the {reader} schema with a default "
        "({default}) that readers fill in; the {writer} schema does not let documents carry it",
        True,
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {writer} schema but not by the "
        "{reader} schema, whose open content model accepts any value for it",
        True,
        False,
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {writer} schema but the closed content "
        "model of the {reader} schema refuses it: documents written with it are refused",
        False,
        True,
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        robust=True,
    ),
    Rule(
        "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is forbidden (false) by the {writer} schema and left to "
        "the closed content model of the {reader} schema",
        True,
        True,
        "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {reader} schema within what the "
        "additionalProperties/patternProperties of the {writer} schema accept for it",
        True,
        True,
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {reader} schema more strictly than the "
        "additionalProperties/patternProperties of the {writer} schema accept it ({detail}): "
        "documents written with such values are refused",
        False,
        True,
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        robust=True,
    ),
    Rule(
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {writer} schema but not by the "
        "{reader} schema, whose additionalProperties/patternProperties accept every value the "
        "{writer} schema allows",
        True,
        True,
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ),
    Rule(
        "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "content-model",
        "properties",
        "property '{name}' of {where} is declared by the {writer} schema but not by the "
        "{reader} schema, whose additionalProperties/patternProperties refuse values the "
        "{writer} schema allows ({detail})",
        False,
        True,
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        robust=True,
    ),
)


def _open_model(prefix: str, family: str, keyword: str, things: str) -> tuple[Rule, ...]:
    """additionalProperties / unevaluatedProperties / additionalItems / unevaluatedItems."""
    return (
        Rule(
            f"{prefix}_ADDED",
            family,
            keyword,
            f"{{where}} accepts {things} in the {{reader}} schema, which the {{writer}} schema "
            "refuses",
            True,
            False,
            f"{prefix}_REMOVED",
        ),
        Rule(
            f"{prefix}_REMOVED",
            family,
            keyword,
            f"{{where}} refuses {things} in the {{reader}} schema ({keyword}: false), which the "
            f"{{writer}} schema accepts: documents written with them are refused",
            False,
            True,
            f"{prefix}_ADDED",
        ),
        Rule(
            f"{prefix}_EXTENDED",
            family,
            keyword,
            f"{{where}} accepts {things} of any value in the {{reader}} schema; the {{writer}} "
            "schema constrains them",
            True,
            False,
            f"{prefix}_NARROWED",
        ),
        Rule(
            f"{prefix}_NARROWED",
            family,
            keyword,
            f"{{where}} constrains {things} in the {{reader}} schema, which the {{writer}} schema "
            "accepts with any value: documents written with other values are refused",
            False,
            True,
            f"{prefix}_EXTENDED",
        ),
    )


_OBJECTS = (
    *_open_model(
        "ADDITIONAL_PROPERTIES", "content-model", "additionalProperties", "additional properties"
    ),
    *_open_model(
        "UNEVALUATED_PROPERTIES",
        "content-model",
        "unevaluatedProperties",
        "unevaluated properties",
    ),
    *_bound_family(
        "MAX_PROPERTIES",
        "object",
        "maxProperties",
        "maxProperties",
        upper=True,
        lost="objects with more properties",
    ),
    *_bound_family(
        "MIN_PROPERTIES",
        "object",
        "minProperties",
        "minProperties",
        upper=False,
        lost="objects with fewer properties",
    ),
    Rule(
        "DEPENDENCY_ARRAY_ADDED",
        "object",
        "dependentRequired",
        "{where}: when '{name}' is present the {reader} schema also requires {r}, which the "
        "{writer} schema does not: documents written with '{name}' alone are refused",
        False,
        True,
        "DEPENDENCY_ARRAY_REMOVED",
    ),
    Rule(
        "DEPENDENCY_ARRAY_REMOVED",
        "object",
        "dependentRequired",
        "{where}: the {reader} schema does not require {w} whenever '{name}' is present (the "
        "{writer} schema does)",
        True,
        False,
        "DEPENDENCY_ARRAY_ADDED",
    ),
    Rule(
        "DEPENDENCY_ARRAY_EXTENDED",
        "object",
        "dependentRequired",
        "{where}: when '{name}' is present the {reader} schema requires {r}, more than {w}: "
        "documents written without the others are refused",
        False,
        True,
        "DEPENDENCY_ARRAY_NARROWED",
    ),
    Rule(
        "DEPENDENCY_ARRAY_NARROWED",
        "object",
        "dependentRequired",
        "{where}: when '{name}' is present the {reader} schema requires only {r}, fewer than {w}",
        True,
        False,
        "DEPENDENCY_ARRAY_EXTENDED",
    ),
    Rule(
        "DEPENDENCY_ARRAY_CHANGED",
        "object",
        "dependentRequired",
        "{where}: when '{name}' is present the {reader} schema requires {r} instead of {w}: "
        "documents written without the new ones are refused",
        False,
        False,
        "DEPENDENCY_ARRAY_CHANGED",
    ),
    Rule(
        "DEPENDENCY_SCHEMA_ADDED",
        "object",
        "dependentSchemas",
        "{where}: when '{name}' is present the {reader} schema applies a schema the {writer} "
        "schema does not: documents written with '{name}' that fail it are refused",
        False,
        True,
        "DEPENDENCY_SCHEMA_REMOVED",
    ),
    Rule(
        "DEPENDENCY_SCHEMA_REMOVED",
        "object",
        "dependentSchemas",
        "{where}: the {reader} schema applies no schema when '{name}' is present (the {writer} "
        "schema does)",
        True,
        False,
        "DEPENDENCY_SCHEMA_ADDED",
    ),
    Rule(
        "PATTERN_PROPERTY_ADDED",
        "content-model",
        "patternProperties",
        "{where}: properties whose names match {r} are constrained by the patternProperties of "
        "the {reader} schema, which the {writer} schema does not have",
        None,
        None,
        "PATTERN_PROPERTY_REMOVED",
        source="lgsp",
    ),
    Rule(
        "PATTERN_PROPERTY_REMOVED",
        "content-model",
        "patternProperties",
        "{where}: the {reader} schema has no patternProperties {w} (the {writer} schema has); "
        "properties matching it fall to its other rules",
        None,
        None,
        "PATTERN_PROPERTY_ADDED",
        source="lgsp",
    ),
    Rule(
        "PROPERTY_NAMES_CHANGED",
        "content-model",
        "propertyNames",
        "{where}: propertyNames of the {reader} schema differ from those of the {writer} schema: "
        "documents written with names it refuses are refused",
        None,
        None,
        "PROPERTY_NAMES_CHANGED",
        source="lgsp",
    ),
)


def _item_rules() -> tuple[Rule, ...]:
    def rule(rule_id: str, template: str, backward: bool, forward: bool, mirror: str) -> Rule:
        return Rule(rule_id, "array", "items", template, backward, forward, mirror)

    return (
        rule(
            "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
            "item {index} of {where} is constrained by the {reader} schema, while the {writer} "
            "schema accepts any value there: arrays written with another value there are refused",
            False,
            True,
            "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared without constraints by the {reader} schema; "
            "the {writer} schema already accepts any value there",
            True,
            True,
            "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
            "item {index} of {where} is declared by the {reader} schema; the {writer} schema does "
            "not allow arrays that long",
            True,
            False,
            "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        ),
        rule(
            "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared by the {writer} schema but not by the {reader} "
            "schema, which accepts any value there",
            True,
            False,
            "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            "item {index} of {where} is forbidden (false) by the {writer} schema and left to the "
            "closed content model of the {reader} schema",
            True,
            True,
            "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        ),
        rule(
            "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            "item {index} of {where} is declared by the {writer} schema but the {reader} schema "
            "refuses arrays that long: arrays written with it are refused",
            False,
            True,
            "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
        ),
        rule(
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared by the {reader} schema within what the "
            "{writer} schema accepts for items past its tuple",
            True,
            True,
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared by the {reader} schema more strictly than the "
            "{writer} schema accepts items past its tuple ({detail})",
            False,
            True,
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared by the {writer} schema but not by the {reader} "
            "schema, whose schema for items past the tuple accepts every value the {writer} "
            "schema allows there",
            True,
            True,
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ),
        rule(
            "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "item {index} of {where} is declared by the {writer} schema but not by the {reader} "
            "schema, whose schema for items past the tuple refuses values the {writer} schema "
            "allows ({detail})",
            False,
            True,
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ),
    )


_ARRAYS = (
    *_item_rules(),
    *_open_model("ADDITIONAL_ITEMS", "array", "additionalItems", "items past the tuple"),
    *_open_model("UNEVALUATED_ITEMS", "array", "unevaluatedItems", "unevaluated items"),
    *_bound_family("MAX_ITEMS", "array", "maxItems", "maxItems", upper=True, lost="longer arrays"),
    *_bound_family(
        "MIN_ITEMS", "array", "minItems", "minItems", upper=False, lost="shorter arrays"
    ),
    *_bound_family(
        "MAX_CONTAINS",
        "array",
        "maxContains",
        "maxContains",
        upper=True,
        lost="arrays with more matching items",
    ),
    *_bound_family(
        "MIN_CONTAINS",
        "array",
        "minContains",
        "minContains",
        upper=False,
        lost="arrays with fewer matching items",
    ),
    Rule(
        "UNIQUE_ITEMS_ADDED",
        "array",
        "uniqueItems",
        "{where} must have unique items in the {reader} schema, not in the {writer} schema: "
        "arrays written with repeated items are refused",
        False,
        True,
        "UNIQUE_ITEMS_REMOVED",
    ),
    Rule(
        "UNIQUE_ITEMS_REMOVED",
        "array",
        "uniqueItems",
        "{where} may repeat items in the {reader} schema (not in the {writer} schema)",
        True,
        False,
        "UNIQUE_ITEMS_ADDED",
    ),
)

_SUBSCHEMAS = (
    Rule(
        "SCHEMA_ADDED",
        "subschema",
        "*",
        "{where} has a '{kw}' subschema in the {reader} schema that the {writer} schema does not "
        "have: documents written that fail it are refused",
        False,
        True,
        "SCHEMA_REMOVED",
    ),
    Rule(
        "SCHEMA_REMOVED",
        "subschema",
        "*",
        "{where} has no '{kw}' subschema in the {reader} schema (the {writer} schema has one)",
        True,
        False,
        "SCHEMA_ADDED",
    ),
)

_COMBINED = (
    Rule(
        "COMBINED_TYPE_EXTENDED",
        "combined",
        "anyOf",
        "{where} combines its subschemas with {r} in the {reader} schema instead of {w}, which "
        "accepts at least as much",
        True,
        None,
        "COMBINED_TYPE_CHANGED",
    ),
    Rule(
        "COMBINED_TYPE_CHANGED",
        "combined",
        "oneOf",
        "{where} combines its subschemas with {r} in the {reader} schema instead of {w} in the "
        "{writer} schema (decided by comparing the subschemas)",
        None,
        True,
        "COMBINED_TYPE_EXTENDED",
    ),
    Rule(
        "PRODUCT_TYPE_EXTENDED",
        "combined",
        "allOf",
        "{where} has {r} allOf subschemas in the {reader} schema, {w} in the {writer} schema "
        "(each is compared keyword by keyword)",
        True,
        True,
        "PRODUCT_TYPE_NARROWED",
        source="lgsp",
    ),
    Rule(
        "PRODUCT_TYPE_NARROWED",
        "combined",
        "allOf",
        "{where} has {r} allOf subschemas in the {reader} schema, {w} in the {writer} schema "
        "(each is compared keyword by keyword)",
        True,
        True,
        "PRODUCT_TYPE_EXTENDED",
        source="lgsp",
    ),
    Rule(
        "SUM_TYPE_EXTENDED",
        "combined",
        "anyOf",
        "{where} offers {r} alternative(s) in the {reader} schema ({w} in the {writer} schema) "
        "and every document of the {writer} schema fits one of them",
        True,
        False,
        "SUM_TYPE_NARROWED",
    ),
    Rule(
        "SUM_TYPE_NARROWED",
        "combined",
        "anyOf",
        "{where} offers {r} alternative(s) in the {reader} schema, fewer than {w}, and some "
        "documents of the {writer} schema fit none of them ({detail})",
        False,
        True,
        "SUM_TYPE_EXTENDED",
    ),
    Rule(
        "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
        "combined",
        "anyOf",
        "{where}: no alternative of {kw} in the {reader} schema accepts every document of the "
        "{writer} schema ({detail})",
        False,
        False,
        "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
    ),
    Rule(
        "ONE_OF_AMBIGUOUS",
        "combined",
        "oneOf",
        "{where}: documents of the {writer} schema may match more than one alternative of the "
        "oneOf of the {reader} schema, which then refuses them",
        None,
        None,
        "ONE_OF_AMBIGUOUS",
        source="lgsp",
    ),
    Rule(
        "NOT_TYPE_EXTENDED",
        "combined",
        "not",
        "{where}: the 'not' of the {reader} schema excludes documents the 'not' of the {writer} "
        "schema lets through",
        False,
        True,
        "NOT_TYPE_NARROWED",
    ),
    Rule(
        "NOT_TYPE_NARROWED",
        "combined",
        "not",
        "{where}: the 'not' of the {reader} schema excludes no more than that of the {writer} "
        "schema",
        True,
        False,
        "NOT_TYPE_EXTENDED",
    ),
)

_UNDECIDABLE = (
    Rule(
        "CONDITIONAL_ADDED",
        "conditional",
        "if",
        "{where} has an if/then/else in the {reader} schema that the {writer} schema does not "
        "have; whether documents of the {writer} schema satisfy it is not a matter of the rule "
        "table",
        None,
        True,
        "CONDITIONAL_REMOVED",
        source="lgsp",
    ),
    Rule(
        "CONDITIONAL_REMOVED",
        "conditional",
        "if",
        "{where} has no if/then/else in the {reader} schema (the {writer} schema has one)",
        True,
        None,
        "CONDITIONAL_ADDED",
        source="lgsp",
    ),
    Rule(
        "CONDITIONAL_CHANGED",
        "conditional",
        "if",
        "{where} has a different if/then/else in the {reader} schema than in the {writer} "
        "schema; conditionals are not compared by the rule table",
        None,
        None,
        "CONDITIONAL_CHANGED",
        source="lgsp",
    ),
    Rule(
        "DYNAMIC_REF_CHANGED",
        "reference",
        "$dynamicRef",
        "{where} uses $dynamicRef {r} in the {reader} schema; dynamic scopes are not compared",
        None,
        None,
        "DYNAMIC_REF_CHANGED",
        source="lgsp",
    ),
    Rule(
        "RECURSION_UNRESOLVED",
        "reference",
        "$ref",
        "{where}: comparing the {writer} and the {reader} schema through references ({r}) did "
        "not settle: $ref/allOf nest deeper than the checker follows, or recurse without "
        "descending into the document",
        None,
        None,
        "RECURSION_UNRESOLVED",
        source="lgsp",
    ),
)

RULES: tuple[Rule, ...] = (
    *_ANNOTATIONS,
    *_TYPES,
    *_STRINGS,
    *_NUMBERS,
    *_VALUES,
    *_REQUIRED,
    *_PROPERTIES,
    *_OBJECTS,
    *_ARRAYS,
    *_SUBSCHEMAS,
    *_COMBINED,
    *_UNDECIDABLE,
)

RULE_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}


def backward_verdict(rule_id: str, policy: Policy, *, optional: bool = False) -> bool | None:
    """The table's verdict for the change as named (writer -> reader) under the policy."""
    rule = RULE_BY_ID[rule_id]
    if policy is Policy.ROBUST and rule.robust and optional:
        return True
    return rule.backward


def forward_verdict(rule_id: str, policy: Policy, *, optional: bool = False) -> bool | None:
    """What the same change means the other way round (the mirror rule's verdict)."""
    rule = RULE_BY_ID[rule_id]
    mirror = RULE_BY_ID[rule.mirror] if rule.mirror is not None else None
    if policy is Policy.ROBUST and optional and mirror is not None and mirror.robust:
        return True
    return rule.forward
