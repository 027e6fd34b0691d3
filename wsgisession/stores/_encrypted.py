"""AES-256-GCM cookie values: the client can neither read nor change the session.

Used by ``CookieStore(encrypt=True)``; needs the ``cryptography`` package (the
``crypto`` extra). The cookie value, format version 1, is URL-safe base64 (no
padding, canonical encoding only) of::

    version (1 byte: 0x01) | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)

    plaintext       = flags (1 byte: 0 raw, 1 zlib) | timestamp (8 bytes, big-endian
                      Unix seconds: the idle clock) | the serialized session
    associated data = version | purpose (UTF-8; it contains the cookie name)
    key             = HKDF-SHA256(secret key, salt=b"wsgisession.aes-256-gcm",
                      info=purpose), 32 bytes, one per secret key

The timestamp is inside the plaintext, so it is authenticated and hidden. A value
made for another purpose fails twice over: another key and other associated data.
The version byte is authenticated too, and a signed cookie (which always contains a
``.``) is not base64, so neither format is ever mistaken for the other.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature

from ..signing import _MAX_TIMESTAMP, Unsigned, b64decode, b64encode
from .base import CookieCodec
from .cookie import inflate

__all__ = ["VERSION", "EncryptedCodec", "derive_key"]

#: The first byte of every encrypted value, also authenticated as associated data.
VERSION = b"\x01"

_SALT = b"wsgisession.aes-256-gcm"
_NONCE = 12
_TAG = 16
_HEADER = 1 + 8  # flags, timestamp
_RAW, _ZLIB = 0, 1


def derive_key(secret_key: bytes, purpose: str) -> bytes:
    """The AES-256 key for *purpose* under *secret_key* (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode("utf-8"))
    return hkdf.derive(secret_key)


class EncryptedCodec(CookieCodec):
    """Encrypts with the first key; decrypts with any (later keys report ``stale_key``).

    :param keys: The current secret key first, then the fallback keys.
    :param purpose: Bound into the key and the associated data.
    :param compress_min_size: Compress payloads at least this long when that makes
        them shorter; ``None`` never compresses (the default for encrypted cookies,
        because compressed length leaks content: see SECURITY.md).
    """

    def __init__(self, keys: Iterable[bytes], purpose: str, compress_min_size: int | None) -> None:
        self._aeads = [AESGCM(derive_key(key, purpose)) for key in keys]
        self._aad = VERSION + purpose.encode("utf-8")
        self._compress_min_size = compress_min_size

    def encode(self, payload: bytes) -> str:
        flags = _RAW
        limit = self._compress_min_size
        if limit is not None and len(payload) >= limit:
            compressed = zlib.compress(payload)
            if len(compressed) < len(payload):
                flags, payload = _ZLIB, compressed
        plaintext = bytes((flags,)) + int(time.time()).to_bytes(8, "big") + payload
        nonce = os.urandom(_NONCE)
        sealed = self._aeads[0].encrypt(nonce, plaintext, self._aad)
        return b64encode(VERSION + nonce + sealed).decode("ascii")

    def decode(self, value: str) -> Unsigned:
        raw = value.encode("ascii")  # UnicodeEncodeError is a ValueError
        blob = b64decode(raw)
        # base64 is malleable (padding, spare low bits): accept only the encoding we
        # produce, so one session has exactly one valid cookie string.
        if b64encode(blob) != raw:
            raise ValueError("not canonical base64")
        if len(blob) < 1 + _NONCE + _TAG + _HEADER or blob[:1] != VERSION:
            raise ValueError("not an encrypted session (unknown version or too short)")
        nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        plaintext, stale = self._decrypt(nonce, sealed)
        flags = plaintext[0]
        timestamp = int.from_bytes(plaintext[1:_HEADER], "big")
        if not 0 < timestamp < _MAX_TIMESTAMP:
            raise ValueError("timestamp out of range")
        if flags == _RAW:
            payload = plaintext[_HEADER:]
        elif flags == _ZLIB:
            payload = inflate(plaintext[_HEADER:])
        else:
            raise ValueError(f"unknown flags {flags}")
        return Unsigned(payload, timestamp, stale)

    def _decrypt(self, nonce: bytes, sealed: bytes) -> tuple[bytes, bool]:
        for index, aead in enumerate(self._aeads):
            try:
                return aead.decrypt(nonce, sealed, self._aad), index > 0
            except InvalidTag:
                continue
        raise BadSignature("does not decrypt: tampered, another key or another cookie")
