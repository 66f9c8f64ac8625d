"""Signed checkpoints: C2SP signed-note (Ed25519) and tlog-checkpoint.

Follows c2sp.org/signed-note and golang.org/x/mod/sumdb/note, whose published keys and note the
tests check byte for byte:

- key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte Ed25519 public key)[:4], written as 8 hex digits;
- verifier key `<name>+<key id>+<base64(0x01 ‖ public key)>`,
  signer key `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`;
- a note is its text (ending in a newline), a blank line, then one or more lines
  `— <name> <base64(key ID ‖ signature)>` (U+2014, a space); the signature covers the text;
- opening a note ignores signatures by keys it does not know, rejects the note if a known key's
  signature fails, and if no known key signed it.

A checkpoint's text is `<origin>\\n<tree size>\\n<base64 root>\\n` then extension lines.

The checkpoint's time is an extension line `time <RFC 3339 UTC, seconds>Z`, not a timestamped
cosignature (signature type 0x04, c2sp.org/tlog-cosignature). tlog-checkpoint allows extension
lines (optional, non-empty; "not recommended" only because monitors cannot audit them, which holds
for a log's clock either way). A 0x04 cosignature is a witness's statement about the largest tree
it has seen, and common note verifiers (Go's sumdb/note among them) check only 0x01 signatures; the
extension line keeps the time readable in the body, signed by the same 0x01 signature, and a
witness's Ed25519 cosignature still covers it (that cosignature signs the whole body).

Errors (audit/errors.py): `NoteError` (a `ValueError`) is the root; `MalformedNote` (and
`MalformedCheckpoint`), the text is not a signed note / a checkpoint; `UnknownKey`, no trusted key
signed it; `BadSignature`, a trusted key's signature does not verify. Bad key strings raise
`ValueError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from audit.errors import BadSignature, MalformedCheckpoint, MalformedNote, UnknownKey

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # as Go's note.Open; c2sp asks verifiers to accept at least 16
DEFAULT_ORIGIN = "lgsp.laichau.gov.vn/audit"
_DASH = "— "


def valid_name(name: str) -> bool:
    """A key name: non-empty, no Unicode space, no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_hash(name: str, public_key: bytes) -> int:
    """The 32-bit key ID of an Ed25519 key (the signature type byte 0x01 is prepended here)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("bad base64") from None


_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


def _key_parts(name: str, hash_hex: str, key64: str) -> tuple[int, bytes]:
    """Check a key string's parts; returns the key hash and the 32-byte key material."""
    if not valid_name(name) or not _HEX8.fullmatch(hash_hex):
        raise ValueError("malformed key")
    key = _b64decode(key64)
    if len(key) != 33 or key[0] != ALG_ED25519:
        raise ValueError("not an Ed25519 note key")
    return int(hash_hex, 16), key[1:]


class Verifier:
    """A trusted public key, from its verifier key string."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if not valid_name(name):
            raise ValueError(f"invalid key name {name!r}")
        self.name = name
        self.public_key = public_key
        self._key = Ed25519PublicKey.from_public_bytes(public_key)
        self.key_hash = key_hash(name, public_key)

    @property
    def key_id(self) -> str:
        return f"{self.key_hash:08x}"

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id}+{material}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        name, _, rest = vkey.partition("+")
        hash_hex, _, key64 = rest.partition("+")
        hash_value, public_key = _key_parts(name, hash_hex, key64)
        verifier = cls(name, public_key)
        if verifier.key_hash != hash_value:
            raise ValueError("the key ID does not match the key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.name}+{self.key_id})"


class Signer:
    """A private signing key, from its signer key string or generated."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)
        self.name = name

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise ValueError("malformed signer key")
        _, _, name, hash_hex, key64 = parts
        hash_value, seed = _key_parts(name, hash_hex, key64)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.verifier.key_hash != hash_value:
            raise ValueError("the key ID does not match the key")
        return signer

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id}+{material}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def signature_line(self, body: str) -> str:
        signature = self.verifier.key_hash.to_bytes(4, "big") + self.sign(body.encode())
        return f"{_DASH}{self.name} {base64.b64encode(signature).decode()}\n"

    def sign_note(self, body: str) -> str:
        return sign_note(body, [self])

    def __repr__(self) -> str:
        return f"Signer({self.name}+{self.key_id})"


def _check_text(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNote("a note holds no control characters but newlines")
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        raise MalformedNote("a note is valid UTF-8") from None


def sign_note(body: str, signers: Iterable[Signer]) -> str:
    """`body` signed by each of `signers`, in order."""
    signers = list(signers)
    if not signers:
        raise ValueError("a note needs at least one signer")
    if not body.endswith("\n"):
        raise MalformedNote("a note's text ends with a newline")
    _check_text(body)
    return body + "\n" + "".join(signer.signature_line(body) for signer in signers)


def note_body(text: str) -> str:
    """The signed text of a note: everything before the blank line (its final newline kept)."""
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNote("no blank line before the signatures")
    return text[: split + 1]


def open_note(text: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """The note's text and the key IDs of the trusted keys that signed it, in note order.

    Signatures by keys not among `verifiers` are ignored (a rotated key, a witness), repeated
    ones counted once. Raises `MalformedNote`, `BadSignature` (a trusted key's signature fails:
    the whole note is rejected) or `UnknownKey` (no trusted key signed it).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNote("a note is valid UTF-8") from None
    _check_text(text)
    body = note_body(text)
    block = text[len(body) + 1 :]
    if not block.endswith("\n"):
        raise MalformedNote("the signatures end with a newline")
    known: dict[tuple[str, int], Verifier] = {}
    for trusted in verifiers:
        known.setdefault((trusted.name, trusted.key_hash), trusted)
    message = body.encode()
    signed: list[str] = []
    seen: set[tuple[str, int]] = set()
    unknown: list[str] = []
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signatures")
    for line in lines:
        if not line.startswith(_DASH):
            raise MalformedNote("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            raw = _b64decode(encoded)
        except ValueError:
            raise MalformedNote("a signature is base64") from None
        if not valid_name(name) or not encoded or len(raw) < 5:
            raise MalformedNote("malformed signature line")
        hash_value = int.from_bytes(raw[:4], "big")
        verifier = known.get((name, hash_value))
        if verifier is None:
            unknown.append(f"{name}+{hash_value:08x}")
            continue
        if (name, hash_value) in seen:
            continue
        seen.add((name, hash_value))
        if not verifier.verify(message, raw[4:]):
            raise BadSignature(name, verifier.key_id)
        signed.append(verifier.key_id)
    if not signed:
        raise UnknownKey(list(dict.fromkeys(unknown)))
    return body, signed


# --- checkpoints (c2sp.org/tlog-checkpoint) -------------------------------------------------

_SIZE = re.compile(r"0|[1-9][0-9]*")
_TIME = re.compile(r"time ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})Z")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, e.g. 2026-11-24T03:20:00Z (naive means UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log's origin, its size, its root and when the log signed it.

    `time` is whole seconds in UTC (a naive datetime is taken as UTC); `extensions` are other
    extension lines (another log's), kept so that `parse(body).body() == body`.
    """

    origin: str
    size: int
    root: bytes
    time: datetime | None = None
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("the origin is one non-empty line")
        if self.size < 0:
            raise ValueError("negative tree size")
        if len(self.root) != 32:
            raise ValueError("the root is 32 bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise ValueError("extension lines are non-empty lines")
        if self.time is not None:
            moment = self.time
            moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
            if moment.microsecond:
                raise ValueError("a checkpoint's time is whole seconds")
            object.__setattr__(self, "time", moment)

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        if self.time is not None:
            lines.append(f"time {format_time(self.time)}")
        lines.extend(self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """A checkpoint from a note's text (raises `MalformedCheckpoint`)."""
        if not body.endswith("\n"):
            raise MalformedCheckpoint("a checkpoint ends with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise MalformedCheckpoint("a checkpoint is at least three non-empty lines")
        origin, size, root64, *rest = lines
        if not _SIZE.fullmatch(size) or len(size) > 20 or int(size) >= 1 << 64:
            raise MalformedCheckpoint("the tree size is a decimal number below 2^64")
        try:
            root = _b64decode(root64)
        except ValueError:
            raise MalformedCheckpoint("the root hash is base64") from None
        if len(root) != 32 or base64.b64encode(root).decode() != root64:
            raise MalformedCheckpoint("the root hash is 32 bytes in base64")
        time = None
        match = _TIME.fullmatch(rest[0]) if rest else None
        if match:  # our time line comes first; any other line is an opaque extension
            try:
                time = datetime.fromisoformat(match[1]).replace(tzinfo=UTC)
            except ValueError:
                raise MalformedCheckpoint(f"bad time {match[1]!r}") from None
            rest = rest[1:]
        return cls(origin, int(size), root, time, tuple(rest))
