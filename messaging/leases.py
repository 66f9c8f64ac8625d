"""Leases: one process at a time runs a named job (the relay, one subscription's delivery).

A holder renews its lease well before it expires; a replica that dies stops renewing, and
another takes the job over once the lease has expired. Both statements are single-row atomic
operations on either database, so two replicas never both believe they hold a lease (as long
as their clocks agree to within the lease's length).
"""

from __future__ import annotations

import os
import socket
import time

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from messaging.models import Lease


def holder_name() -> str:
    """This process, as other replicas see it in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Leases:
    def __init__(self, engine: Engine, *, holder: str, seconds: float) -> None:
        self.engine = engine
        self.holder = holder
        self.seconds = seconds

    def acquire(self, name: str) -> bool:
        """Take or renew the lease; False while another live holder has it."""
        now = time.time()
        expires = now + self.seconds
        table = Lease.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(table)
                .where(table.c.name == name)
                .where((table.c.holder == self.holder) | (table.c.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            )
            if taken.rowcount == 1:
                return True
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(table).values(name=name, holder=self.holder, expires_at=expires)
                )
            return True
        except IntegrityError:  # held by someone else (or they inserted first)
            return False

    def release(self, name: str) -> None:
        table = Lease.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            connection.execute(
                delete(table).where(table.c.name == name).where(table.c.holder == self.holder)
            )
