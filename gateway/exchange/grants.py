"""The sharing agreement (grant) behind a call, and the purpose of use it allows."""

from __future__ import annotations

from gateway.exchange.calls import Call
from gateway.problems import Problem
from gateway.runtime.snapshot import GrantEntry, ServiceEntry
from registry.types import utcnow


def authorise(grants: tuple[GrantEntry, ...], service: ServiceEntry, call: Call) -> GrantEntry:
    """The approved grant in force that covers the service's version, or a 403 problem that
    says why not (refused with its reason and legal basis, pending, out of its period, none)."""
    now = utcnow()
    relevant = [g for g in grants if g.covers(service.version)]
    for grant in relevant:
        if grant.status == "approved" and grant.in_force(now):
            call.grant_id = grant.id
            return grant
    consumer = call.consumer
    target = f"{service.name}/{service.version}"
    refused = [g for g in relevant if g.status == "refused"]
    if refused:
        grant = refused[-1]
        call.grant_id = grant.id
        raise Problem(
            403,
            "grant-refused",
            "Sharing agreement refused",
            f"the grant of {target} to {consumer} was refused: {grant.reason}",
            extra={
                "grant_id": grant.id,
                "reason": grant.reason,
                "legal_basis": grant.legal_basis,
            },
        )
    if any(g.status == "approved" for g in relevant):
        raise Problem(
            403,
            "grant-not-in-force",
            "Sharing agreement not in force",
            f"the grant of {target} to {consumer} is outside its validity period",
        )
    if relevant:
        raise Problem(
            403,
            "grant-pending",
            "Sharing agreement not approved yet",
            f"the grant of {target} to {consumer} awaits the data owner's decision",
        )
    raise Problem(
        403,
        "no-grant",
        "No sharing agreement",
        f"{consumer} holds no grant for {target}; request one from its owner",
    )


def check_purpose(purpose: str | None, grant: GrantEntry) -> None:
    """For personal data: the declared purpose (X-Purpose) must be one the grant allows."""
    if purpose and purpose in grant.purposes:
        return
    allowed = ", ".join(sorted(grant.purposes)) or "none"
    if not purpose:
        raise Problem(
            403,
            "purpose-required",
            "Purpose required",
            f"this service carries personal data: send X-Purpose (allowed: {allowed})",
        )
    if purpose not in grant.purposes:
        raise Problem(
            403,
            "purpose-not-granted",
            "Purpose not granted",
            f"the purpose {purpose!r} is not in the grant (allowed: {allowed})",
        )
