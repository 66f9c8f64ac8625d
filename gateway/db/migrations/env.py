"""Alembic environment: the hub's migrations run on the connection gateway.db.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import audit.models  # registers its tables on the metadata (as do the imports below)
import audit.records  # noqa: F401
import messaging.models  # noqa: F401
import registry.models  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic revision --autogenerate` from a developer's shell
    from gateway.db.engine import make_engine
    from gateway.settings import Settings

    engine = make_engine(Settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(
        connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()
