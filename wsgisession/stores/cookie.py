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

from .._options import check_bool, count
from ..errors import ConfigurationError
from ..signing import Keyring
from ._codecs import SignedCodec
from .base import ClientSessionStore, CookieCodec

__all__ = ["CookieStore"]


class CookieStore(ClientSessionStore):
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
    :param encrypt: Encrypt the cookie (needs ``pip install "sessionlayer[crypto]"``).
    :param compress: ``None`` (default): compress signed cookies, not encrypted ones,
        whose compressed length could reveal secrets to an attacker who can put
        their own text in the same session (CRIME/BREACH). ``True`` compresses both,
        ``False`` neither.
    :raises ConfigurationError: ``encrypt=True`` without the ``cryptography`` package.
    """

    def __init__(
        self, *, compress_min_size: int = 512, encrypt: bool = False, compress: bool | None = None
    ) -> None:
        self.compress_min_size = count("compress_min_size", compress_min_size, minimum=0)
        self.encrypt = check_bool("encrypt", encrypt)
        self.compress = check_bool("compress", compress, optional=True)
        if encrypt:
            try:
                from . import _encrypted  # noqa: F401 - fail now, not on the first request
            except ImportError as exc:
                raise ConfigurationError(
                    "CookieStore(encrypt=True) needs the cryptography package:"
                    ' pip install "sessionlayer[crypto]"'
                ) from exc

    def bind(self, keyring: Keyring, purpose: str) -> CookieCodec:
        """A codec signing (or encrypting) with *keyring* under *purpose*."""
        compress = self.compress if self.compress is not None else not self.encrypt
        min_size = self.compress_min_size if compress else None
        if self.encrypt:
            from ._encrypted import EncryptedCodec

            return EncryptedCodec(keyring.keys, purpose, min_size)
        return SignedCodec(keyring.signer(purpose), min_size)

    def __repr__(self) -> str:
        return (
            f"CookieStore(compress_min_size={self.compress_min_size},"
            f" encrypt={self.encrypt}, compress={self.compress})"
        )
