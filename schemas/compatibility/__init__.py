"""Schema compatibility checker: Confluent's JSON Schema rules, proven by counterexamples.

    verdict = check(candidate, [(1, v1), (2, v2)], level=Level.BACKWARD_TRANSITIVE)
    verdict.outcome           # "COMPATIBLE" | "INCOMPATIBLE" | "UNDECIDED"
    verdict.breaks[0].counterexample   # a document the old schema accepts and the new refuses

Modules, bottom up: `types` (the public vocabulary), `rules` (the rule table), `scope` and
`model` (what a schema allows), `generate`, `regex_sample`, `format_samples` (instances),
`findings` and `context` (what a comparison reports), `scalars`, `strings`, `numbers`,
`properties`, `objects`, `arrays`, `combinators` and `compare` (the comparison),
`counterexample` (the proof), `check` (the API).
"""

from schemas.compatibility.check import check, diff
from schemas.compatibility.rules import RULE_BY_ID, RULES, Rule
from schemas.compatibility.types import (
    Break,
    Change,
    InvalidSchema,
    Level,
    Policy,
    Undecided,
    Verdict,
)

__all__ = [
    "RULES",
    "RULE_BY_ID",
    "Break",
    "Change",
    "InvalidSchema",
    "Level",
    "Policy",
    "Rule",
    "Undecided",
    "Verdict",
    "check",
    "diff",
]
