"""Build session cookies the way an attacker who knows the format would, from the spec.

The encrypted format is re-implemented here from its description in
``wsgisession/stores/_encrypted.py`` and SECURITY.md, not imported, so these tests
also prove the documentation. Forging *valid* cookies needs the test key: that is
the point of the tests that use it (what if the payload were hostile anyway?).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


V1, V2 = b"\x01", b"\x02"
HKDF_SALTS = {V1: b"wsgisession.aes-256-gcm", V2: b"wsgisession.aes-256-gcm-v2"}


def aes_key(key: str = SECRET, purpose: str = PURPOSE, version: bytes = V2) -> bytes:
    """Format 1: the AES key of every cookie. Format 2: the master key of the cookie keys."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=HKDF_SALTS[version],
        info=purpose.encode("utf-8"),
    )
    return hkdf.derive(key.encode("utf-8"))


def cookie_key(salt: bytes, key: str = SECRET, purpose: str = PURPOSE) -> bytes:
    """Format 2: the AES key of the one cookie with this random salt."""
    return hmac.new(aes_key(key, purpose, V2), salt, hashlib.sha256).digest()


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
    version: bytes = V2,
) -> str:
    """A cookie in encrypted format *version* carrying *payload* (validly sealed with *key*).

    Format 1 is still read (cookies issued before format 2), never written.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    flags = b"\x01" if compress else b"\x00"
    body = zlib.compress(payload) if compress else payload
    plaintext = flags + ts.to_bytes(8, "big") + body
    aad = version + purpose.encode("utf-8")
    if version == V1:
        nonce = os.urandom(12)
        return b64(
            version + nonce + AESGCM(aes_key(key, purpose, V1)).encrypt(nonce, plaintext, aad)
        )
    salt = os.urandom(16)
    sealed = AESGCM(cookie_key(salt, key, purpose)).encrypt(bytes(12), plaintext, aad)
    return b64(version + salt + sealed)


def decrypt_cookie(value: str, key: str = SECRET, purpose: str = PURPOSE) -> tuple[int, int, bytes]:
    """The (flags, timestamp, payload) inside an encrypted cookie of either format."""
    blob = unb64(value)
    aad = blob[:1] + purpose.encode("utf-8")
    if blob[:1] == V1:
        plaintext = AESGCM(aes_key(key, purpose, V1)).decrypt(blob[1:13], blob[13:], aad)
    else:
        assert blob[:1] == V2, blob[:1]
        aead = AESGCM(cookie_key(blob[1:17], key, purpose))
        plaintext = aead.decrypt(bytes(12), blob[17:], aad)
    return plaintext[0], int.from_bytes(plaintext[1:9], "big"), plaintext[9:]
