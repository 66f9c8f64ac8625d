"""Connectors: how the hub reaches a provider. Credentials are write-only.

The secret (`auth.secret`) is stored sealed in `Connector.secret` (registry/sealing.py, under the
key ring attached to the session's database), never returned, and never part of a spec or a
change record: a change of secret shows as `auth.secret: [(hidden), (changed)]`. A request that
carries the stored (sealed) value back, as PATCH and manifests do to keep it, keeps it.
The mutual-TLS private key (`tls.client_key`) likewise, sealed in `Connector.tls_key`; it is
opened (`opened_tls_key`) wherever it must be read back as PEM to be checked again.
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlmodel import Session, col, select

from registry import sealing
from registry.connector_settings import BreakerPolicy, ConnectorTls, HealthCheck
from registry.crud.diff import SECRET_CHANGED, SECRET_HIDDEN, created, diff
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import (
    Agency,
    Connector,
    ConnectorAuth,
    ConnectorBase,
    ConnectorCreate,
    ConnectorOptions,
    ConnectorUpdate,
    RetryPolicy,
    Service,
    Subscription,
)

MAX_SECRET = 4000
FIXED = ("agency_code", "kind")  # services depend on them: delete and recreate to change
# Written apart from the plain columns, by `store`.
BLOCKS = {"auth", "options", "retry", "base_urls", "failover", "health", "breaker", "tls"}
AUTH_DEFAULTS = ConnectorAuth().model_dump(mode="json")


def spec(connector: Connector) -> dict[str, Any]:
    """The connector as a manifest writes it, without its secret."""
    data = ConnectorBase.model_validate(connector, from_attributes=True).model_dump(mode="json")
    data["auth"] = {
        field: connector.auth_params.get(field, AUTH_DEFAULTS.get(field))
        for field in ConnectorAuth.model_fields
        if field != "secret"
    }
    data["options"] = ConnectorOptions.model_validate(connector.options).model_dump(mode="json")
    data["retry"] = RetryPolicy.model_validate(connector.retry).model_dump(mode="json")
    if len(connector.base_urls or ()) > 1:  # one URL: base_url says it all
        data["base_urls"] = connector.urls()
    data["failover"] = connector.failover
    data["health"] = HealthCheck.model_validate(connector.health or {}).model_dump(mode="json")
    data["breaker"] = BreakerPolicy.model_validate(connector.breaker or {}).model_dump(mode="json")
    data["tls"] = _tls_spec(connector.tls)
    return data


def _tls_spec(tls: dict[str, Any] | None) -> dict[str, Any] | None:
    if tls is None:
        return None
    return {field: tls.get(field) for field in ConnectorTls.model_fields if field != "client_key"}


def _desired(data: ConnectorCreate) -> dict[str, Any]:
    desired = data.model_dump(mode="json", exclude={"auth": {"secret"}, "tls": {"client_key"}})
    if len(data.base_urls or ()) <= 1:
        del desired["base_urls"]
    return desired


def _tls_key(data: ConnectorCreate) -> str | None:
    return _plain(data.tls.client_key) if data.tls is not None else None


def opened_tls_key(session: Session, connector: Connector) -> str | None:
    """The connector's mutual-TLS key in clear (to be checked again as PEM), or None."""
    if connector.tls_key is None:
        return None
    context = sealing.tls_key_context(connector.name)
    return sealing.ring_of(session).open(connector.tls_key, context=context)


def tls_key_changed(connector: Connector, data: ConnectorCreate, *, session: Session) -> bool:
    """Whether `data`'s TLS key differs from the stored one (compared in constant time)."""
    new, old = _tls_key(data), opened_tls_key(session, connector)
    if new is None or old is None:
        return new is not old
    return not hmac.compare_digest(new.encode(), old.encode())


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _is_stored(connector: Connector, secret: str | None) -> bool:
    """Whether `secret` is the stored sealed value itself (sent back to keep it)."""
    stored = connector.secret
    return (
        secret is not None
        and stored is not None
        and hmac.compare_digest(secret.encode(), stored.encode())
    )


def secret_changed(connector: Connector, secret: SecretStr | None, *, session: Session) -> bool:
    """Whether `secret` differs from the stored one (compared in constant time)."""
    new, old = _plain(secret), connector.secret
    if new is None or old is None:
        return new is not old
    if _is_stored(connector, new):
        return False
    opened = sealing.ring_of(session).open(old, context=sealing.connector_context(connector.name))
    return not hmac.compare_digest(new.encode(), opened.encode())


def _check(session: Session, data: ConnectorCreate, connector: Connector | None = None) -> None:
    secret = _plain(data.auth.secret)
    kept = connector is not None and _is_stored(connector, secret)
    if secret is not None and not kept and len(secret) > MAX_SECRET:
        raise Invalid.at("/auth/secret", f"must be at most {MAX_SECRET} characters")
    if session.get(Agency, data.agency_code) is None:
        raise Invalid.at("/agency_code", f"there is no agency {data.agency_code}")


def _write_settings(connector: Connector, data: ConnectorCreate) -> None:
    """Write everything but the secrets into the row: plain columns, blocks as JSON."""
    connector.sqlmodel_update(
        data.model_dump(
            exclude={
                "auth",
                "options",
                "retry",
                "base_urls",
                "failover",
                "health",
                "breaker",
                "tls",
            }
        )
        | {"failover": data.failover.value}
    )
    urls = list(data.base_urls or [])
    connector.base_urls = urls if len(urls) > 1 else []
    connector.health = data.health.model_dump(mode="json")
    connector.breaker = data.breaker.model_dump(mode="json")
    connector.tls = (
        data.tls.model_dump(mode="json", exclude={"client_key"}) if data.tls is not None else None
    )
    connector.auth_params = data.auth.model_dump(mode="json", exclude={"secret"}, exclude_none=True)
    connector.options = data.options.model_dump(mode="json")
    connector.retry = data.retry.model_dump(mode="json")


def store(session: Session, connector: Connector, data: ConnectorCreate) -> None:
    """Write `data` into the row, its secrets sealed into their write-only columns."""
    _write_settings(connector, data)
    ring = sealing.ring_of(session)
    if tls_key_changed(connector, data, session=session):
        key = _tls_key(data)
        context = sealing.tls_key_context(connector.name)
        connector.tls_key = ring.seal(key, context=context) if key is not None else None
    secret = _plain(data.auth.secret)
    if secret is not None and not _is_stored(connector, secret):
        secret = ring.seal(secret, context=sealing.connector_context(connector.name))
    connector.secret = secret


def opened_row(data: ConnectorCreate) -> Connector:
    """A row holding `data` with its secrets in clear, as `with_secret_opened` gives one: to
    build a connector from, never to be stored."""
    row = Connector(
        name=data.name, agency_code=data.agency_code, kind=data.kind, base_url=data.base_url
    )
    _write_settings(row, data)
    row.secret = _plain(data.auth.secret)
    row.tls_key = _tls_key(data)
    return row


def with_secret_opened(connector: Connector, ring: sealing.KeyRing) -> Connector:
    """A detached copy of `connector` holding its secret in clear, to build its client from
    (never added to a session, so never written back); SealingError if it does not open."""
    copy = Connector.model_validate(connector.model_dump())
    if connector.secret is not None:
        copy.secret = ring.open(connector.secret, context=sealing.connector_context(connector.name))
    if connector.tls_key is not None:
        copy.tls_key = ring.open(connector.tls_key, context=sealing.tls_key_context(connector.name))
    return copy


def find_connector(*, session: Session, name: str) -> Connector | None:
    return session.exec(select(Connector).where(Connector.name == name)).first()


def get_connector(*, session: Session, name: str) -> Connector:
    connector = find_connector(session=session, name=name)
    if connector is None:
        raise NotFound.of("connector", name)
    return connector


def list_connectors(*, session: Session, agency_code: str | None = None) -> list[Connector]:
    query = select(Connector).order_by(col(Connector.name))
    if agency_code is not None:
        query = query.where(Connector.agency_code == agency_code)
    return list(session.exec(query))


def create_connector(
    *, session: Session, data: ConnectorCreate
) -> tuple[Connector, dict[str, Any]]:
    if find_connector(session=session, name=data.name) is not None:
        raise Conflict(f"connector {data.name} already exists")
    _check(session, data)
    connector = Connector(
        name=data.name, agency_code=data.agency_code, kind=data.kind, base_url=data.base_url
    )
    store(session, connector, data)
    session.add(connector)
    session.flush()
    changes = created(_desired(data))
    if data.auth.secret is not None:
        changes["auth.secret"] = [None, SECRET_CHANGED]
    if _tls_key(data) is not None:
        changes["tls.client_key"] = [None, SECRET_CHANGED]
    return connector, changes


def replace_connector(
    *, session: Session, connector: Connector, data: ConnectorCreate
) -> dict[str, Any]:
    """Make `connector` match `data` (secret included); the changed fields."""
    for field in FIXED:
        if getattr(data, field) != getattr(connector, field):
            raise Invalid.at(
                f"/{field}", f"a connector's {field} cannot change; delete and recreate it"
            )
    _check(session, data, connector)
    changes = diff(spec(connector), _desired(data))
    if secret_changed(connector, data.auth.secret, session=session):
        changes["auth.secret"] = [SECRET_HIDDEN, SECRET_CHANGED]
    if tls_key_changed(connector, data, session=session):
        changes["tls.client_key"] = [SECRET_HIDDEN, SECRET_CHANGED]
    if changes:
        store(session, connector, data)
        session.add(connector)
        session.flush()
    return changes


def update_connector(
    *, session: Session, connector: Connector, data: ConnectorUpdate
) -> dict[str, Any]:
    """Apply a PATCH: a given `auth` replaces the whole block; no `auth` keeps the secret."""
    patch = data.model_dump(exclude_unset=True)
    merged: dict[str, Any] = {**spec(connector), **patch}
    if "auth" not in patch:
        merged["auth"] = {**connector.auth_params, "secret": connector.secret}
    if "tls" not in patch and connector.tls is not None:
        merged["tls"] = {**connector.tls, "client_key": opened_tls_key(session, connector)}
    if "base_url" in patch and "base_urls" not in patch:
        # A new base_url replaces the first URL; the others stay.
        merged["base_urls"] = [patch["base_url"], *connector.urls()[1:]]
    if "base_urls" in patch and "base_url" not in patch:
        merged.pop("base_url", None)
    try:
        full = ConnectorCreate.model_validate(merged)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return replace_connector(session=session, connector=connector, data=full)


def delete_connector(*, session: Session, connector: Connector) -> None:
    services = list(
        session.exec(select(Service).where(Service.connector == connector.name).limit(6))
    )
    if services:
        named = ", ".join(f"{s.name}/{s.version}" for s in services[:5])
        raise Conflict(f"connector {connector.name} is still used by services {named}")
    pushed = list(
        session.exec(select(Subscription.name).where(Subscription.connector == connector.name))
    )
    if pushed:
        raise Conflict(
            f"connector {connector.name} still receives the pushes of subscriptions "
            f"{', '.join(pushed[:5])}"
        )
    session.delete(connector)
    session.flush()
