"""Consumers: applications of an agency that call shared services."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from registry.crud.diff import created, diff
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import (
    Agency,
    ApiKey,
    Consumer,
    ConsumerBase,
    ConsumerCreate,
    ConsumerUpdate,
    Grant,
    OAuthClient,
    Subscription,
    Topic,
)


def spec(consumer: Consumer) -> dict[str, Any]:
    """The consumer as a manifest writes it."""
    data = ConsumerBase.model_validate(consumer, from_attributes=True).model_dump()
    return ConsumerCreate.model_validate(data).model_dump(mode="json")


def find_consumer(*, session: Session, name: str) -> Consumer | None:
    return session.exec(select(Consumer).where(Consumer.name == name)).first()


def get_consumer(*, session: Session, name: str) -> Consumer:
    consumer = find_consumer(session=session, name=name)
    if consumer is None:
        raise NotFound.of("consumer", name)
    return consumer


def list_consumers(*, session: Session, agency_code: str | None = None) -> list[Consumer]:
    query = select(Consumer).order_by(col(Consumer.name))
    if agency_code is not None:
        query = query.where(Consumer.agency_code == agency_code)
    return list(session.exec(query))


def create_consumer(*, session: Session, data: ConsumerCreate) -> tuple[Consumer, dict[str, Any]]:
    if find_consumer(session=session, name=data.name) is not None:
        raise Conflict(f"consumer {data.name} already exists")
    if session.get(Agency, data.agency_code) is None:
        raise Invalid.at("/agency_code", f"there is no agency {data.agency_code}")
    consumer = Consumer.model_validate(data.model_dump())
    session.add(consumer)
    session.flush()
    return consumer, created(data.model_dump(mode="json"))


def replace_consumer(
    *, session: Session, consumer: Consumer, data: ConsumerCreate
) -> dict[str, Any]:
    """Make `consumer` match `data`; the changed fields."""
    if data.agency_code != consumer.agency_code:
        raise Invalid.at("/agency_code", "a consumer's agency cannot change; create a new one")
    changes = diff(spec(consumer), data.model_dump(mode="json"))
    if changes:
        consumer.sqlmodel_update(data.model_dump(exclude={"name", "agency_code"}))
        session.add(consumer)
        session.flush()
    return changes


def update_consumer(
    *, session: Session, consumer: Consumer, data: ConsumerUpdate
) -> dict[str, Any]:
    merged = {**spec(consumer), **data.model_dump(exclude_unset=True)}
    try:
        full = ConsumerCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_consumer(session=session, consumer=consumer, data=full)


def delete_consumer(*, session: Session, consumer: Consumer) -> None:
    """Delete a consumer without grants; its API keys go with it."""
    grants = list(session.exec(select(Grant).where(Grant.consumer == consumer.name).limit(6)))
    if grants:
        named = ", ".join(g.service for g in grants[:5])
        raise Conflict(
            f"consumer {consumer.name} still holds grants on services {named}; delete them first"
        )
    subscriptions = list(
        session.exec(select(Subscription.name).where(Subscription.consumer == consumer.name))
    )
    if subscriptions:
        raise Conflict(
            f"consumer {consumer.name} still has subscriptions {', '.join(subscriptions[:5])}; "
            "delete them first"
        )
    listed = [
        t.name
        for t in session.exec(select(Topic))
        if consumer.name in t.publishers or consumer.name in t.subscribers
    ]
    if listed:
        raise Conflict(
            f"consumer {consumer.name} is still a publisher or subscriber of topics "
            f"{', '.join(listed[:5])}; remove it from them first"
        )
    for key in session.exec(select(ApiKey).where(ApiKey.consumer_id == consumer.id)):
        session.delete(key)
    for client in session.exec(select(OAuthClient).where(OAuthClient.consumer_id == consumer.id)):
        session.delete(client)
    session.flush()
    session.delete(consumer)
    session.flush()
