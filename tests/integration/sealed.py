"""What the database holds for a connector's or a subscription's secrets (a connector's TLS key
too), opened: each stored
value must be sealed (registry/sealing.py) and open under the hub's key ring."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from registry import sealing
from registry.models import Connector, Subscription


def connector_secret(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        stored = session.exec(select(Connector).where(Connector.name == name)).one().secret
    if stored is None:
        return None
    assert sealing.is_sealed(stored), "a connector's secret is stored in clear"
    return sealing.ring_of(engine).open(stored, context=sealing.connector_context(name))


def connector_tls_key(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        stored = session.exec(select(Connector).where(Connector.name == name)).one().tls_key
    if stored is None:
        return None
    assert sealing.is_sealed(stored), "a connector's TLS key is stored in clear"
    return sealing.ring_of(engine).open(stored, context=sealing.tls_key_context(name))


def subscription_secrets(engine: Engine, name: str) -> list[str]:
    with Session(engine) as session:
        stored = session.exec(select(Subscription).where(Subscription.name == name)).one().secrets
    assert all(sealing.is_sealed(s) for s in stored), "a signing secret is stored in clear"
    context = sealing.subscription_context(name)
    return [sealing.ring_of(engine).open(s, context=context) for s in stored]
