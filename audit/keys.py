"""The checkpoint-signing keys: a file of signer keys, newest first, generated for development.

The file holds one C2SP signer key (`PRIVATE+KEY+<name>+<id>+<base64>`) a line. The first line
signs checkpoints; the lines after it are the keys it replaced. A rotated-out key that is still in
the file co-signs the first checkpoint of its successor, so a verifier that trusts the old key
learns the new one from the log itself (audit/log.py records the handover).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from audit.errors import KeyFileError
from audit.notes import Signer


def default_key_file(database_url: str) -> Path:
    """Where development keys live when LGSP_AUDIT_KEY_FILE is not set: beside a SQLite file,
    or in the user's state directory, one per database."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return Path(path + ".audit-key")
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path.home() / ".local" / "state" / "lgsp" / f"audit-{digest}.key"


def load_signers(path: Path, *, name: str, generate: bool) -> list[Signer]:
    """The signers in `path`, current first; a new key is written first if the file is absent
    and `generate` allows it."""
    if not path.exists():
        if not generate:
            raise KeyFileError(
                f"no audit signing key at {path}: create one with `lgsp audit keys generate "
                f"--key-file {path}` and set LGSP_AUDIT_KEY_FILE"
            )
        write_signers(path, [Signer.generate(name)])
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        signers = [Signer.from_skey(line) for line in lines]
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the audit signing key {path}: {exc}") from None
    if not signers:
        raise KeyFileError(f"the audit signing key file {path} holds no key")
    return signers


def rotate(path: Path, *, name: str, keep: int = 1) -> Signer:
    """Put a new key first in `path`, keeping `keep` previous keys for the handover."""
    old = load_signers(path, name=name, generate=False)
    new = Signer.generate(name)
    write_signers(path, [new, *old[:keep]])
    return new


def write_signers(path: Path, signers: list[Signer]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("".join(s.skey + "\n" for s in signers))
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
