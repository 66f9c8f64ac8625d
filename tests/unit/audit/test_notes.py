"""audit.notes against golang.org/x/mod/sumdb/note's published keys and notes, and fuzzed text."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import BadSignature, MalformedCheckpoint, MalformedNote, NoteError, UnknownKey
from audit.notes import (
    Checkpoint,
    Signer,
    Verifier,
    open_note,
    sign_note,
)

# From golang.org/x/mod/sumdb/note (note.go's documentation and note_test.go).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

PETER = Verifier.from_vkey(PETER_VKEY)
ENOCH = Verifier.from_vkey(ENOCH_VKEY)


# --- interoperability with Go's note package ---------------------------------------------------


def test_go_signer_key_signs_the_published_note_byte_for_byte() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == "c74f20a3"
    assert signer.vkey == PETER_VKEY
    assert signer.skey == PETER_SKEY
    assert signer.sign_note(TEXT) == TEXT + "\n" + PETER_SIG  # Ed25519 is deterministic
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG


def test_go_verifier_keys() -> None:
    assert (PETER.name, PETER.key_id, PETER.vkey) == ("PeterNeumann", "c74f20a3", PETER_VKEY)
    assert (ENOCH.name, ENOCH.key_id, ENOCH.vkey) == ("EnochRoot", "af0cfe78", ENOCH_VKEY)


def test_open_the_go_notes() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(TEXT + "\n" + PETER_SIG, [PETER]) == (TEXT, ["c74f20a3"])
    # one signature verified, the other by a key not trusted here: ignored
    assert open_note(both, [PETER]) == (TEXT, ["c74f20a3"])
    assert open_note(both, [ENOCH]) == (TEXT, ["af0cfe78"])
    assert open_note(both, [ENOCH, PETER]) == (TEXT, ["c74f20a3", "af0cfe78"])
    assert open_note(both.encode(), [PETER]) == (TEXT, ["c74f20a3"])
    with pytest.raises(UnknownKey) as caught:
        open_note(both, [])
    assert caught.value.keys == ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    assert "PeterNeumann+c74f20a3" in str(caught.value)


def test_repeated_signatures_count_once_and_unknown_bad_ones_are_ignored() -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    assert open_note(note, [PETER]) == (TEXT, ["c74f20a3"])


def test_a_trusted_keys_bad_signature_rejects_the_note() -> None:
    note = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(BadSignature, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(note, [PETER])
    # even when another trusted key's signature is good
    with pytest.raises(BadSignature):
        open_note(note + ENOCH_SIG, [PETER, ENOCH])
    with pytest.raises(BadSignature):
        open_note(TEXT.replace("cryptography", "cryptographY") + "\n" + PETER_SIG, [PETER])


def test_too_many_signatures() -> None:
    with pytest.raises(MalformedNote):
        open_note(TEXT + "\n" + PETER_SIG * 101, [PETER])
    assert open_note(TEXT + "\n" + PETER_SIG * 100, [PETER]) == (TEXT, ["c74f20a3"])


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2].strip() + "\n",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + "- PeterNeumann " + PETER_SIG.split(" ")[2],  # a hyphen, not an em dash
        TEXT + "\n" + "— PeterNeumann\n",
        TEXT + "\n" + "— PeterNeumann AAAA\n",  # shorter than a key ID and one byte
        TEXT + "\n" + "— PeterNeumann x08go/ZJ!\n",
        TEXT + "\n" + "— Peter+Neumann " + PETER_SIG.split(" ")[2],
        TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
        "",
        "\n\n",
    ],
)
def test_malformed_notes(message: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(message, [PETER])


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedNote):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [PETER])
    with pytest.raises(MalformedNote):
        open_note("\ud800" + TEXT + "\n" + PETER_SIG, [PETER])


def test_text_may_hold_blank_lines() -> None:
    signer = Signer.generate("example.com/log")
    text = "first\n\nsecond\n\n"
    assert open_note(signer.sign_note(text), [signer.verifier]) == (text, [signer.key_id])


def mangled(key: str) -> list[str]:
    """Go's TestNewVerifier manglings: every proper substring, and every one-byte increment."""
    out = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    out = [k for k in out if k != key]
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


def test_mangled_keys_are_refused() -> None:
    for bad in mangled(PETER_VKEY):
        with pytest.raises(ValueError):
            Verifier.from_vkey(bad)
    for bad in mangled(PETER_SKEY):
        with pytest.raises(ValueError):
            Signer.from_skey(bad)
    # Go's: wrong length key and unknown algorithm, each with an adjusted key hash
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(ValueError):
            Verifier.from_vkey(bad)


# --- our keys ----------------------------------------------------------------------------------


def test_generated_keys_round_trip() -> None:
    signer = Signer.generate("lgsp.laichau.gov.vn/audit")
    again = Signer.from_skey(signer.skey)
    assert again.vkey == signer.vkey and again.key_id == signer.key_id
    assert len(signer.key_id) == 8 and int(signer.key_id, 16) >= 0
    assert signer.vkey.startswith("lgsp.laichau.gov.vn/audit+" + signer.key_id + "+")
    assert signer.skey.startswith("PRIVATE+KEY+lgsp.laichau.gov.vn/audit+" + signer.key_id + "+")
    assert Verifier.from_vkey(signer.vkey).key_id == signer.key_id
    assert base64.b64decode(signer.vkey.split("+", 2)[2])[0] == 1


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0here"])
def test_key_names_have_no_spaces_or_pluses(name: str) -> None:
    with pytest.raises(ValueError, match="invalid key name"):
        Signer.generate(name)


def test_rotation_old_and_new_key_sign_the_handover() -> None:
    old, new = Signer.generate("example.com/log"), Signer.generate("example.com/log")
    assert old.key_id != new.key_id
    note = sign_note(
        "example.com/log\n5\n" + base64.b64encode(b"r" * 32).decode() + "\n", [new, old]
    )
    assert open_note(note, [old.verifier])[1] == [old.key_id]
    assert open_note(note, [new.verifier])[1] == [new.key_id]
    assert open_note(note, [old.verifier, new.verifier])[1] == [new.key_id, old.key_id]
    # same name, a key the verifier does not hold: ignored, not a failure
    with pytest.raises(UnknownKey):
        open_note(sign_note("x\n", [new]), [old.verifier])


def test_sign_note_needs_a_newline_and_a_signer() -> None:
    signer = Signer.generate("example.com/log")
    with pytest.raises(MalformedNote):
        signer.sign_note("no newline")
    with pytest.raises(MalformedNote):
        signer.sign_note("control\x07\n")
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note("x\n", [])


# --- checkpoints -------------------------------------------------------------------------------

ROOT = bytes(range(32))
ROOT64 = base64.b64encode(ROOT).decode()
AT = datetime(2026, 11, 24, 3, 20, 5, tzinfo=UTC)


def test_checkpoint_body_is_pinned() -> None:
    checkpoint = Checkpoint("lgsp.laichau.gov.vn/audit", 20852163, ROOT, AT)
    assert checkpoint.body() == (
        "lgsp.laichau.gov.vn/audit\n"
        "20852163\n"
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        "time 2026-11-24T03:20:05Z\n"
    )
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


def test_checkpoint_time_is_utc_seconds() -> None:
    hanoi = timezone(timedelta(hours=7))
    local = Checkpoint("o", 1, ROOT, datetime(2026, 11, 24, 10, 20, 5, tzinfo=hanoi))
    naive = Checkpoint("o", 1, ROOT, datetime(2026, 11, 24, 3, 20, 5))
    assert local == naive == Checkpoint("o", 1, ROOT, AT)
    assert "time 2026-11-24T03:20:05Z\n" in local.body()
    with pytest.raises(ValueError, match="whole seconds"):
        Checkpoint("o", 1, ROOT, AT.replace(microsecond=1))


def test_checkpoints_of_other_logs_parse() -> None:
    # c2sp.org/tlog-checkpoint's example: no time line
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    parsed = Checkpoint.parse(body)
    assert (parsed.origin, parsed.size, parsed.time, parsed.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        None,
        (),
    )
    assert parsed.body() == body
    with_extensions = body + "time 2026-11-24T03:20:05Z\nsomething else\ntime opaque\n"
    parsed = Checkpoint.parse(with_extensions)
    assert parsed.time == AT and parsed.extensions == ("something else", "time opaque")
    assert parsed.body() == with_extensions
    assert Checkpoint.parse("o\n0\n" + ROOT64 + "\n").size == 0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "o\n1\n",
        f"o\n1\n{ROOT64}",  # no final newline
        f"\n1\n{ROOT64}\n",
        f"o\n01\n{ROOT64}\n",
        f"o\n-1\n{ROOT64}\n",
        f"o\n+1\n{ROOT64}\n",
        f"o\n 1\n{ROOT64}\n",
        f"o\n{2**64}\n{ROOT64}\n",
        "o\n" + "9" * 5000 + f"\n{ROOT64}\n",
        f"o\n1\n{ROOT64[:-1]}\n",
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"o\n1\n{ROOT64[:-2]}h=\n",  # non-canonical base64
        f"o\n1\n{ROOT64}\n\nextension\n",
        f"o\n1\n{ROOT64}\ntime 2026-13-40T03:20:05Z\n",
    ],
)
def test_malformed_checkpoints(body: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.parse(body)


def test_checkpoint_signed_and_opened() -> None:
    signer = Signer.generate("lgsp.laichau.gov.vn/audit")
    checkpoint = Checkpoint("lgsp.laichau.gov.vn/audit", 12, ROOT, AT)
    note = signer.sign_note(checkpoint.body())
    assert note.endswith("\n") and "\n\n— lgsp.laichau.gov.vn/audit " in note
    body, key_ids = open_note(note, [signer.verifier])
    assert key_ids == [signer.key_id]
    assert Checkpoint.parse(body) == checkpoint


# --- fuzzing: only NoteError (or a clean result) comes out ------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNER = Signer.from_skey(PETER_SKEY)
GOOD_BODY = Checkpoint("o.example/log", 7, ROOT, AT).body()
GOOD = SIGNER.sign_note(GOOD_BODY) + ENOCH_SIG


@FUZZ
@given(st.text())
def test_random_text_never_escapes(text: str) -> None:
    try:
        body, key_ids = open_note(text, [PETER, ENOCH])
    except NoteError:
        return
    assert key_ids and text.startswith(body)


@FUZZ
@given(st.binary())
def test_random_bytes_never_escape(data: bytes) -> None:
    try:
        open_note(data, [PETER])
    except NoteError:
        pass


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(GOOD)),
            st.integers(min_value=0, max_value=3),
            st.sampled_from(["", "\n", " ", "—", "+", "=", "A", "\x00", "\u2014 ", "é", "\n\n"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_edited_notes_never_escape(edits: list[tuple[int, int, str]]) -> None:
    text = GOOD
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    try:
        body, key_ids = open_note(text, [PETER])
    except NoteError:
        return
    # a note that still opens is the text Peter signed, whatever happened to the rest
    assert key_ids == ["c74f20a3"]
    assert body == GOOD_BODY


@FUZZ
@given(st.text())
def test_random_checkpoint_bodies_never_escape(text: str) -> None:
    try:
        checkpoint = Checkpoint.parse(text)
    except MalformedCheckpoint:
        return
    assert checkpoint.body() == text


@FUZZ
@given(st.text())
def test_random_key_strings_never_escape(text: str) -> None:
    for parse in (Verifier.from_vkey, Signer.from_skey):
        try:
            parse(text)
        except ValueError:
            pass
