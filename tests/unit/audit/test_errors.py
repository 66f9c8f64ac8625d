"""The audit package's error tree: one root, each error transient or terminal, drawn in the docs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from audit import errors
from audit.errors import AuditError, ProofError, ProofNotYet, ProofRefused, Terminal, Transient


def concrete() -> list[type[AuditError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, AuditError) and cls not in (AuditError, Transient, Terminal, ProofError)
    ]


@pytest.mark.parametrize("cls", concrete(), ids=lambda cls: cls.__name__)
def test_every_error_carries_exactly_one_marker_and_is_in_the_tree(cls: type[AuditError]) -> None:
    assert issubclass(cls, Transient) != issubclass(cls, Terminal)
    assert cls.__name__ in (errors.__doc__ or "")


def test_no_other_audit_module_defines_errors() -> None:
    """The tree is the whole list (a private signal inside the bundle verifier aside)."""
    import audit

    elsewhere = []
    for module in pkgutil.iter_modules(audit.__path__):
        loaded = importlib.import_module(f"audit.{module.name}")
        for name, cls in inspect.getmembers(loaded, inspect.isclass):
            if (
                issubclass(cls, BaseException)
                and cls.__module__ == loaded.__name__
                and not name.startswith("_")
                and loaded is not errors
            ):
                elsewhere.append(f"{loaded.__name__}.{name}")
    assert elsewhere == []


def test_a_proof_not_yet_is_worth_retrying_and_a_refused_one_is_not() -> None:
    later = ProofNotYet("the log has no signed checkpoint yet")
    assert isinstance(later, ProofError) and isinstance(later, Transient) and later.status == 409
    never = ProofRefused(404, "no checkpoint of size 7")
    assert isinstance(never, ProofError) and isinstance(never, Terminal) and never.status == 404
