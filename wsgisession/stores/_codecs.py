"""How a client-side session becomes a cookie value: signing, compression.

:class:`SignedCodec` is :class:`~wsgisession.CookieStore`'s default codec;
``_encrypted.EncryptedCodec`` (AES-256-GCM) shares :func:`inflate` with it.
"""

from __future__ import annotations

import time
import zlib

from .._memo import Memo
from ..signing import PurposeSigner, Unsigned, b64decode, b64encode
from .base import CookieCodec

__all__ = ["SignedCodec", "inflate"]

# A decompressed session larger than this is not one we wrote (cookies hold 4 KB and
# session JSON compresses maybe 10:1); refusing it bounds memory even if a key leaks.
_MAX_DECOMPRESSED = 1 << 20


def inflate(data: bytes) -> bytes:
    """Decompress a zlib-compressed session, refusing anything over 1 MiB.

    :raises ValueError: corrupt or too large.
    """
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(data, _MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise ValueError("the compressed session is corrupt") from exc
    if inflater.unconsumed_tail:
        raise ValueError("the compressed session is too large")
    return payload


class SignedCodec(CookieCodec):
    """A session signed with HMAC-SHA256 (itsdangerous format), zlib-compressed when shorter."""

    plain_output = True
    remembers_issued = True

    def __init__(self, signer: PurposeSigner, compress_min_size: int | None) -> None:
        self._signer = signer
        self._compress_min_size = compress_min_size
        self._memo: Memo[Unsigned] = Memo()

    def encode(self, payload: bytes) -> str:
        return self.encode_at(payload, int(time.time()))

    def encode_at(self, payload: bytes, timestamp: int) -> str:
        body = b64encode(payload)
        limit = self._compress_min_size
        if limit is not None and len(payload) >= limit:
            compressed = b"." + b64encode(zlib.compress(payload))
            if len(compressed) < len(body):
                body = compressed
        # Not remembered here: the middleware remembers what it issued, with what
        # the value holds (ClientBackend._seen), and never asks to decode it.
        return self._signer.sign(body, timestamp).decode("ascii")

    def decode(self, value: str) -> Unsigned:
        return self._memo.answer(value, self._verify)

    def _verify(self, value: str) -> Unsigned:
        unsigned = self._signer.unsign(value)
        body = unsigned.value
        payload = inflate(b64decode(body[1:])) if body[:1] == b"." else b64decode(body)
        return Unsigned(payload, unsigned.timestamp, unsigned.stale_key)
