"""/admin/subscriptions: standing orders on topics, and what operators do to them while they run
(pause and resume, rotate signing secrets, replay, look at positions, redeliver dead letters).

Managed by administrators and the integrators of the subscribing consumer's agency; the
integrators of the topic's owner may look. Every change is an audit record; signing secrets
appear only in the answer that creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.api.admin.context import AdminRoute, Context, ManagerContext
from gateway.api.deps import RuntimeDep, WritesRegistry
from gateway.problems import Problem
from messaging import operations
from messaging.errors import MessagingError, Transient
from messaging.models import DeadLetter, DeadLetterState
from registry.crud import access
from registry.crud import subscriptions as crud
from registry.crud.consumers import find_consumer
from registry.crud.errors import Forbidden, Invalid
from registry.crud.topics import get_topic
from registry.models import (
    Subscription,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionUpdate,
    Topic,
)
from registry.types import Role, RuleError, SubscriptionStatus, Text, as_utc

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"], route_class=AdminRoute)

DeadLetterId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Field(ge=0, le=2**63 - 1)]


class SubscriptionCreated(SubscriptionPublic):
    secrets: list[str] | None  # shown in this answer only (push subscriptions)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = None


class SecretIssued(BaseModel):
    subscription: str
    secret: str  # shown in this answer only
    secrets_set: int


class Replay(BaseModel):
    """Where delivery resumes: one offset for every partition, offsets per partition, or the
    first message accepted at or after a time."""

    model_config = ConfigDict(extra="forbid")

    offset: Offset | None = None
    offsets: dict[int, Offset] | None = None
    time: Annotated[datetime, AfterValidator(as_utc)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Replay:
        given = [n for n in ("offset", "offsets", "time") if getattr(self, n) is not None]
        if len(given) != 1:
            at = given[1] if len(given) > 1 else "offset"
            raise RuleError("give exactly one of offset, offsets or time", at=at)
        if self.offsets is not None and not self.offsets:
            raise RuleError("name at least one partition", at="offsets")
        return self


class Replayed(BaseModel):
    subscription: str
    replay_generation: int
    positions: dict[str, int]


class PartitionPosition(BaseModel):
    partition: int
    position: int | None  # next offset to deliver; null until delivery stores one
    end_offset: int | None
    lag: int | None


class Positions(BaseModel):
    subscription: str
    topic: str
    replay_generation: int
    partitions: list[PartitionPosition]
    lag: int | None


class DeadLetterPublic(BaseModel):
    id: int
    subscription: str
    message_id: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: Any
    reason: str
    attempts: int
    first_error: str | None
    last_error: str | None
    first_attempt_at: datetime
    last_attempt_at: datetime
    created_at: datetime
    state: DeadLetterState
    redeliveries: int
    redelivered_at: datetime | None

    @classmethod
    def of(cls, row: DeadLetter) -> DeadLetterPublic:
        try:
            value: Any = orjson.loads(row.value)
        except orjson.JSONDecodeError:
            value = row.value
        # Field by field: a row read back holds its state as a plain string.
        data = {name: getattr(row, name) for name in cls.model_fields if name != "value"}
        return cls.model_validate({**data, "value": value})


class DeadLetterPage(BaseModel):
    subscription: str
    counts: dict[str, int]  # per state
    items: list[DeadLetterPublic]
    next_after_id: int | None  # pass as after_id for the next page; null on the last one


class Redelivery(BaseModel):
    id: int
    state: DeadLetterState
    changed: bool
    detail: str


class Redeliveries(BaseModel):
    subscription: str
    requeued: int
    detail: str


# ---------------------------------------------------------------- access


def _load(ctx: Context, name: str, *, write: bool) -> Subscription:
    """The subscription, if the caller may see it (or, with `write`, act on it)."""
    subscription = crud.get_subscription(session=ctx.session, name=name)
    if ctx.actor.role is Role.ADMINISTRATOR:
        return subscription
    consumer = find_consumer(session=ctx.session, name=subscription.consumer)
    if consumer is not None and consumer.agency_code == ctx.actor.agency_code:
        return subscription
    if not write:
        topic = get_topic(session=ctx.session, name=subscription.topic)
        if topic.agency_code == ctx.actor.agency_code:
            return subscription
    raise Forbidden(
        f"subscription {name} is of consumer {subscription.consumer} of another agency; an "
        "integrator manages only its own agency's consumers' subscriptions"
    )


def _topic(ctx: Context, subscription: Subscription) -> Topic:
    return get_topic(session=ctx.session, name=subscription.topic)


# ---------------------------------------------------------------- the registry object


@router.post("", response_model=SubscriptionCreated, status_code=201, dependencies=[WritesRegistry])
def create_subscription(ctx: ManagerContext, data: SubscriptionCreate) -> SubscriptionCreated:
    """Subscribe a consumer to a topic; a push subscription's signing secrets are in this
    answer only (one is generated when none is given)."""
    consumer = crud.subscription_consumer(ctx.session, data.consumer)
    access.require_agency(ctx.actor, consumer.agency_code, f"consumer {consumer.name}")
    subscription, changes, secrets = crud.create_subscription(session=ctx.session, data=data)
    ctx.record("create", "subscription", subscription.name, changes)
    ctx.commit()
    public = subscription.to_public().model_dump()
    return SubscriptionCreated.model_validate({**public, "secrets": secrets or None})


@router.get("", response_model=list[SubscriptionPublic])
def list_subscriptions(ctx: ManagerContext, topic: str | None = None) -> list[SubscriptionPublic]:
    """Subscriptions the caller may see, optionally of one topic."""
    found = crud.list_subscriptions(
        session=ctx.session, topic=topic, agency_code=access.agency_scope(ctx.actor)
    )
    return [s.to_public() for s in found]


@router.get("/{name}", response_model=SubscriptionPublic)
def get_subscription(ctx: ManagerContext, name: str) -> SubscriptionPublic:
    """One subscription, without its secrets (`secrets_set` says how many are stored)."""
    return _load(ctx, name, write=False).to_public()


@router.patch("/{name}", response_model=SubscriptionPublic, dependencies=[WritesRegistry])
def update_subscription(
    ctx: ManagerContext, name: str, data: SubscriptionUpdate
) -> SubscriptionPublic:
    """Change where a push goes, the filter, the retry schedule or the description."""
    subscription = _load(ctx, name, write=True)
    changes = crud.update_subscription(session=ctx.session, subscription=subscription, data=data)
    if changes:
        ctx.record("update", "subscription", name, changes)
        ctx.commit()
    return subscription.to_public()


@router.delete("/{name}", status_code=204, response_class=Response, dependencies=[WritesRegistry])
def delete_subscription(ctx: ManagerContext, name: str) -> Response:
    """Delete a subscription, its positions and its dead letters."""
    subscription = _load(ctx, name, write=True)
    dropped = operations.forget(session=ctx.session, subscription=name)
    crud.delete_subscription(session=ctx.session, subscription=subscription)
    ctx.record("delete", "subscription", name, {k: [n, 0] for k, n in dropped.items() if n})
    ctx.commit()
    return Response(status_code=204)


# ---------------------------------------------------------------- status and secrets


def _set_status(
    ctx: Context, name: str, status: SubscriptionStatus, action: str, reason: str | None
) -> SubscriptionPublic:
    subscription = _load(ctx, name, write=True)
    changes = crud.set_status(
        session=ctx.session, subscription=subscription, status=status, reason=reason
    )
    if changes:
        if reason:
            changes["status_reason"] = [None, reason]
        ctx.record(action, "subscription", name, changes)
        ctx.commit()
    return subscription.to_public()


@router.post("/{name}/pause", response_model=SubscriptionPublic, dependencies=[WritesRegistry])
def pause(ctx: ManagerContext, name: str, data: StatusChange | None = None) -> SubscriptionPublic:
    """Stop delivering; it resumes where it stopped. Pausing a paused one changes nothing."""
    reason = data.reason if data else None
    return _set_status(ctx, name, SubscriptionStatus.PAUSED, "pause", reason or None)


@router.post("/{name}/resume", response_model=SubscriptionPublic, dependencies=[WritesRegistry])
def resume(ctx: ManagerContext, name: str) -> SubscriptionPublic:
    """Deliver again, from where it stopped; also re-enables one disabled by a 410 Gone."""
    return _set_status(ctx, name, SubscriptionStatus.ACTIVE, "resume", None)


@router.post(
    "/{name}/secrets", response_model=SecretIssued, status_code=201, dependencies=[WritesRegistry]
)
def rotate_secret(ctx: ManagerContext, name: str) -> SecretIssued:
    """A new signing secret, in this answer only; pushes are signed with it and the previous
    ones (at most 3 kept) until the previous ones are dropped."""
    subscription = _load(ctx, name, write=True)
    secret, changes = crud.rotate_secret(session=ctx.session, subscription=subscription)
    ctx.record("rotate-secret", "subscription", name, changes)
    ctx.commit()
    return SecretIssued(subscription=name, secret=secret, secrets_set=len(subscription.secrets))


@router.delete(
    "/{name}/secrets/previous", response_model=SubscriptionPublic, dependencies=[WritesRegistry]
)
def drop_previous_secrets(ctx: ManagerContext, name: str) -> SubscriptionPublic:
    """Keep only the newest signing secret, once every receiver verifies with it."""
    subscription = _load(ctx, name, write=True)
    changes = crud.drop_previous_secrets(session=ctx.session, subscription=subscription)
    if changes:
        ctx.record("drop-secrets", "subscription", name, changes)
        ctx.commit()
    return subscription.to_public()


# ---------------------------------------------------------------- positions and replay


def _broker_problem(exc: MessagingError) -> Problem:
    if isinstance(exc, Transient):
        return Problem(
            503,
            "broker-unavailable",
            "Broker unavailable",
            f"the message broker did not answer ({exc}); nothing was changed, try again",
            headers={"Retry-After": "1"},
        )
    return Problem(
        503,
        "topic-unavailable",
        "Topic unavailable on the broker",
        f"the message broker cannot serve the topic until an operator fixes it ({exc}); "
        "nothing was changed",
    )


@router.post("/{name}/replay", response_model=Replayed, dependencies=[WritesRegistry])
def replay(ctx: ManagerContext, runtime: RuntimeDep, name: str, data: Replay) -> Replayed:
    """Deliver again from an offset (every partition), from offsets per partition, or from a
    time; every replica's delivery restarts from the new positions."""
    subscription = _load(ctx, name, write=True)
    topic = _topic(ctx, subscription)
    if data.offsets is not None:
        for partition in data.offsets:
            if not 0 <= partition < topic.partitions:
                raise Invalid.at(
                    f"/offsets/{partition}",
                    f"topic {topic.name} has partitions 0 to {topic.partitions - 1}",
                )
        targets = dict(data.offsets)
    elif data.offset is not None:
        targets = dict.fromkeys(range(topic.partitions), data.offset)
    else:
        assert data.time is not None  # the model admits exactly one way
        try:
            targets = operations.offsets_at(
                broker=runtime.broker, topic=topic.name, partitions=topic.partitions, when=data.time
            )
        except MessagingError as exc:
            raise _broker_problem(exc) from None
    before = operations.stored_positions(session=ctx.session, subscription=name)
    old_generation = subscription.replay_generation
    generation = operations.set_positions(
        session=ctx.session, subscription=subscription, offsets=targets
    )
    changes: dict[str, Any] = {
        f"positions.{p}": [before.get(p), offset] for p, offset in sorted(targets.items())
    }
    changes["replay_generation"] = [old_generation, generation]
    if data.time is not None:
        changes["from_time"] = [None, data.time.isoformat()]
    ctx.record("replay", "subscription", name, changes)
    ctx.commit()
    return Replayed(
        subscription=name,
        replay_generation=generation,
        positions={str(p): o for p, o in sorted(targets.items())},
    )


@router.get("/{name}/positions", response_model=Positions)
def positions(ctx: ManagerContext, runtime: RuntimeDep, name: str) -> Positions:
    """Per partition: the next offset to deliver, the partition's end offset, and the lag."""
    subscription = _load(ctx, name, write=False)
    topic = _topic(ctx, subscription)
    try:
        found = operations.positions(
            session=ctx.session,
            subscription=subscription,
            partitions=topic.partitions,
            broker=runtime.broker,
        )
    except MessagingError as exc:
        raise _broker_problem(exc) from None
    lags = [p.lag for p in found]
    return Positions(
        subscription=name,
        topic=topic.name,
        replay_generation=subscription.replay_generation,
        partitions=[PartitionPosition.model_validate(p.to_json()) for p in found],
        lag=None if any(lag is None for lag in lags) else sum(lag or 0 for lag in lags),
    )


# ---------------------------------------------------------------- dead letters


@router.get("/{name}/dead-letters", response_model=DeadLetterPage)
def list_dead_letters(
    ctx: ManagerContext,
    name: str,
    state: Literal["dead", "requeued", "redelivered", "all"] = "dead",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> DeadLetterPage:
    """What delivery gave up on, oldest first, with the context to judge it (attempts, first
    and last error, where it sat in the topic)."""
    _load(ctx, name, write=False)
    rows = operations.list_dead_letters(
        session=ctx.session,
        subscription=name,
        state=None if state == "all" else DeadLetterState(state),
        limit=limit,
        after_id=after_id,
    )
    return DeadLetterPage(
        subscription=name,
        counts=operations.counts(session=ctx.session, subscription=name),
        items=[DeadLetterPublic.of(r) for r in rows],
        next_after_id=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{name}/dead-letters/{dead_letter_id}", response_model=DeadLetterPublic)
def get_dead_letter(ctx: ManagerContext, name: str, dead_letter_id: DeadLetterId) -> Any:
    """One dead letter."""
    _load(ctx, name, write=False)
    row = operations.get_dead_letter(
        session=ctx.session, subscription=name, dead_letter_id=dead_letter_id
    )
    return DeadLetterPublic.of(row)


@router.post("/{name}/dead-letters/redeliver", response_model=Redeliveries)
def redeliver_all(ctx: ManagerContext, name: str) -> Redeliveries:
    """Hand every dead letter back to delivery; asking again requeues only newer ones."""
    _load(ctx, name, write=True)
    count = operations.requeue_all(session=ctx.session, subscription=name)
    if count:
        ctx.record("redeliver", "subscription", name, {"requeued": [0, count]})
        ctx.commit()
        detail = f"{count} dead letters requeued: delivery picks them up"
    else:
        detail = "no dead letters to requeue: nothing changed"
    return Redeliveries(subscription=name, requeued=count, detail=detail)


@router.post("/{name}/dead-letters/{dead_letter_id}/redeliver", response_model=Redelivery)
def redeliver(ctx: ManagerContext, name: str, dead_letter_id: DeadLetterId) -> Redelivery:
    """Hand one dead letter back to delivery (dead -> requeued); one already requeued or
    redelivered is left as it is, and the answer says so."""
    _load(ctx, name, write=True)
    row, changed = operations.requeue(
        session=ctx.session, subscription=name, dead_letter_id=dead_letter_id
    )
    if changed:
        changes = {
            "dead_letter": [None, row.id],
            "message_id": [None, row.message_id],
            "state": [DeadLetterState.DEAD.value, DeadLetterState(row.state).value],
        }
        ctx.record("redeliver", "subscription", name, changes)
        ctx.commit()
        detail = "requeued: delivery picks it up"
    else:
        detail = f"already {DeadLetterState(row.state).value}: nothing changed"
    return Redelivery(
        id=dead_letter_id, state=DeadLetterState(row.state), changed=changed, detail=detail
    )
