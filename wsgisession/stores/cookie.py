"""CookieStore: the whole session, serialized and signed, in the cookie.

The default store. Nothing is kept on the server, so it needs no setup and works
across any number of processes and machines. Its limits come from the cookie:

- about 4 KB in all: a session that would not fit raises
  :class:`~wsgisession.errors.SessionTooLarge` instead of sending a cookie the
  browser would silently drop;
- the client can *read* the data (it is signed, not encrypted): keep secrets out;
- a session cannot be revoked before it expires: a copied cookie stays valid until
  its idle timeout. Use a server-side store when logout must be final.
"""

from __future__ import annotations

import zlib

from ..signing import Keyring, PurposeSigner, Unsigned, b64decode, b64encode
from .base import CookieCodec, SessionStore

__all__ = ["CookieStore"]

# A decompressed session larger than this is not one we wrote (cookies hold 4 KB and
# session JSON compresses maybe 10:1); refusing it bounds memory even if a key leaks.
_MAX_DECOMPRESSED = 1 << 20


class CookieStore(SessionStore):
    """Keep the whole session in a signed cookie (the default store).

    The cookie value is the session as compact tagged JSON, zlib-compressed when
    that makes it shorter, URL-safe base64, then signed with HMAC-SHA256
    (itsdangerous's ``TimestampSigner`` format). The timestamp is the idle clock;
    the creation time, for ``absolute_max_age``, is inside the signed payload.

    :param compress_min_size: Payloads shorter than this are never compressed:
        compressing a small session costs more time than the bytes it saves.
    """

    def __init__(self, *, compress_min_size: int = 512) -> None:
        self.compress_min_size = compress_min_size

    def bind(self, keyring: Keyring, purpose: str) -> CookieCodec:
        """A codec signing with *keyring* under *purpose*."""
        return _SignedCodec(keyring.signer(purpose), self.compress_min_size)

    def __repr__(self) -> str:
        return f"CookieStore(compress_min_size={self.compress_min_size})"


class _SignedCodec(CookieCodec):
    def __init__(self, signer: PurposeSigner, compress_min_size: int) -> None:
        self._signer = signer
        self._compress_min_size = compress_min_size

    def encode(self, payload: bytes) -> str:
        body = b64encode(payload)
        if len(payload) >= self._compress_min_size:
            compressed = b"." + b64encode(zlib.compress(payload))
            if len(compressed) < len(body):
                body = compressed
        return self._signer.sign(body).decode("ascii")

    def decode(self, value: str) -> Unsigned:
        unsigned = self._signer.unsign(value)
        body = unsigned.value
        if body[:1] == b".":
            inflater = zlib.decompressobj()
            try:
                payload = inflater.decompress(b64decode(body[1:]), _MAX_DECOMPRESSED)
            except zlib.error as exc:
                raise ValueError("the compressed session is corrupt") from exc
            if inflater.unconsumed_tail:
                raise ValueError("the compressed session is too large")
        else:
            payload = b64decode(body)
        return Unsigned(payload, unsigned.timestamp, unsigned.stale_key)
