"""Secrets at rest: values sealed with AES-256-GCM under a ring of keys with ids.

A sealed value names its key, so keys can rotate, and is bound to its place:

    lgsp-sealed:v1:<kid>:<base64url(96-bit nonce || ciphertext || tag)>

The associated data is `lgsp-sealed:v1:<kid>:<context>`, the context naming where the value
lives (`connector/<name>/secret`): a sealed value copied to another row or column does not open.

The key file (LGSP_SECRETS_KEY_FILE) holds one key a line, newest first, `<kid> <base64 of 32
bytes>`; blank lines and lines starting with # are ignored. The first key seals; the others only
open what they sealed, until `lgsp secrets rotate` has sealed every value again under the first.

Errors, one root (`SealingError`), translated from `cryptography` here and nowhere else:

    SealingError
      KeyFileError   the key file is missing, unreadable, or not in the format above
      UnknownKey     the value was sealed under a key id the ring does not hold
      NotOpened      the value is not a sealed value, or was changed, or belongs elsewhere
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

PREFIX = "lgsp-sealed:v1:"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, random per value
KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
KEY_FILE_MODE = 0o600


class SealingError(Exception):
    """A secret could not be sealed or opened; the message never holds the secret."""


class KeyFileError(SealingError):
    pass


class UnknownKey(SealingError):
    pass


class NotOpened(SealingError):
    pass


def context(table: str, row: str, column: str) -> str:
    """The place a sealed value is bound to: its table, its row's fixed name (or id), its column.
    A new table of secrets (the hub's token signing keys, say) seals with
    `ring_of(session).seal(value, context=context("signing_key", kid, "private_jwk"))` and adds
    a `Place` to registry/sealed.py, so rotation and the raw-database test cover it."""
    return f"{table}/{row}/{column}"


def connector_context(name: str) -> str:
    """Where a connector's credential (API key, password or client secret) lives."""
    return context("connector", name, "secret")


def tls_key_context(name: str) -> str:
    """Where a connector's mutual-TLS private key lives."""
    return context("connector", name, "tls_key")


def signing_key_context(kid: str) -> str:
    """Where one of the hub's token signing keys (its private JWK) lives."""
    return context("token_signing_key", kid, "private_jwk")


def subscription_context(name: str) -> str:
    """Where a push subscription's webhook signing secrets live."""
    return context("subscription", name, "secrets")


def new_kid() -> str:
    """A key id that sorts by the day it was made: 20261206-a1b2c3."""
    return f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def kid_of(value: str) -> str | None:
    """The id of the key that sealed `value` (None: not a sealed value)."""
    if not is_sealed(value):
        return None
    kid, _, _ = value[len(PREFIX) :].partition(":")
    return kid


class KeyRing:
    """The keys that seal and open secrets, newest (the sealing one) first.

    A ring read from a file reads it again when it meets a key id it does not hold, so a hub
    keeps opening values after `lgsp secrets rotate` added a key to the file it shares.
    """

    def __init__(self, keys: list[tuple[str, bytes]], *, path: Path | None = None) -> None:
        _check_keys(keys, path)
        self._keys = dict(keys)
        self._current = keys[0][0]
        self.path = path
        self._lock = threading.Lock()
        self._read = _modified(path)

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyRing(kids={self.kids!r}, path={self.path!r})"

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    @classmethod
    def generate(cls) -> KeyRing:
        return cls([(new_kid(), AESGCM.generate_key(bit_length=256))])

    def with_new_key(self, kid: str | None = None, key: bytes | None = None) -> KeyRing:
        """This ring with a new sealing key in front (the others kept to open old values)."""
        kid = kid or new_kid()
        key = key if key is not None else AESGCM.generate_key(bit_length=256)
        return KeyRing([(kid, key), *self._keys.items()], path=self.path)

    def without(self, kids: set[str]) -> KeyRing:
        """This ring without the keys `kids` (never the sealing one)."""
        if self._current in kids:
            raise KeyFileError(f"key {self._current} seals new values: it cannot be removed")
        return KeyRing([(k, v) for k, v in self._keys.items() if k not in kids], path=self.path)

    def seal(self, plaintext: str, *, context: str) -> str:
        """`plaintext` sealed under the current key, bound to `context` (a ring read from a file
        first reads it again if it changed, so a rotation's new key seals at once)."""
        if self.path is not None and _modified(self.path) != self._read:
            self._reload()
        kid = self._current
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._keys[kid]).encrypt(
            nonce, plaintext.encode(), _associated(kid, context)
        )
        return PREFIX + kid + ":" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str, *, context: str) -> str:
        """The plaintext of a value sealed for `context`; UnknownKey or NotOpened otherwise."""
        if not is_sealed(value):
            raise NotOpened(f"the value at {context} is not sealed")
        kid, _, body = value[len(PREFIX) :].partition(":")
        key = self._key(kid)
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            if len(raw) < NONCE_BYTES + 16:
                raise ValueError("too short")
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(kid, context)
            )
            return plain.decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise NotOpened(
                f"the sealed value at {context} does not open under key {kid}: it was changed, "
                "or copied from another place"
            ) from None

    def reseal(self, value: str, *, context: str) -> str:
        """`value` sealed again under the current key (unchanged if it already is)."""
        if kid_of(value) == self._current:
            return value
        return self.seal(self.open(value, context=context), context=context)

    def _key(self, kid: str) -> bytes:
        key = self._keys.get(kid)
        if key is None and self.path is not None:
            self._reload()  # the file may have gained the key since it was read
            key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(
                f"a secret is sealed under key {kid}, which the key file "
                f"{self.path or '(none)'} does not hold"
            )
        return key

    def _reload(self) -> None:
        assert self.path is not None
        with self._lock:
            fresh = read_key_file(self.path)
            self._keys, self._current, self._read = fresh._keys, fresh._current, fresh._read


def _modified(path: Path | None) -> tuple[int, int, int] | None:
    """What changes when the file is written (write_key_file replaces it: a new inode)."""
    try:
        found = None if path is None else path.stat()
    except OSError:
        return None
    return None if found is None else (found.st_ino, found.st_mtime_ns, found.st_size)


def _associated(kid: str, context: str) -> bytes:
    return f"{PREFIX}{kid}:{context}".encode()


def _check_keys(keys: list[tuple[str, bytes]], path: Path | None) -> None:
    where = f"the secrets key file {path}" if path else "the key ring"
    if not keys:
        raise KeyFileError(f"{where} holds no key")
    kids = [kid for kid, _ in keys]
    bad = [kid for kid in kids if not KID_RE.match(kid)]
    if bad:
        raise KeyFileError(f"{where}: key ids are 1 to 32 of A-Z a-z 0-9 _ - (see {bad[0]!r})")
    if len(set(kids)) != len(kids):
        raise KeyFileError(f"{where} holds key id {kids[0]} twice")
    short = [kid for kid, key in keys if len(key) != KEY_BYTES]
    if short:
        raise KeyFileError(f"{where}: key {short[0]} is not {KEY_BYTES} bytes (AES-256)")


# ---------------------------------------------------------------- the key file


def read_key_file(path: Path) -> KeyRing:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeyFileError(
            f"no secrets key file at {path}: create one with `lgsp secrets generate --key-file "
            f"{path}` and set LGSP_SECRETS_KEY_FILE"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the secrets key file {path}: {exc.strerror}") from None
    keys: list[tuple[str, bytes]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid, _, encoded = line.partition(" ")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(
                f"the secrets key file {path}, line {number}: expected '<kid> <base64 key>'"
            ) from None
        keys.append((kid, key))
    return KeyRing(keys, path=path)


def _write_temporary(path: Path, ring: KeyRing) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "w") as out:
        out.write("# LGSP Hub secrets keys, newest (sealing) first: <kid> <base64 of 32 bytes>\n")
        for kid, key in ring._keys.items():
            out.write(f"{kid} {base64.b64encode(key).decode()}\n")
        out.flush()
        os.fsync(out.fileno())
    return temporary


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Write `ring` to `path` (mode 0600, replaced atomically)."""
    _write_temporary(path, ring).replace(path)


def load_key_file(path: Path, *, generate: bool) -> KeyRing:
    """The ring in `path`; a new one is written there first if absent and `generate` allows.
    Workers starting together all end up with the one file the first of them made."""
    if generate and not path.exists():
        temporary = _write_temporary(path, KeyRing.generate())
        try:
            os.link(temporary, path)  # never replaces a file another worker made meanwhile
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return read_key_file(path)


# ---------------------------------------------------------------- the ring of a database

_RINGS: weakref.WeakKeyDictionary[Engine, KeyRing] = weakref.WeakKeyDictionary()


def attach(engine: Engine, ring: KeyRing) -> None:
    """Make `ring` the one that seals and opens the secrets of `engine`'s database."""
    _RINGS[engine] = ring


def ring_of(bind: Session | Connection | Engine) -> KeyRing:
    """The key ring attached to the database a session or connection works on."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    ring = _RINGS.get(engine)
    if ring is None:
        raise KeyFileError(
            "no secrets key ring is attached to this database (gateway.db.sealing.attach_ring)"
        )
    return ring


def find_ring(bind: Connection | Engine) -> KeyRing | None:
    engine = bind.engine if isinstance(bind, Connection) else bind
    return _RINGS.get(engine)
