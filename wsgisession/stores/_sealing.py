"""What the stores that can encrypt at rest share: the option, ``bind`` and sealing in place.

``SQLiteStore``, ``RedisStore`` and ``PostgresStore`` take ``encrypt=True``; the
cryptography lives in :mod:`._sealed`, imported only then. ``LRUStore`` does not:
its sessions live in the process's memory, which is not at rest (no file, snapshot
or backup holds them), and the key would sit in the same memory.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from .._options import check_bool
from ..errors import ConfigurationError
from .base import ServerSessionStore

if TYPE_CHECKING:
    from ._sealed import Replacement, SealedStore, SealReport

__all__ = ["SealableStore"]


class SealableStore(ServerSessionStore):
    """A server store that can keep each value sealed (``encrypt=True``).

    A subclass sets :attr:`seal_purpose`, calls :meth:`_init_encrypt` from its
    constructor and implements :meth:`_record_keys` and :meth:`_replace_fields`.
    """

    #: Bound into the encryption keys: a value sealed by one kind of store never
    #: opens in another. Not its location, so a renamed table keeps its sessions.
    seal_purpose: ClassVar[str]

    #: Whether the middleware's view of this store seals every value it writes.
    encrypt: bool = False

    def _init_encrypt(self, encrypt: bool) -> None:
        self.encrypt = bool(check_bool("encrypt", encrypt))
        if self.encrypt:
            # Fails now, not on the first request.
            _sealed_store(f"{type(self).__name__}(encrypt=True)")

    def bind(self, keys: Sequence[bytes]) -> ServerSessionStore:
        """With ``encrypt=True``, a view of this store that seals every value.

        Keys derived from *keys* (the current one first) and the store's kind seal
        each value; the fallback keys open, never seal. Otherwise the store itself.
        """
        if not self.encrypt:
            return self
        sealed = _sealed_store(f"{type(self).__name__}(encrypt=True)")
        return sealed(self, keys, self.seal_purpose, self._replace_fields, self._sealed_name)

    def encrypt_records(self, keys: Sequence[bytes]) -> SealReport:
        """Seal every stored session in place, under the first of *keys*.

        What ``wsgisession migrate --encrypt`` runs, while the app keeps serving:
        clear values (from before ``encrypt=True``) and values sealed under a
        fallback key are sealed again under the current key, each one only if it
        still holds what was read, so a request's write meanwhile is kept. Records
        that do not open with *keys* are left as they are and counted. A store with
        ``encrypt=True`` does the same for each record it loads.

        :param keys: The app's current secret key first, then its fallback keys.
        :returns: How many records were read, sealed and refused.
        :raises ConfigurationError: the cryptography package is missing.
        :raises StoreUnavailable: the store cannot be reached.
        """
        sealed = _sealed_store(f"{type(self).__name__}.encrypt_records()")
        return sealed(
            self, keys, self.seal_purpose, self._replace_fields, self._sealed_name
        ).seal_all(self._record_keys())

    @abstractmethod
    def _record_keys(self) -> Iterator[str]:
        """The keys of the live session records (not the device index's), in batches."""

    def _sealed_name(self, key: str) -> str:
        """The name the sealed values of *key*'s record are bound to: *key* itself.

        A store whose :meth:`_record_keys` cannot give back the keys it was called
        with (RedisStore keeps a shorter name) binds that name instead.
        """
        return key

    @abstractmethod
    def _replace_fields(self, key: str, replacements: Sequence[Replacement]) -> None:
        """Apply *replacements* to the record under *key*, atomically.

        Each stored field that still holds the value the load found is replaced by
        its new field (or only deleted); the others are left alone. The record's
        expiry does not change, and a record that is gone is not brought back.
        """


def _sealed_store(what: str) -> type[SealedStore]:
    """The sealing view's class; imported on use, as cryptography is an extra."""
    try:
        from ._sealed import SealedStore
    except ImportError as exc:
        raise ConfigurationError(
            f'{what} needs the cryptography package: pip install "sessionlayer[crypto]"'
        ) from exc
    return SealedStore
