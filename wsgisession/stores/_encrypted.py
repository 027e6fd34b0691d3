"""AES-256-GCM cookie values: the client can neither read nor change the session.

Used by ``CookieStore(encrypt=True)``; needs the ``cryptography`` package (the
``crypto`` extra). The cookie value is URL-safe base64 (no padding, canonical
encoding only) of one of two formats. Format 2 is written; format 1 is still read,
so cookies issued before the upgrade stay valid until they expire.

Format 2, a key per cookie (no limit on how many cookies one key may seal)::

    version (1 byte: 0x02) | salt (16 random bytes) | ciphertext | GCM tag (16 bytes)

    master key      = HKDF-SHA256(secret key, salt=b"wsgisession.aes-256-gcm-v2",
                      info=purpose), 32 bytes, one per secret key
    cookie key      = HMAC-SHA256(master key, salt), 32 bytes, one per cookie
    nonce           = 12 zero bytes (each cookie key seals exactly one value)

Format 1, one key per purpose and a random nonce per cookie (safe for about 2**32
cookies per key)::

    version (1 byte: 0x01) | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)

    key             = HKDF-SHA256(secret key, salt=b"wsgisession.aes-256-gcm",
                      info=purpose), 32 bytes, one per secret key

Both::

    plaintext       = flags (1 byte: 0 raw, 1 zlib) | timestamp (8 bytes, big-endian
                      Unix seconds: the idle clock) | the serialized session
    associated data = version | purpose (UTF-8; it contains the cookie name)

The timestamp is inside the plaintext, so it is authenticated and hidden. A value
made for another purpose fails twice over: another key and other associated data.
The version byte is authenticated too (and each version has its own keys), and a
signed cookie (which always contains a ``.``) is not base64, so no format is ever
mistaken for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import zlib
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature

from .._memo import Memo
from ..signing import _MAX_TIMESTAMP, Unsigned, b64decode, b64encode
from ._codecs import inflate
from .base import CookieCodec

__all__ = ["V1", "V2", "VERSION", "EncryptedCodec", "derive_key"]

#: The first byte of a value, also authenticated as associated data.
V1, V2 = b"\x01", b"\x02"
#: The version :meth:`EncryptedCodec.encode` writes.
VERSION = V2

_SALTS = {V1: b"wsgisession.aes-256-gcm", V2: b"wsgisession.aes-256-gcm-v2"}
_NONCE = 12  # format 1: the random nonce
_COOKIE_SALT = 16  # format 2: the random salt of the cookie key
_ZERO_NONCE = bytes(_NONCE)
_TAG = 16
_HEADER = 1 + 8  # flags, timestamp
_RAW, _ZLIB = 0, 1


def derive_key(secret_key: bytes, purpose: str, version: bytes = VERSION) -> bytes:
    """The key of format *version* for *purpose* under *secret_key* (HKDF-SHA256).

    Format 1 encrypts with it; format 2 derives each cookie's key from it.
    """
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_SALTS[version], info=purpose.encode("utf-8")
    )
    return hkdf.derive(secret_key)


def cookie_key(master_key: bytes, salt: bytes) -> bytes:
    """Format 2: the AES-256 key of the one cookie whose random salt is *salt*."""
    return hmac.digest(master_key, salt, hashlib.sha256)


class EncryptedCodec(CookieCodec):
    """Encrypts with the first key; decrypts with any (later keys report ``stale_key``).

    :param keys: The current secret key first, then the fallback keys.
    :param purpose: Bound into the keys and the associated data.
    :param compress_min_size: Compress payloads at least this long when that makes
        them shorter; ``None`` never compresses (the default for encrypted cookies,
        because compressed length leaks content: see SECURITY.md).
    """

    plain_output = True
    remembers_issued = True

    def __init__(self, keys: Iterable[bytes], purpose: str, compress_min_size: int | None) -> None:
        keys = list(keys)
        self._masters = [derive_key(key, purpose, V2) for key in keys]
        # Format 1 is only decrypted, never written: cookies issued before format 2.
        self._v1_aeads = [AESGCM(derive_key(key, purpose, V1)) for key in keys]
        purpose_bytes = purpose.encode("utf-8")
        self._aad = {V1: V1 + purpose_bytes, V2: V2 + purpose_bytes}
        self._compress_min_size = compress_min_size
        self._memo: Memo[Unsigned] = Memo()

    def encode(self, payload: bytes) -> str:
        return self.encode_at(payload, int(time.time()))

    def encode_at(self, payload: bytes, timestamp: int) -> str:
        flags, body = _RAW, payload
        limit = self._compress_min_size
        if limit is not None and len(payload) >= limit:
            compressed = zlib.compress(payload)
            if len(compressed) < len(payload):
                flags, body = _ZLIB, compressed
        plaintext = bytes((flags,)) + timestamp.to_bytes(8, "big") + body
        salt = os.urandom(_COOKIE_SALT)
        aead = AESGCM(cookie_key(self._masters[0], salt))
        sealed = aead.encrypt(_ZERO_NONCE, plaintext, self._aad[V2])
        # Not remembered here: the middleware remembers what it issued (see _codecs).
        return b64encode(V2 + salt + sealed).decode("ascii")

    def decode(self, value: str) -> Unsigned:
        return self._memo.answer(value, self._verify)

    def _verify(self, value: str) -> Unsigned:
        raw = value.encode("ascii")  # UnicodeEncodeError is a ValueError
        blob = b64decode(raw)
        # base64 is malleable (padding, spare low bits): accept only the encoding we
        # produce, so one session has exactly one valid cookie string.
        if b64encode(blob) != raw:
            raise ValueError("not canonical base64")
        version = blob[:1]
        if version == V2:
            start = 1 + _COOKIE_SALT
            aeads: Iterable[AESGCM] = (
                AESGCM(cookie_key(master, blob[1:start])) for master in self._masters
            )
            nonce = _ZERO_NONCE
        elif version == V1:
            start = 1 + _NONCE
            aeads = self._v1_aeads
            nonce = blob[1:start]
        else:
            raise ValueError("not an encrypted session (unknown version)")
        if len(blob) < start + _TAG + _HEADER:
            raise ValueError("not an encrypted session (too short)")
        plaintext, stale = _decrypt(aeads, nonce, blob[start:], self._aad[version])
        # A format 1 cookie is re-issued (as format 2) like one under a fallback key.
        stale = stale or version == V1
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


def _decrypt(
    aeads: Iterable[AESGCM], nonce: bytes, sealed: bytes, aad: bytes
) -> tuple[bytes, bool]:
    for index, aead in enumerate(aeads):
        try:
            return aead.decrypt(nonce, sealed, aad), index > 0
        except InvalidTag:
            continue
    raise BadSignature("does not decrypt: tampered, another key or another cookie")
