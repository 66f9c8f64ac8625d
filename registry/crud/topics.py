"""Topics: asynchronous channels owned by an agency, with a schema every message follows.

A topic's name, owner, key field and partitions are fixed once it exists: the key decides the
partition, and moving either would break the order promised per key (create a new topic
instead). `publishers` and `subscribers` are the consumers its owner lets in.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from registry.crud.diff import created, diff
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import (
    Agency,
    Consumer,
    Subscription,
    Topic,
    TopicBase,
    TopicCreate,
    TopicUpdate,
)
from schemas import store as schema_store
from schemas.errors import SchemaError
from schemas.models import SchemaRef, VersionState

FIXED = ("agency_code", "key_pointer", "partitions")


def spec(topic: Topic) -> dict[str, Any]:
    """The topic as a manifest writes it (`schema: {subject, version}`)."""
    data = TopicBase.model_validate(topic, from_attributes=True).model_dump()
    full = TopicCreate.model_validate(
        {
            **data,
            "schema": topic.schema_ref.model_dump(),
            "publishers": topic.publishers,
            "subscribers": topic.subscribers,
        }
    )
    return full.model_dump(mode="json", by_alias=True)


def _desired(data: TopicCreate) -> dict[str, Any]:
    return data.model_dump(mode="json", by_alias=True)


def check_schema(session: Session, ref: SchemaRef, where: str = "/schema") -> None:
    """The schema names a registered version that is not deleted."""
    try:
        found = schema_store.get_version(
            session=session, subject=ref.subject, version=ref.version, deleted=True
        )
    except SchemaError as exc:
        raise Invalid.at(where, exc.detail) from None
    if found.state is VersionState.DELETED:
        raise Invalid.at(where, f"schema {ref} was deleted: it cannot be used by a topic any more")


def _check_consumers(session: Session, data: TopicCreate) -> None:
    for field in ("publishers", "subscribers"):
        names: list[str] = getattr(data, field)
        if not names:
            continue
        known = set(session.exec(select(Consumer.name).where(col(Consumer.name).in_(names))))
        for i, name in enumerate(names):
            if name not in known:
                raise Invalid.at(f"/{field}/{i}", f"there is no consumer {name}")


def _check(session: Session, data: TopicCreate) -> None:
    if session.get(Agency, data.agency_code) is None:
        raise Invalid.at("/agency_code", f"there is no agency {data.agency_code}")
    check_schema(session, data.schema_ref)
    _check_consumers(session, data)


def _store(topic: Topic, data: TopicCreate) -> None:
    topic.sqlmodel_update(data.model_dump(exclude={"schema_ref"}))
    topic.schema_subject = data.schema_ref.subject
    topic.schema_version = data.schema_ref.version


def find_topic(*, session: Session, name: str) -> Topic | None:
    return session.exec(select(Topic).where(Topic.name == name)).first()


def get_topic(*, session: Session, name: str) -> Topic:
    topic = find_topic(session=session, name=name)
    if topic is None:
        raise NotFound.of("topic", name)
    return topic


def list_topics(*, session: Session, agency_code: str | None = None) -> list[Topic]:
    """Topics by name; for an agency: those it owns and those its consumers may use."""
    topics = list(session.exec(select(Topic).order_by(col(Topic.name))))
    if agency_code is None:
        return topics
    ours = set(session.exec(select(Consumer.name).where(Consumer.agency_code == agency_code)))
    return [t for t in topics if t.agency_code == agency_code or ours & involved(t)]


def involved(topic: Topic) -> set[str]:
    """The consumers the topic names, as publishers or subscribers."""
    return set(topic.publishers) | set(topic.subscribers)


def subscriptions_of(session: Session, topic: str, limit: int = 6) -> list[Subscription]:
    query = select(Subscription).where(Subscription.topic == topic).order_by(col(Subscription.name))
    return list(session.exec(query.limit(limit)))


def schema_users(*, session: Session, subject: str, version: int) -> list[str]:
    """Topics whose messages follow this schema version."""
    query = select(Topic.name).where(
        Topic.schema_subject == subject, Topic.schema_version == version
    )
    return sorted(session.exec(query))


def create_topic(*, session: Session, data: TopicCreate) -> tuple[Topic, dict[str, Any]]:
    if find_topic(session=session, name=data.name) is not None:
        raise Conflict(f"topic {data.name} already exists")
    _check(session, data)
    topic = Topic(
        name=data.name,
        agency_code=data.agency_code,
        title=data.title,
        schema_subject=data.schema_ref.subject,
        schema_version=data.schema_ref.version,
    )
    _store(topic, data)
    session.add(topic)
    session.flush()
    return topic, created(_desired(data))


def _check_dropped_subscribers(session: Session, topic: Topic, data: TopicCreate) -> None:
    """A consumer leaving `subscribers` must not keep a subscription it is no longer allowed."""
    dropped = set(topic.subscribers) - set(data.subscribers)
    if not dropped:
        return
    owners = set(
        session.exec(select(Consumer.name).where(Consumer.agency_code == topic.agency_code))
    )
    query = select(Subscription).where(
        Subscription.topic == topic.name, col(Subscription.consumer).in_(dropped - owners)
    )
    still = sorted(f"{s.name} ({s.consumer})" for s in session.exec(query))
    if still:
        message = (
            f"consumers still subscribe through subscriptions {', '.join(still)}; "
            "delete those subscriptions before removing the consumers from subscribers"
        )
        raise Conflict(message, errors=[{"pointer": "/subscribers", "message": message}])


def replace_topic(*, session: Session, topic: Topic, data: TopicCreate) -> dict[str, Any]:
    """Make `topic` match `data`; the changed fields."""
    for name in FIXED:
        if getattr(data, name) != getattr(topic, name):
            raise Invalid.at(
                f"/{name}",
                f"a topic's {name} cannot change (the key decides the partition, and the order "
                "per key must hold): create a new topic instead",
            )
    changes = diff(spec(topic), _desired(data))
    if changes:
        _check(session, data)
        _check_dropped_subscribers(session, topic, data)
        _store(topic, data)
        session.add(topic)
        session.flush()
    return changes


def update_topic(*, session: Session, topic: Topic, data: TopicUpdate) -> dict[str, Any]:
    merged = {**spec(topic), **data.model_dump(exclude_unset=True, by_alias=True)}
    try:
        full = TopicCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_topic(session=session, topic=topic, data=full)


def delete_topic(*, session: Session, topic: Topic) -> None:
    """Delete a topic nobody subscribes to (its messages stay in the log until retention)."""
    found = subscriptions_of(session, topic.name)
    if found:
        named = ", ".join(s.name for s in found[:5]) + (", ..." if len(found) > 5 else "")
        raise Conflict(f"topic {topic.name} still has subscriptions {named}; delete them first")
    session.delete(topic)
    session.flush()
