"""Every place the registry keeps a sealed secret, and the operations over all of them:
count the values under each key, and seal them again under the ring's current key.

A table that gains a secret adds one `Place` to `PLACES`; rotation and the raw-database test then
cover it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from registry import sealing
from registry.models import Connector, SigningKey, Subscription


@dataclass(frozen=True, slots=True)
class Place:
    """A column of sealed values: one (a string) or several (a JSON list) a row."""

    model: type[SQLModel]
    column: str
    context: Callable[[Any], str]  # the row -> its associated data
    many: bool = False

    @property
    def label(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"

    def values(self, row: Any) -> list[str]:
        value = getattr(row, self.column)
        if value is None:
            return []
        return list(value) if self.many else [value]


PLACES: tuple[Place, ...] = (
    Place(Connector, "secret", lambda row: sealing.connector_context(row.name)),
    Place(Connector, "tls_key", lambda row: sealing.tls_key_context(row.name)),
    Place(SigningKey, "private_jwk", lambda row: sealing.signing_key_context(row.kid)),
    Place(Subscription, "secrets", lambda row: sealing.subscription_context(row.name), many=True),
)


def count_by_key(engine: Engine) -> dict[str, Counter[str]]:
    """Per place, how many values each key id sealed (`(clear)`: not sealed at all)."""
    counts: dict[str, Counter[str]] = {}
    with Session(engine) as session:
        for place in PLACES:
            counted: Counter[str] = Counter()
            for row in session.exec(select(place.model)):
                for value in place.values(row):
                    counted[sealing.kid_of(value) or "(clear)"] += 1
            counts[place.label] = counted
    return counts


def reseal(engine: Engine, ring: sealing.KeyRing, *, batch: int = 200) -> dict[str, int]:
    """Seal every value again under `ring`'s current key, `batch` rows a transaction (values
    already under it are left alone, so an interrupted run resumes where it stopped); per
    place, how many values changed. SealingError if a value does not open."""
    done: dict[str, int] = {}
    for place in PLACES:
        done[place.label] = 0
        key = col(getattr(place.model, "id"))  # noqa: B009 - every table has an id
        after = 0
        while True:
            with Session(engine) as session, session.begin():
                rows = list(
                    session.exec(
                        select(place.model)
                        .where(key > after)
                        .order_by(key)
                        .limit(batch)
                        .with_for_update()
                    )
                )
                for row in rows:
                    old = place.values(row)
                    new = [_sealed(ring, v, place.context(row)) for v in old]
                    if new != old:
                        setattr(row, place.column, new if place.many else new[0])
                        session.add(row)
                        done[place.label] += sum(a != b for a, b in zip(old, new, strict=True))
            if len(rows) < batch:
                break
            after = rows[-1].id  # type: ignore[attr-defined]
    return done


def _sealed(ring: sealing.KeyRing, value: str, context: str) -> str:
    """`value` under the current key: opened and sealed again, or sealed if found in clear."""
    if not sealing.is_sealed(value):
        return ring.seal(value, context=context)
    return ring.reseal(value, context=context)
