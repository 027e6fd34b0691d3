"""CookieStore: the whole session, serialized and signed, in the cookie.

The default store. Nothing is kept on the server, so it needs no setup and works
across any number of processes and machines. Its limits come from the cookie:

- about 4 KB in all: a session that would not fit raises
  :class:`~wsgisession.errors.SessionTooLarge` instead of sending a cookie the
  browser would silently drop;
- the client can *read* the data (it is signed, not encrypted) unless you pass
  ``encrypt=True``;
- a session cannot be revoked before it expires: a copied cookie stays valid until
  its idle timeout. Use a server-side store when logout must be final.
"""

from __future__ import annotations

import zlib

from ..errors import ConfigurationError
from ..signing import Keyring, PurposeSigner, Unsigned, b64decode, b64encode
from .base import CookieCodec, SessionStore

__all__ = ["CookieStore"]

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


class CookieStore(SessionStore):
    """Keep the whole session in a signed (or encrypted) cookie (the default store).

    The cookie value is the session as compact tagged JSON, zlib-compressed when
    that makes it shorter, URL-safe base64, then signed with HMAC-SHA256
    (itsdangerous's ``TimestampSigner`` format). The timestamp is the idle clock;
    the creation time, for ``absolute_max_age``, is inside the signed payload.

    With ``encrypt=True`` the value is sealed with AES-256-GCM instead, under a key
    derived from the secret key for this cookie alone: the client can neither read
    nor change it. Fallback keys decrypt, never encrypt.

    :param compress_min_size: Payloads shorter than this are never compressed:
        compressing a small session costs more time than the bytes it saves.
    :param encrypt: Encrypt the cookie (needs ``pip install "wsgisession[crypto]"``).
    :param compress: ``None`` (default): compress signed cookies, not encrypted ones,
        whose compressed length could reveal secrets to an attacker who can put
        their own text in the same session (CRIME/BREACH). ``True`` compresses both,
        ``False`` neither.
    :raises ConfigurationError: ``encrypt=True`` without the ``cryptography`` package.

    .. versionchanged:: 0.1
        Added *encrypt* and *compress*.
    """

    def __init__(
        self, *, compress_min_size: int = 512, encrypt: bool = False, compress: bool | None = None
    ) -> None:
        self.compress_min_size = compress_min_size
        self.encrypt = encrypt
        self.compress = compress
        if encrypt:
            try:
                from . import _encrypted  # noqa: F401 - fail now, not on the first request
            except ImportError as exc:
                raise ConfigurationError(
                    "CookieStore(encrypt=True) needs the cryptography package:"
                    ' pip install "wsgisession[crypto]"'
                ) from exc

    def bind(self, keyring: Keyring, purpose: str) -> CookieCodec:
        """A codec signing (or encrypting) with *keyring* under *purpose*."""
        compress = self.compress if self.compress is not None else not self.encrypt
        min_size = self.compress_min_size if compress else None
        if self.encrypt:
            from ._encrypted import EncryptedCodec

            return EncryptedCodec(keyring.keys, purpose, min_size)
        return _SignedCodec(keyring.signer(purpose), min_size)

    def __repr__(self) -> str:
        return (
            f"CookieStore(compress_min_size={self.compress_min_size},"
            f" encrypt={self.encrypt}, compress={self.compress})"
        )


class _SignedCodec(CookieCodec):
    def __init__(self, signer: PurposeSigner, compress_min_size: int | None) -> None:
        self._signer = signer
        self._compress_min_size = compress_min_size

    def encode(self, payload: bytes) -> str:
        body = b64encode(payload)
        limit = self._compress_min_size
        if limit is not None and len(payload) >= limit:
            compressed = b"." + b64encode(zlib.compress(payload))
            if len(compressed) < len(body):
                body = compressed
        return self._signer.sign(body).decode("ascii")

    def decode(self, value: str) -> Unsigned:
        unsigned = self._signer.unsign(value)
        body = unsigned.value
        payload = inflate(b64decode(body[1:])) if body[:1] == b"." else b64decode(body)
        return Unsigned(payload, unsigned.timestamp, unsigned.stale_key)
