"""Sealing secrets at rest: AES-256-GCM values that name their key and are bound to their place."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from registry import sealing
from registry.sealing import KeyFileError, KeyRing, NotOpened, UnknownKey

HERE = sealing.connector_context("csdl-dan-cu")


def test_a_sealed_value_opens_names_its_key_and_hides_the_secret() -> None:
    ring = KeyRing.generate()
    sealed = ring.seal("mật-khẩu-42", context=HERE)
    again = ring.seal("mật-khẩu-42", context=HERE)
    assert sealed.startswith(f"lgsp-sealed:v1:{ring.current_kid}:")
    assert sealing.kid_of(sealed) == ring.current_kid
    assert "mật-khẩu-42" not in sealed
    assert sealed != again  # a fresh nonce each time
    assert ring.open(sealed, context=HERE) == "mật-khẩu-42"
    assert ring.open(again, context=HERE) == "mật-khẩu-42"
    assert sealing.kid_of("plain") is None


def test_a_value_moved_to_another_place_does_not_open() -> None:
    ring = KeyRing.generate()
    sealed = ring.seal("s3cret", context=HERE)
    with pytest.raises(NotOpened, match="connector/other/secret"):
        ring.open(sealed, context=sealing.connector_context("other"))
    with pytest.raises(NotOpened):
        ring.open(sealed, context=sealing.subscription_context("csdl-dan-cu"))


@pytest.mark.parametrize("where", [-1, -20, len("lgsp-sealed:v1:") + 20])
def test_a_changed_value_does_not_open(where: int) -> None:
    ring = KeyRing.generate()
    sealed = ring.seal("s3cret", context=HERE)
    changed = sealed[:where] + ("A" if sealed[where] != "A" else "B") + sealed[where + 1 :]
    with pytest.raises(NotOpened, match="does not open"):
        ring.open(changed, context=HERE)


def test_a_value_under_a_key_the_ring_lacks_is_refused_by_its_id() -> None:
    sealed = KeyRing.generate().seal("s3cret", context=HERE)
    kid = sealing.kid_of(sealed)
    with pytest.raises(UnknownKey, match=f"key {kid}"):
        KeyRing.generate().open(sealed, context=HERE)


def test_a_clear_or_truncated_value_is_not_opened() -> None:
    ring = KeyRing.generate()
    with pytest.raises(NotOpened, match="not sealed"):
        ring.open("s3cret", context=HERE)
    with pytest.raises(NotOpened):
        ring.open(f"lgsp-sealed:v1:{ring.current_kid}:AAAA", context=HERE)
    with pytest.raises(NotOpened):
        ring.open(f"lgsp-sealed:v1:{ring.current_kid}:not base64!", context=HERE)


def test_a_new_key_seals_while_the_old_ones_still_open() -> None:
    old = KeyRing.generate()
    sealed = old.seal("s3cret", context=HERE)
    new = old.with_new_key()
    assert new.kids == [new.current_kid, old.current_kid]
    assert new.open(sealed, context=HERE) == "s3cret"
    resealed = new.reseal(sealed, context=HERE)
    assert sealing.kid_of(resealed) == new.current_kid
    assert new.reseal(resealed, context=HERE) is resealed  # already under the current key
    with pytest.raises(UnknownKey):
        new.without({old.current_kid}).open(sealed, context=HERE)
    with pytest.raises(KeyFileError, match="seals new values"):
        new.without({new.current_kid})


def test_the_key_file_is_written_0600_and_read_back_newest_first(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secrets.key"
    ring = sealing.load_key_file(path, generate=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = ring.seal("s3cret", context=HERE)
    sealing.write_key_file(path, ring.with_new_key(kid="k2"))
    read = sealing.read_key_file(path)
    assert read.current_kid == "k2" and read.kids == ["k2", ring.current_kid]
    assert read.open(sealed, context=HERE) == "s3cret"
    keys = [line.split()[1] for line in path.read_text().splitlines() if line[:1] != "#"]
    assert len(keys) == 2 and not any(key in repr(read) for key in keys)  # repr hides them


def test_a_ring_read_from_a_file_learns_a_key_added_to_it(tmp_path: Path) -> None:
    """A running hub opens values that `lgsp secrets rotate` sealed under the key it added."""
    path = tmp_path / "secrets.key"
    running = sealing.load_key_file(path, generate=True)
    rotated = sealing.read_key_file(path).with_new_key()
    sealing.write_key_file(path, rotated)
    sealed = rotated.seal("s3cret", context=HERE)
    assert running.open(sealed, context=HERE) == "s3cret"
    assert running.current_kid == rotated.current_kid  # and seals under it from now on


def test_a_ring_read_from_a_file_seals_under_the_key_a_rotation_put_first(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    running = sealing.load_key_file(path, generate=True)
    rotated = sealing.read_key_file(path).with_new_key()
    sealing.write_key_file(path, rotated)
    sealed = running.seal("s3cret", context=HERE)
    assert sealing.kid_of(sealed) == rotated.current_kid
    assert rotated.open(sealed, context=HERE) == "s3cret"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("k1 not-base64!\n", "line 1"),
        (f"k1 {base64.b64encode(b'short').decode()}\n", "not 32 bytes"),
        (f"bad/kid {base64.b64encode(bytes(32)).decode()}\n", "key ids are"),
        ("k1 {k}\nk1 {k}\n".format(k=base64.b64encode(bytes(32)).decode()), "twice"),
    ],
)
def test_a_malformed_key_file_is_refused_saying_why(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "secrets.key"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=message):
        sealing.read_key_file(path)


def test_a_missing_key_file_is_refused_unless_it_may_be_generated(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="lgsp secrets generate"):
        sealing.load_key_file(tmp_path / "absent.key", generate=False)


def test_workers_generating_together_share_one_key_file(tmp_path: Path) -> None:
    """`lgsp serve --workers N` on a fresh development database: one key, the same for all."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "secrets.key"
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: sealing.load_key_file(path, generate=True), range(8)))
    assert {ring.current_kid for ring in rings} == {sealing.read_key_file(path).current_kid}
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.key"]  # no temporary left
