"""Build session cookies the way an attacker who knows the format would, from the spec.

The encrypted format is re-implemented here from its description in
``wsgisession/stores/_encrypted.py`` and SECURITY.md, not imported, so these tests
also prove the documentation. Forging *valid* cookies needs the test key: that is
the point of the tests that use it (what if the payload were hostile anyway?).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import Signer

from ..conftest import SECRET

PURPOSE = "wsgisession.session:session"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def aes_key(key: str = SECRET, purpose: str = PURPOSE) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"wsgisession.aes-256-gcm",
        info=purpose.encode("utf-8"),
    )
    return hkdf.derive(key.encode("utf-8"))


def signed_cookie(
    payload: bytes,
    *,
    timestamp: int | None = None,
    key: str = SECRET,
    purpose: str = PURPOSE,
    compress: bool = False,
) -> str:
    """A cookie in the signed format carrying *payload* (validly signed with *key*).

    Signed by itsdangerous itself (the format is its ``TimestampSigner``'s), with a
    timestamp of any size.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    body = "." + b64(zlib.compress(payload)) if compress else b64(payload)
    stamp = b64(ts.to_bytes((ts.bit_length() + 7) // 8, "big"))
    signer = Signer(key, salt=purpose, key_derivation="hmac", digest_method=hashlib.sha256)
    return signer.sign(f"{body}.{stamp}").decode("ascii")


def encrypted_cookie(
    payload: bytes,
    *,
    timestamp: int | None = None,
    key: str = SECRET,
    purpose: str = PURPOSE,
    compress: bool = False,
    version: bytes = b"\x01",
) -> str:
    """A cookie in the encrypted format carrying *payload* (validly sealed with *key*)."""
    ts = int(time.time()) if timestamp is None else timestamp
    flags = b"\x01" if compress else b"\x00"
    body = zlib.compress(payload) if compress else payload
    nonce = os.urandom(12)
    sealed = AESGCM(aes_key(key, purpose)).encrypt(
        nonce, flags + ts.to_bytes(8, "big") + body, version + purpose.encode("utf-8")
    )
    return b64(version + nonce + sealed)


def decrypt_cookie(value: str, key: str = SECRET, purpose: str = PURPOSE) -> tuple[int, int, bytes]:
    """The (flags, timestamp, payload) inside an encrypted cookie."""
    blob = unb64(value)
    plaintext = AESGCM(aes_key(key, purpose)).decrypt(
        blob[1:13], blob[13:], blob[:1] + purpose.encode("utf-8")
    )
    return plaintext[0], int.from_bytes(plaintext[1:9], "big"), plaintext[9:]
