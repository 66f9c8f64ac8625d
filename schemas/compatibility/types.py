"""The public vocabulary of the compatibility checker: levels, policies and what a check returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Direction = Literal["backward", "forward"]


class InvalidSchema(ValueError):
    """A schema handed to the checker is not valid against its draft's meta-schema."""


Outcome = Literal["COMPATIBLE", "INCOMPATIBLE", "UNDECIDED"]


class Level(StrEnum):
    """Which way, and against how many earlier versions, a new version must stay readable.

    BACKWARD: the new schema accepts every document the old one accepted (consumers on the
    new schema read data written with the old). FORWARD: the old schema accepts every document
    the new one accepts. FULL: both. *_TRANSITIVE: against every earlier version, not only the
    latest.
    """

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")


class Policy(StrEnum):
    """DEFAULT: Confluent's JSON Schema rules. ROBUST: producers closed, consumers open (the
    robustness principle): adding or removing an optional property passes whether the content
    model is open or closed; everything else as DEFAULT."""

    DEFAULT = "DEFAULT"
    ROBUST = "ROBUST"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two schemas and whether it is compatible each way (under the
    policy). `backward` is decided for this pair; `forward` is the rule table's reading of the
    same change the other way round (a FORWARD check compares the pair swapped)."""

    pointer: str
    rule: str
    message: str
    backward: bool
    forward: bool


@dataclass(frozen=True, slots=True)
class Break:
    """An incompatibility proven by a document: `counterexample` is accepted by the schema the
    data is written with and refused by the schema it is read with (backward: old accepts,
    new refuses; forward: new accepts, old refuses)."""

    pointer: str
    rule: str
    message: str
    direction: Direction
    version: int | None
    counterexample: Any


@dataclass(frozen=True, slots=True)
class Undecided:
    """A difference the checker could neither prove compatible nor break with a document."""

    pointer: str
    rule: str
    message: str
    direction: Direction
    version: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    level: Level
    policy: Policy
    breaks: tuple[Break, ...]
    undecided: tuple[Undecided, ...]

    @property
    def is_compatible(self) -> bool | None:
        """True, False, or None when undecided; a proven break wins over anything undecided."""
        if self.breaks:
            return False
        if self.undecided:
            return None
        return True

    @property
    def outcome(self) -> Outcome:
        if self.breaks:
            return "INCOMPATIBLE"
        if self.undecided:
            return "UNDECIDED"
        return "COMPATIBLE"

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "is_compatible": self.is_compatible,
            "level": self.level.value,
            "policy": self.policy.value,
            "breaks": [
                {
                    "pointer": b.pointer,
                    "rule": b.rule,
                    "message": b.message,
                    "direction": b.direction,
                    "version": b.version,
                    "counterexample": b.counterexample,
                }
                for b in self.breaks
            ],
            "undecided": [
                {
                    "pointer": u.pointer,
                    "rule": u.rule,
                    "message": u.message,
                    "direction": u.direction,
                    "version": u.version,
                }
                for u in self.undecided
            ],
        }
