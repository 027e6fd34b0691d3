"""The two families of session stores: client-side and server-side.

- A :class:`ClientSessionStore` is *client-side*: the whole session, serialized and
  signed, travels in the cookie. Nothing is kept on the server, so it scales freely,
  but it holds about 4 KB and cannot be revoked before it expires.
- A :class:`ServerSessionStore` keeps a record per session on the server; the
  cookie carries only a signed, random id.

A server record is a mapping of *field* → ``bytes``: one field per session key,
holding that key's serialized value. The middleware owns ids, serialization,
signing and the per-key diff; a store only moves bytes. So a save writes just the
keys that changed, merged atomically into the record, and two concurrent requests
that change different keys both land. A custom store (memcached, DynamoDB …) is
four short methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..signing import Keyring, Unsigned

__all__ = ["ClientSessionStore", "CookieCodec", "IndexEntry", "ServerSessionStore", "SessionIndex"]


class CookieCodec(ABC):
    """Turns a serialized session into a cookie value and back, for one middleware.

    Made by :meth:`ClientSessionStore.bind` once per middleware, so keys are derived once.
    """

    #: ``True`` when :meth:`encode` returns only URL-safe base64 characters and
    #: dots, so the middleware can skip checking its output before ``Set-Cookie``.
    plain_output = False

    #: ``True`` when the codec implements :meth:`encode_at`: the middleware then
    #: knows what a value it issued holds and remembers it, so the request that
    #: sends it back needs no :meth:`decode` (the built-in codecs do). A codec may
    #: remember the values it verified; it need not remember those it encoded.
    remembers_issued = False

    @abstractmethod
    def encode(self, payload: bytes) -> str:
        """Sign (and possibly compress or encrypt) *payload*, stamped with the time now."""

    def encode_at(self, payload: bytes, timestamp: int) -> str:
        """:meth:`encode`, stamped with *timestamp* (Unix seconds) rather than now.

        Codecs that set :attr:`remembers_issued` implement it: the middleware then
        knows the timestamp of the cookie it issues without decoding it again.
        """
        raise NotImplementedError(f"{type(self).__name__} stamps the time itself: use encode()")

    @abstractmethod
    def decode(self, value: str) -> Unsigned:
        """Verify and unpack a cookie value made by :meth:`encode`.

        :raises itsdangerous.BadSignature: tampered, truncated, or signed with
            another key or for another purpose.
        :raises ValueError: the value is malformed in any other way.
        """


class ClientSessionStore(ABC):
    """Base class of client-side stores: the whole session is in the cookie."""

    @abstractmethod
    def bind(self, keyring: Keyring, purpose: str) -> CookieCodec:
        """Build the codec a middleware with *keyring* uses for its cookie.

        :param purpose: Unique to the middleware's cookie; sign (and authenticate)
            under it, so a value made for another purpose never decodes.
        """


class ServerSessionStore(ABC):
    """Base class of server-side stores: a record of field → bytes per session.

    *key* is the store key of a session: the middleware passes
    ``sha256(session id)`` in hex, and a store may prepend its own prefix. Keys
    therefore never contain anything from the client, and a dump of the store
    cannot be replayed as cookies.

    Methods raise :class:`~wsgisession.errors.StoreUnavailable` when the backing
    service cannot be reached, so the client gets a ``503`` and keeps its cookie.
    """

    #: ``True`` for stores whose data lives inside one process (``LRUStore``): the
    #: middleware warns once when a request says it is served by several processes.
    process_local: bool = False

    #: ``True`` for stores whose :meth:`ping` is cheap and local (a file, no network):
    #: :class:`~wsgisession.SessionMiddleware` pings them when it is created unless
    #: given ``check_store=False``.
    ping_at_start: bool = False

    @abstractmethod
    def load(self, key: str) -> dict[str, bytes] | None:
        """The record stored under *key*, or ``None`` if it is absent or expired."""

    @abstractmethod
    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Merge *changed* into the record and drop the *removed* fields, atomically.

        Fields not named are left as they are, so concurrent saves that touch
        different fields both land. The record's time to live becomes *ttl* seconds.
        A record left with no fields is deleted.

        :param create: ``True`` to create the record if needed. ``False`` writes only
            if the record still exists, so a request that started before a logout
            cannot bring the session back.
        :returns: ``False`` when ``create=False`` and the record was gone (nothing
            written), else ``True``.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the record (no error if it is absent)."""

    @abstractmethod
    def touch(self, key: str, ttl: int) -> None:
        """Reset the record's time to live to *ttl* seconds, if the record exists."""

    def bind(self, keys: Sequence[bytes]) -> ServerSessionStore:
        """The store a middleware with the secret *keys* calls: this one, by default.

        Called once, when the middleware is created. A store that encrypts what it
        keeps (``SQLiteStore``, ``RedisStore``, ``PostgresStore`` with
        ``encrypt=True``) returns a view of itself that seals each value under keys
        derived from *keys*; every other store needs no keys and returns itself, so
        its requests cost nothing more.

        :param keys: The current secret key first, then the fallback keys.
        """
        return self

    def close(self) -> None:  # noqa: B027 - optional hook with a do-nothing default
        """Release connections or files. Optional."""

    def ping(self) -> None:  # noqa: B027 - optional hook with a do-nothing default
        """Check now that the store can be reached and written to.

        What ``SessionMiddleware(..., check_store=True)`` and ``wsgisession check``
        call at start-up, so a store that cannot work fails there rather than at the
        first request. Whatever it opens it closes again: a process that forks after
        it (gunicorn ``--preload``) hands no connection to its workers.

        The default does nothing: a custom store may override it.

        :raises ~wsgisession.errors.StoreUnavailable: with the message a request
            would log.
        """


class IndexEntry(NamedTuple):
    """One session in a user's index (see :class:`SessionIndex`)."""

    #: The device handle: random, opaque, stable for the session's life.
    handle: str
    #: The session's store key (as given to :meth:`ServerSessionStore.save`).
    key: str
    #: What the index keeps about the device (serialized by the caller).
    info: bytes


class SessionIndex(ABC):
    """Optional mixin for a server store: a per-user index of sessions, and stamps.

    A store that also inherits this class supports device listing and revocation
    (:mod:`wsgisession.access.devices`): :class:`~wsgisession.LRUStore`,
    :class:`~wsgisession.SQLiteStore`, :class:`~wsgisession.RedisStore` and
    :class:`~wsgisession.stores.postgres.PostgresStore` do. A
    custom store that implements only the four methods of
    :class:`ServerSessionStore` still works; enabling a feature that needs the index
    on it fails at start-up with a :class:`~wsgisession.errors.ConfigurationError`.

    *user* is an opaque string made by the caller from the user id; *handle* is a
    random token; *key* a store key. Revocation stays final under concurrency
    because moving an entry is a compare-and-set (:meth:`index_put` with *expect*)
    and :meth:`index_revoke` deletes the record before (or atomically with) the
    entry: a request that moves or refreshes a session after it was revoked finds
    its entry gone and ends the session.
    """

    @abstractmethod
    def index_put(
        self, user: str, handle: str, key: str, info: bytes, ttl: int, *, expect: str | None
    ) -> bool:
        """Point *handle* at *key* with *info*, if it currently points at *expect*.

        :param expect: The key the entry must hold now; ``None``: the entry must not
            exist (a new login).
        :param ttl: The entry may be forgotten after this many seconds unrefreshed.
        :returns: ``False`` (nothing written) when the entry did not match *expect*.
        """

    @abstractmethod
    def index_list(self, user: str) -> list[IndexEntry]:
        """The entries of *user* whose session record is still live; drops the others."""

    @abstractmethod
    def index_revoke(self, user: str, handle: str) -> bool:
        """Delete the session record *handle* points at, then the entry.

        The record must be gone before the entry is (or both at once), and an entry
        moved meanwhile by :meth:`index_put` must have its new record deleted too.

        :returns: Whether *user* had an entry *handle*.
        """

    @abstractmethod
    def index_forget(self, user: str, handle: str, key: str) -> None:
        """Drop the entry *handle* of *user* if it still points at *key* (a logout)."""

    def index_admit(
        self,
        user: str,
        handle: str,
        key: str,
        info: bytes,
        ttl: int,
        *,
        limit: int,
        evict: Collection[str] = (),
    ) -> list[IndexEntry] | None:
        """Add the entry of a new login, *handle* → *key*, if *user* has room for it.

        For a cap on sessions per user (``track_devices(max_per_user=...)``). One
        atomic step per user, so two logins at the cap never both get in: the
        entries *evict* (chosen by the caller from :meth:`index_list`) are removed
        and their records deleted, and the new entry is added, when fewer than
        *limit* entries of *user* with a live record are left besides it; otherwise
        nothing changes. Optional: the stores of this package implement it; a store
        without it cannot cap sessions (``ConfigurationError`` at start-up).

        :param limit: The most entries *user* may have, the new one included.
        :param evict: Handles to end to make room; those already gone are ignored.
        :returns: The entries removed (as they were; their records are deleted),
            ``[]`` when *handle* already points at *key*, ``None`` when nothing was
            written: no room, or *handle* exists.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement SessionIndex.index_admit,"
            " which a cap on sessions per user needs"
        )

    @abstractmethod
    def get_not_before(self, user: str) -> float | None:
        """The "not before" stamp of *user* (Unix time), or ``None``."""

    @abstractmethod
    def set_not_before(self, user: str, when: float, ttl: int) -> None:
        """Set the "not before" stamp of *user* to *when*, kept *ttl* seconds."""
