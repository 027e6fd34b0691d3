"""Signatures: one purpose never verifies as another, and keys rotate without logouts."""

from __future__ import annotations

import hashlib
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from wsgisession.errors import ConfigurationError
from wsgisession.signing import Keyring, b64decode, b64encode

KEY = "k" * 43


def test_signed_value_verifies_and_returns_payload_and_time() -> None:
    signer = Keyring(KEY).signer("session")
    unsigned = signer.unsign(signer.sign(b"hello", 1_700_000_000))
    assert unsigned.value == b"hello"
    assert unsigned.timestamp == 1_700_000_000
    assert unsigned.stale_key is False


def test_format_is_itsdangerous_timestamp_signer() -> None:
    # Anyone can verify our cookies with itsdangerous alone: no private format.
    ours = Keyring(KEY).signer("session").sign(b"payload")
    theirs = TimestampSigner(
        KEY, salt="session", key_derivation="hmac", digest_method=hashlib.sha256
    )
    assert theirs.unsign(ours) == b"payload"


@given(st.binary(max_size=700))
def test_base64_is_itsdangerous_encoding_byte_for_byte(data: bytes) -> None:
    assert b64encode(data) == base64_encode(data)
    assert b64decode(base64_encode(data)) == data == base64_decode(b64encode(data))


@given(st.binary(max_size=700))
def test_signed_is_itsdangerous_signer_byte_for_byte(data: bytes) -> None:
    ours = Keyring(KEY).signer("session")._signers[0]
    theirs = Signer(KEY, salt="session", key_derivation="hmac", digest_method=hashlib.sha256)
    assert ours.signed(data) == theirs.sign(data)


def test_value_signed_for_one_purpose_is_refused_for_another() -> None:
    keyring = Keyring(KEY)
    signed = keyring.signer("wsgisession.cookie:theme").sign(b"dark")
    with pytest.raises(BadSignature):
        keyring.signer("wsgisession.session:session").unsign(signed)


def test_other_key_is_refused() -> None:
    signed = Keyring("a" * 43).signer("p").sign(b"x")
    with pytest.raises(BadSignature):
        Keyring("b" * 43).signer("p").unsign(signed)


def test_fallback_key_verifies_and_is_flagged_stale() -> None:
    old = Keyring("old-" + "o" * 40).signer("p").sign(b"x")
    rotated = Keyring("new-" + "n" * 40, ["old-" + "o" * 40]).signer("p")
    unsigned = rotated.unsign(old)
    assert unsigned.value == b"x"
    assert unsigned.stale_key is True
    # and new values are signed with the current key only
    assert Keyring("new-" + "n" * 40).signer("p").unsign(rotated.sign(b"y")).value == b"y"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s[:-1], id="truncated-signature"),
        pytest.param(lambda s: s[:10], id="truncated-payload"),
        pytest.param(lambda s: b"X" + s[1:], id="flipped-payload"),
        pytest.param(lambda s: s.replace(b".", b"", 1), id="no-separator"),
        pytest.param(lambda s: b"", id="empty"),
        pytest.param(lambda s: s + b"=", id="padding-added"),
        pytest.param(lambda s: s.rsplit(b".", 1)[0] + b".!!!", id="non-base64-signature"),
    ],
)
def test_damaged_values_are_refused(mangle: object) -> None:
    signer = Keyring(KEY).signer("p")
    signed = signer.sign(b"payload")
    with pytest.raises(BadSignature):
        signer.unsign(mangle(signed))  # type: ignore[operator]


def test_timestamp_out_of_range_is_refused() -> None:
    signer = Keyring(KEY).signer("p")
    with pytest.raises(BadSignature):
        signer.unsign(signer.sign(b"x", 2**48))


@pytest.mark.parametrize("key", [None, "", b""])
def test_missing_key_is_a_configuration_error_saying_how_to_make_one(key: object) -> None:
    with pytest.raises(ConfigurationError, match=r"secrets\.token_urlsafe"):
        Keyring(key)  # type: ignore[arg-type]


def test_single_string_as_fallback_list_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="list"):
        Keyring(KEY, "old-key")  # type: ignore[arg-type]


def test_short_key_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        Keyring("short")
    assert "at least 32" in caplog.text


def test_base64_malleable_variants_of_a_signature_are_refused() -> None:
    signer = Keyring(KEY).signer("p")
    signed = signer.sign(b"payload")
    body, sig = signed.rsplit(b".", 1)
    # 32 bytes encode to 43 characters whose last one carries 2 unused bits: the
    # other values of those bits decode to the same signature bytes.
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1:])
    variants = [sig + b"=", sig + b"=="] + [
        sig[:-1] + alphabet[(last & ~3) | bits : ((last & ~3) | bits) + 1]
        for bits in range(4)
        if (last & ~3) | bits != last
    ]
    for variant in variants:
        with pytest.raises(BadSignature):
            signer.unsign(body + b"." + variant)
