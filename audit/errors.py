"""Errors of the audit log, one tree: whether a retry may help, and what went wrong.

    AuditError                      root
    ├── Transient                   a retry may help
    │   ├── AuditUnavailable        a record could not be committed (the database away): the
    │   │                           exchange's answer must not leave (writer)       -> 503
    │   └── ProofNotYet             the record or the log is not in a signed checkpoint yet; a
    │                               few seconds later it is (proofs)               -> 409
    └── Terminal                    a retry will not help: change the request, the file or the log
        ├── ProofRefused            no such record or checkpoint, or sizes out of range (proofs)
        │                                                                           -> 404, 422
        ├── LogInconsistent         the tree's leaf for a record's seq is another record: no
        │                           proof is given (proofs)                         -> 500
        ├── SeqReused               a record holds a seq the tree already gave out: the
        │                           integrator stops rather than prove the wrong record (log)
        ├── BadCursor               a page cursor the API did not issue (queries)  -> 400
        ├── BadReportCursor         the same, for a data-subject report (reports)  -> 400
        ├── InvalidIdentifier       not a 12-digit personal identification number nor a 9-digit
        │                           identity card number (reports)                 -> 422
        ├── ErasureError            an erasure that cannot be carried out (erasure)
        ├── ExportError             a bundle that cannot be written (bundle)
        ├── VerifyError             a verification that cannot run (verify)
        ├── ArchiveError            archiving stopped before deleting anything: the log does
        │                           not match its tree, or the file did not verify (retention)
        ├── KeyFileError            the signing key file is missing, unreadable or bad (keys)
        └── NoteError               a signed note that cannot be opened (notes)
            ├── MalformedNote       not a well-formed signed note
            │   └── MalformedCheckpoint   its text is not a well-formed checkpoint
            ├── UnknownKey          no trusted key signed it
            └── BadSignature        a trusted key's signature does not verify

`ProofError` is the common base of ProofNotYet, ProofRefused and LogInconsistent; its `status`
is the HTTP status the auditors' API answers. The input errors (BadCursor, BadReportCursor,
InvalidIdentifier, ErasureError, NoteError) are also `ValueError`s, as before, for callers that
validate input.
Verification's findings (a modified record, a bad signature in the log) are not errors: they are
the report's outcomes (audit/verify.py, audit/bundle.py).
"""

from __future__ import annotations

from collections.abc import Sequence


class AuditError(Exception):
    """The audit log could not do what was asked."""


class Transient(AuditError):
    """A retry may help."""


class Terminal(AuditError):
    """A retry will not help until the request, the file or the log changes."""


class AuditUnavailable(Transient):
    """The record could not be committed; the exchange's answer must not leave."""


class ProofError(AuditError):
    """The proof cannot be given: `status` says why (404 unknown, 409 not yet, 422 bad sizes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ProofNotYet(ProofError, Transient):
    """Not in a signed checkpoint yet: the next checkpoint (seconds away) will hold it."""

    def __init__(self, message: str) -> None:
        super().__init__(409, message)


class ProofRefused(ProofError, Terminal):
    """No such record or checkpoint (404), or sizes out of range (422)."""


class LogInconsistent(ProofError, Terminal):
    """The tree's leaf for a record's seq is not that record (a seq handed out twice, or a
    record altered): no proof is given, and `lgsp audit verify` says what happened (500)."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)


class SeqReused(Terminal):
    """A record holds a seq the tree already gave to a leaf that is not this record's (or gave
    out and never saw committed): integrating on would prove the wrong record."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class BadCursor(Terminal, ValueError):
    """A page cursor the audit API did not issue."""


class BadReportCursor(Terminal, ValueError):
    """A data-subject report's page cursor the API did not issue."""


class InvalidIdentifier(Terminal, ValueError):
    """Not a personal identification number (12 digits) or an old ID card number (9 digits)."""


class ErasureError(Terminal, ValueError):
    """The request cannot be carried out (an empty identifier, a hash that is not one)."""


class ExportError(Terminal):
    """The bundle cannot be written (no checkpoint yet, no such checkpoint size)."""


class VerifyError(Terminal):
    """The verification could not run (no audit tables, unreadable state file)."""


class ArchiveError(Terminal):
    """Archiving stopped before deleting anything: the log does not match its tree, or the file
    did not verify. Run `lgsp audit verify`."""


class KeyFileError(Terminal):
    """The key file is missing (outside development), unreadable or holds a bad key."""


class NoteError(Terminal, ValueError):
    """A signed note could not be opened."""


class MalformedNote(NoteError):
    """The text is not a well-formed signed note."""


class MalformedCheckpoint(MalformedNote):
    """The note's text is not a well-formed checkpoint."""


class UnknownKey(NoteError):
    """No signature in the note is by a trusted key; `keys` lists the `name+key id` found."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        found = ", ".join(self.keys) or "none"
        super().__init__(f"the note has no signature by a trusted key (signed by: {found})")


class BadSignature(NoteError):
    """A trusted key's signature on the note does not verify."""

    def __init__(self, name: str, key_id: str) -> None:
        self.name = name
        self.key_id = key_id
        super().__init__(f"invalid signature for key {name}+{key_id}")
