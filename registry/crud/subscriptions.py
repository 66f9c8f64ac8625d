"""Subscriptions: a consumer's standing order on a topic, by consumer group or by signed push.

Rules: the topic and the consumer exist; the consumer is one of the topic's `subscribers` or
belongs to the topic's owner agency; a push subscription's connector exists and belongs to the
consumer's agency. A subscription's topic, consumer and delivery are fixed: its positions and
dead letters are about them (delete it and create another to change them).

Signing secrets (Standard Webhooks: `whsec_` + base64 of 24 to 64 bytes, newest first) are
write-only: never part of a spec, a change record or an answer, except the one answer that
creates them. A change shows as `secrets: [(hidden), (changed)]`. They are stored sealed
(registry/sealing.py), each under the key ring attached to the session's database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from registry import sealing
from registry.crud.connectors import find_connector
from registry.crud.consumers import find_consumer
from registry.crud.diff import SECRET_CHANGED, SECRET_HIDDEN, created, diff
from registry.crud.errors import Conflict, Forbidden, Invalid, NotFound
from registry.crud.topics import find_topic
from registry.models import (
    Consumer,
    Subscription,
    SubscriptionBase,
    SubscriptionCreate,
    SubscriptionUpdate,
    Topic,
)
from registry.types import Delivery, SubscriptionStatus, utcnow

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks marker, not a secret
SECRET_BYTES = 24  # what a generated secret holds
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
SECRETS_KEPT = 3  # during a rotation: the new one and the previous ones receivers may still use
FIXED = ("topic", "consumer", "delivery")


def generate_secret() -> str:
    """A new signing secret: whsec_ + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(value: str, where: str) -> str:
    """A Standard Webhooks secret, as given; Invalid at `where` otherwise."""
    problem = (
        f"must be a Standard Webhooks secret: {SECRET_PREFIX} followed by the base64 of "
        f"{SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes"
    )
    if not value.startswith(SECRET_PREFIX):
        raise Invalid.at(where, problem)
    try:
        raw = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid.at(where, problem) from None
    if not SECRET_MIN_BYTES <= len(raw) <= SECRET_MAX_BYTES:
        raise Invalid.at(where, f"{problem} (it decodes to {len(raw)} bytes)")
    return value


def _plain(data: SubscriptionCreate) -> list[str] | None:
    if data.secrets is None:
        return None
    return [s.get_secret_value() for s in data.secrets]


def _seal(session: Session, subscription: Subscription, plain: list[str]) -> list[str]:
    ring = sealing.ring_of(session)
    context = sealing.subscription_context(subscription.name)
    return [ring.seal(secret, context=context) for secret in plain]


def open_secrets(session: Session, subscription: Subscription) -> list[str]:
    """The subscription's signing secrets in clear, newest first (to sign with, never to show);
    SealingError if one does not open."""
    ring = sealing.ring_of(session)
    context = sealing.subscription_context(subscription.name)
    return [ring.open(secret, context=context) for secret in subscription.secrets]


def _same_secrets(old: list[str], new: list[str]) -> bool:
    """Compared in constant time per secret, so the answer's timing reveals nothing."""
    if len(old) != len(new):
        return False
    return all(hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(old, new, strict=True))


def spec(subscription: Subscription) -> dict[str, Any]:
    """The subscription as a manifest writes it, without its secrets."""
    data = SubscriptionBase.model_validate(subscription, from_attributes=True).model_dump()
    full = SubscriptionCreate.model_validate(
        {**data, "filter": subscription.filter, "retry": subscription.retry}
    )
    return _desired(full)


def _desired(data: SubscriptionCreate) -> dict[str, Any]:
    return data.model_dump(mode="json", exclude={"secrets"})


def subscription_consumer(session: Session, name: str) -> Consumer:
    consumer = find_consumer(session=session, name=name)
    if consumer is None:
        raise Invalid.at("/consumer", f"there is no consumer {name}")
    return consumer


def _check(session: Session, data: SubscriptionCreate) -> tuple[Topic, Consumer]:
    """The references exist and the consumer may subscribe; the secrets are well formed."""
    topic = find_topic(session=session, name=data.topic)
    if topic is None:
        raise Invalid.at("/topic", f"there is no topic {data.topic}")
    consumer = subscription_consumer(session, data.consumer)
    if consumer.name not in topic.subscribers and consumer.agency_code != topic.agency_code:
        message = (
            f"consumer {consumer.name} is not among the subscribers of topic {topic.name}; "
            f"its owner (agency {topic.agency_code}) adds it to the topic's subscribers"
        )
        raise Forbidden(message, errors=[{"pointer": "/consumer", "message": message}])
    if data.connector is not None:
        connector = find_connector(session=session, name=data.connector)
        if connector is None:
            raise Invalid.at("/connector", f"there is no connector {data.connector}")
        if connector.agency_code != consumer.agency_code:
            raise Invalid.at(
                "/connector",
                f"connector {connector.name} belongs to agency {connector.agency_code}; a "
                f"subscription of consumer {consumer.name} pushes only to a connector of its "
                f"own agency {consumer.agency_code}",
            )
    given = _plain(data)
    if given is not None:
        if data.delivery is Delivery.GROUP and given:
            raise Invalid.at("/secrets", "a group subscription has no webhooks to sign")
        if data.delivery is Delivery.PUSH and not given:
            raise Invalid.at(
                "/secrets",
                "a push subscription needs a signing secret: give one, or leave secrets out "
                "to have one generated",
            )
        for i, secret in enumerate(given):
            check_secret(secret, f"/secrets/{i}")
    if data.filter is not None and data.filter.pointer == "":
        raise Invalid.at(
            "/filter/pointer", "must point into the message (e.g. /TrangThai), not at all of it"
        )
    return topic, consumer


def _store(subscription: Subscription, data: SubscriptionCreate) -> None:
    subscription.sqlmodel_update(data.model_dump(exclude={"filter", "retry", "secrets"}))
    subscription.filter = None if data.filter is None else data.filter.model_dump(mode="json")
    subscription.retry = data.retry.model_dump(mode="json")


def find_subscription(*, session: Session, name: str) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.name == name)).first()


def get_subscription(*, session: Session, name: str) -> Subscription:
    subscription = find_subscription(session=session, name=name)
    if subscription is None:
        raise NotFound.of("subscription", name)
    return subscription


def list_subscriptions(
    *, session: Session, topic: str | None = None, agency_code: str | None = None
) -> list[Subscription]:
    """By name; for an agency: its consumers' subscriptions and those on the topics it owns."""
    query = select(Subscription).order_by(col(Subscription.name))
    if topic is not None:
        query = query.where(Subscription.topic == topic)
    if agency_code is not None:
        ours = select(Consumer.name).where(Consumer.agency_code == agency_code)
        owned = select(Topic.name).where(Topic.agency_code == agency_code)
        query = query.where(
            col(Subscription.consumer).in_(ours) | col(Subscription.topic).in_(owned)
        )
    return list(session.exec(query))


def create_subscription(
    *, session: Session, data: SubscriptionCreate
) -> tuple[Subscription, dict[str, Any], list[str]]:
    """The subscription, its changes and its secrets (generated for a push without any):
    the secrets are for the creator's answer only."""
    if find_subscription(session=session, name=data.name) is not None:
        raise Conflict(f"subscription {data.name} already exists")
    _check(session, data)
    subscription = Subscription(
        name=data.name, topic=data.topic, consumer=data.consumer, delivery=data.delivery
    )
    _store(subscription, data)
    given = _plain(data) or []
    if data.delivery is Delivery.PUSH and not given:
        given = [generate_secret()]
    subscription.secrets = _seal(session, subscription, given)
    session.add(subscription)
    session.flush()
    changes = created(_desired(data))
    if given:
        changes["secrets"] = [None, SECRET_CHANGED]
    return subscription, changes, list(given)


def replace_subscription(
    *, session: Session, subscription: Subscription, data: SubscriptionCreate
) -> dict[str, Any]:
    """Make `subscription` match `data`; absent secrets keep the stored ones."""
    for name in FIXED:
        if getattr(data, name) != getattr(subscription, name):
            raise Invalid.at(
                f"/{name}",
                f"a subscription's {name} cannot change (its positions and dead letters are "
                "about it): delete it and create another",
            )
    _check(session, data)
    changes = diff(spec(subscription), _desired(data))
    given = _plain(data)
    if given is not None and not _same_secrets(open_secrets(session, subscription), given):
        changes["secrets"] = [SECRET_HIDDEN if subscription.secrets else None, SECRET_CHANGED]
    elif data.delivery is Delivery.PUSH and not subscription.secrets:
        given = [generate_secret()]  # a push without a secret could not be verified
        changes["secrets"] = [None, SECRET_CHANGED]
    if changes:
        _store(subscription, data)
        if "secrets" in changes and given is not None:
            subscription.secrets = _seal(session, subscription, given)
        session.add(subscription)
        session.flush()
    return changes


def update_subscription(
    *, session: Session, subscription: Subscription, data: SubscriptionUpdate
) -> dict[str, Any]:
    merged = {**spec(subscription), **data.model_dump(exclude_unset=True)}
    try:
        full = SubscriptionCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_subscription(session=session, subscription=subscription, data=full)


def delete_subscription(*, session: Session, subscription: Subscription) -> None:
    """Remove the subscription (its positions and dead letters are messaging's to drop)."""
    session.delete(subscription)
    session.flush()


# ---------------------------------------------------------------- operator actions


def set_status(
    *,
    session: Session,
    subscription: Subscription,
    status: SubscriptionStatus,
    reason: str | None = None,
) -> dict[str, Any]:
    """Pause, or resume (which also re-enables a disabled one); no change when already there."""
    old = SubscriptionStatus(subscription.status)  # a plain string when read back
    if old is status:
        return {}
    subscription.status = status
    subscription.status_reason = reason
    subscription.status_changed_at = utcnow()
    session.add(subscription)
    session.flush()
    return {"status": [old.value, status.value]}


def _require_push(subscription: Subscription) -> None:
    if Delivery(subscription.delivery) is not Delivery.PUSH:
        raise Conflict(
            f"subscription {subscription.name} is a group subscription: it has no webhooks, so "
            "no signing secrets"
        )


def rotate_secret(*, session: Session, subscription: Subscription) -> tuple[str, dict[str, Any]]:
    """A new secret in front; the previous ones stay (at most SECRETS_KEPT in all), so
    receivers can switch before the old ones are dropped."""
    _require_push(subscription)
    new = generate_secret()
    before = len(subscription.secrets)
    sealed = _seal(session, subscription, [new])
    subscription.secrets = [*sealed, *subscription.secrets][:SECRETS_KEPT]
    session.add(subscription)
    session.flush()
    return new, {
        "secrets": [SECRET_HIDDEN, SECRET_CHANGED],
        "secrets_set": [before, len(subscription.secrets)],
    }


def drop_previous_secrets(*, session: Session, subscription: Subscription) -> dict[str, Any]:
    """Keep only the newest secret (after every receiver verifies with it)."""
    _require_push(subscription)
    before = len(subscription.secrets)
    if before <= 1:
        return {}
    subscription.secrets = subscription.secrets[:1]
    session.add(subscription)
    session.flush()
    return {"secrets_set": [before, 1]}
