"""The registry's revision counter: every change bumps it in the same transaction."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from registry.models import RegistryState


def bump(session: Session) -> None:
    """Mark the registry changed; replicas reload their snapshot when they see a new revision.

    The UPDATE also takes the row lock, so concurrent changes are serialised and each one
    yields a distinct revision. The row is created by the migrations.
    """
    session.execute(
        update(RegistryState)
        .where(col(RegistryState.id) == 1)
        .values(revision=col(RegistryState.revision) + 1)
    )


def current(session: Session) -> int:
    state = session.exec(select(RegistryState).where(RegistryState.id == 1)).first()
    return state.revision if state else 0
