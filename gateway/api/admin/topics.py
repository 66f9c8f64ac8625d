"""/admin/topics: asynchronous channels, managed by administrators and the owner's integrators."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlmodel import select

from gateway.api.admin.context import AdminRoute, Context, ManagerContext
from gateway.api.deps import WritesRegistry
from messaging.set_aside import topic_state
from registry.crud import access
from registry.crud import topics as crud
from registry.crud.errors import Forbidden
from registry.models import Consumer, Topic, TopicCreate, TopicPublic, TopicUpdate
from registry.types import Role

router = APIRouter(prefix="/topics", tags=["topics"], route_class=AdminRoute)


class TopicRelay(BaseModel):
    """The relay's view of the topic: messages not yet handed to the broker, and whether the
    topic is set aside after a terminal broker error (then why, since when, tries so far)."""

    outbox: int
    set_aside: bool
    error: str | None = None
    reason: str | None = None
    since: datetime | None = None
    last_attempt_at: datetime | None = None
    attempts: int | None = None
    waiting: int | None = None  # counted at the last attempt


class TopicDetail(TopicPublic):
    relay: TopicRelay


def _may_read(ctx: Context, topic: Topic) -> None:
    """Integrators see their agency's topics, and those naming one of its consumers."""
    if ctx.actor.role is Role.ADMINISTRATOR or ctx.actor.agency_code == topic.agency_code:
        return
    query = select(Consumer.name).where(Consumer.agency_code == ctx.actor.agency_code)
    if set(ctx.session.exec(query)) & crud.involved(topic):
        return
    raise Forbidden(
        f"topic {topic.name} belongs to agency {topic.agency_code} and names none of the "
        f"consumers of {ctx.actor.agency_code or 'no agency'}"
    )


@router.post("", response_model=TopicPublic, status_code=201, dependencies=[WritesRegistry])
def create_topic(ctx: ManagerContext, data: TopicCreate) -> TopicPublic:
    """Create a topic: its schema, key field, partitions, and who may publish and subscribe."""
    access.require_agency(ctx.actor, data.agency_code, f"topic {data.name}")
    topic, changes = crud.create_topic(session=ctx.session, data=data)
    ctx.record("create", "topic", topic.name, changes)
    ctx.commit()
    return topic.to_public()


@router.get("", response_model=list[TopicPublic])
def list_topics(ctx: ManagerContext) -> list[TopicPublic]:
    """Topics the caller may see (an integrator: its agency's, and those naming its consumers)."""
    scope = access.agency_scope(ctx.actor)
    return [t.to_public() for t in crud.list_topics(session=ctx.session, agency_code=scope)]


@router.get("/{name}", response_model=TopicDetail, response_model_by_alias=True)
def get_topic(ctx: ManagerContext, name: str) -> TopicDetail:
    """One topic, with the relay's view of it (outbox, set aside by the relay and why)."""
    topic = crud.get_topic(session=ctx.session, name=name)
    _may_read(ctx, topic)
    relay = TopicRelay.model_validate(topic_state(session=ctx.session, topic=name))
    return TopicDetail.model_validate(
        {**topic.to_public().model_dump(by_alias=True), "relay": relay}
    )


@router.patch("/{name}", response_model=TopicPublic, dependencies=[WritesRegistry])
def update_topic(ctx: ManagerContext, name: str, data: TopicUpdate) -> TopicPublic:
    """Change a topic's title, schema, retention, size limit, publishers or subscribers."""
    topic = crud.get_topic(session=ctx.session, name=name)
    access.require_agency(ctx.actor, topic.agency_code, f"topic {name}")
    changes = crud.update_topic(session=ctx.session, topic=topic, data=data)
    if changes:
        ctx.record("update", "topic", name, changes)
        ctx.commit()
    return topic.to_public()


@router.delete("/{name}", status_code=204, response_class=Response, dependencies=[WritesRegistry])
def delete_topic(ctx: ManagerContext, name: str) -> Response:
    """Delete a topic without subscriptions."""
    topic = crud.get_topic(session=ctx.session, name=name)
    access.require_agency(ctx.actor, topic.agency_code, f"topic {name}")
    crud.delete_topic(session=ctx.session, topic=topic)
    ctx.record("delete", "topic", name, {})
    ctx.commit()
    return Response(status_code=204)
