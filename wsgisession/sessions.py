"""The session a view sees: a lazy, change-tracking mapping.

:class:`Session` knows nothing of cookies or stores. The middleware gives it a
*backend* that loads the data on first access and later decides what to save. The
session records just enough for that decision to be cheap and exact:

- which keys were set or deleted through the mapping API;
- which keys handed out a *mutable* value (a list, a dict …) that the caller may
  have changed in place. Those are compared by content at save time, so
  ``session["cart"].append(item)`` is saved with no ``modified = True`` flag, while
  reading ``session["user_id"]`` costs nothing at save time.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from .cookies import MAX_COOKIE_AGE

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["ID_BOUND_PREFIX", "ServerSessionState", "Session", "SessionBackend", "SessionState"]

#: Session keys under this prefix belong to one session *id*, not to its data: every
#: id change (:meth:`Session.regenerate`, :meth:`Session.clear`) drops them. The CSRF
#: secret lives here, so a token issued before a login (whoever performs the login:
#: wsgisession, Django's ``cycle_key()``, Flask-Login) stops working after it.
ID_BOUND_PREFIX = "_wsgisession.id."

# Values of these types cannot be changed in place, so handing one out cannot
# change the session behind our back.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, datetime, date, UUID, Decimal, frozenset}
)


class SessionState:
    """What the middleware records about one request's session, set on first access.

    Read by integrations (Django's ``session_key``, expiry getters); written only by
    the middleware.
    """

    __slots__ = (
        "created",
        "had_cookie",
        "header",
        "issued",
        "lifetime",
        "saved_lifetime",
        "stale",
        "writes",
    )

    def __init__(self, now: int) -> None:
        #: When the session was created (Unix seconds), for ``absolute_max_age``.
        self.created = now
        #: When its cookie was last issued: the idle clock. ``None`` for a new session.
        self.issued: int | None = None
        #: The session's own lifetime: ``None`` (the middleware's ``max_age``), ``0``
        #: (ends with the browser) or an idle timeout in seconds.
        self.lifetime: int | None = None
        #: :attr:`lifetime` as the client's cookie has it.
        self.saved_lifetime: int | None = None
        #: ``True`` when the cookie must be re-issued on save: it verified under a
        #: fallback key, or :meth:`Session.reissue` was called.
        self.stale = False
        #: ``True`` when the client holds a valid session cookie of ours.
        self.had_cookie = False
        #: The ``Set-Cookie`` value decided at header time, if any.
        self.header: str | None = None
        #: The session's write count when it was last saved.
        self.writes = 0


class ServerSessionState(SessionState):
    """:class:`SessionState` of a session kept in a server-side store."""

    __slots__ = ("key", "raw", "sid")

    def __init__(self, now: int) -> None:
        super().__init__(now)
        #: The session id (secret: it is what the cookie proves), ``None`` until saved.
        self.sid: str | None = None
        #: The store key (SHA-256 of the id, not secret), ``None`` until saved.
        self.key: str | None = None
        #: The stored fields as loaded or last saved.
        self.raw: dict[str, bytes] = {}


class SessionBackend(Protocol):
    """What a :class:`Session` asks of the middleware that created it."""

    #: The middleware's idle timeout (``max_age``), for sessions without their own.
    default_max_age: int | None

    def load_session(self, session: Session) -> dict[str, Any]:
        """Load the data (first access); may set ``session.new`` and ``session.state``."""

    def session_changed(self, session: Session) -> bool:
        """Whether the data differs from what was loaded (or last saved)."""

    def invalidate_session(self, session: Session) -> None:
        """Delete the stored session now (the data is already cleared)."""


class Session(MutableMapping[str, Any]):
    """The data of one client's session, as a mutable mapping of ``str`` keys.

    Values may be anything :mod:`wsgisession.serialization` can store: JSON types
    plus ``tuple``, ``set``, ``bytes``, ``datetime``, ``date``, ``UUID`` and
    ``Decimal``. The data is loaded on first access, so a request that never touches
    the session costs no cookie parsing and no store call.

    A session outside any middleware (``Session()``) is a plain in-memory mapping,
    handy in tests.

    :param backend: Loads and saves the data; ``None`` for a detached session.
    :param environ: The WSGI environ of the request the session belongs to.
    """

    __slots__ = (
        "_backend",
        "_data",
        "_dirty",
        "_fresh",
        "_new",
        "_regenerate",
        "_rotate",
        "_writes",
        "environ",
        "state",
    )

    #: What the middleware records about this session (ids, timestamps, lifetime),
    #: set when the session is first used.
    state: SessionState | None

    def __init__(
        self,
        backend: SessionBackend | None = None,
        environ: WSGIEnvironment | None = None,
        *,
        data: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        self.environ = environ
        self._data: dict[str, Any] | None = None
        if backend is None or data is not None:
            self._track()
            self._data = dict(data or {})
            if backend is None:
                self.state = SessionState(0)

    def _track(self) -> None:
        # Set on first access rather than in __init__: a request that never touches
        # its session should pay for as little as possible.
        self.state = None
        self._dirty: set[str] = set()
        self._fresh = False
        self._new = True
        self._regenerate = False
        self._rotate = False
        self._writes = 0

    def _load(self) -> dict[str, Any]:
        self._track()
        data = {} if self._backend is None else self._backend.load_session(self)
        self._data = data
        return data

    # -- the mapping ---------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        data = self._data if self._data is not None else self._load()
        value = data[key]
        if type(value) not in _IMMUTABLE:
            self._dirty.add(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        data = self._data if self._data is not None else self._load()
        data[key] = value
        self._dirty.add(key)
        self._writes += 1

    def __delitem__(self, key: str) -> None:
        data = self._data if self._data is not None else self._load()
        del data[key]
        self._dirty.add(key)
        self._writes += 1

    def __iter__(self) -> Iterator[str]:
        data = self._data if self._data is not None else self._load()
        return iter(data)

    def __len__(self) -> int:
        data = self._data if self._data is not None else self._load()
        return len(data)

    def __contains__(self, key: object) -> bool:
        data = self._data if self._data is not None else self._load()
        return key in data

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if *key* is set, else *default*."""
        data = self._data if self._data is not None else self._load()
        if key in data:
            return self[key]
        return default

    def clear(self) -> None:
        """Remove every key and forget the session's identity.

        Data set afterwards starts a new session under a new id (a new cookie for
        the cookie store), and the old stored session is deleted. So "call
        ``session.clear()`` at login" is a real defence against session fixation. A
        session left empty deletes its cookie.
        """
        data = self._data if self._data is not None else self._load()
        data.clear()
        self._dirty.clear()
        if self.state is not None:
            self.state.lifetime = None
        self._fresh = True
        self._regenerate = self._rotate = False
        self._writes += 1

    def __repr__(self) -> str:
        if self._data is None:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {self._data!r}>"

    # -- state ---------------------------------------------------------------

    @property
    def new(self) -> bool:
        """``True`` when the client had no valid session (loads the session)."""
        if self._data is None:
            self._load()
        return self._new

    @new.setter
    def new(self, value: bool) -> None:
        self._new = value

    @property
    def write_count(self) -> int:
        """How many times this request wrote the session (set, delete, clear …).

        For integrations whose framework counts any write as a change, even of a
        value to itself (Flask); :attr:`modified` compares content.
        """
        return self._writes if self._data is not None else 0

    @property
    def accessed(self) -> bool:
        """``True`` once anything read or wrote the session during this request."""
        return self._data is not None

    @property
    def modified(self) -> bool:
        """``True`` when the data differs from what the request started with.

        Compared by content, so a change made in place to a nested value counts and
        setting a key to the value it already had does not.
        """
        if self._data is None:
            return False
        if self._fresh or self._regenerate:
            return True
        state = self.state
        if state is not None and state.lifetime != state.saved_lifetime:
            return True
        if self._backend is None:
            return bool(self._dirty)
        return self._backend.session_changed(self)

    # -- lifecycle -----------------------------------------------------------

    def regenerate(self, *, privilege_change: bool = True) -> None:
        """Keep the data but move it to a new session id (a fresh cookie).

        Call it when privileges change, at login above all: an id an attacker
        planted or observed before then becomes worthless. The old stored session
        is deleted when the response is sent (and the new one is not stored if a
        logout deleted the old one meanwhile).

        :param privilege_change: ``False`` for a routine rotation (a new id every
            hour, say): the keys bound to the id (the CSRF secret) are kept, and
            with the middleware's ``rotation_grace`` the old id keeps leading to the
            new session for that many seconds, so requests already sent with the
            old cookie still work. Never pass ``False`` at a login or logout.

        .. versionchanged:: 0.2
            *privilege_change*.
        """
        data = self._data if self._data is not None else self._load()
        if privilege_change:
            for key in [key for key in data if key.startswith(ID_BOUND_PREFIX)]:
                del data[key]
                self._dirty.add(key)
            self._rotate = False
        elif not (self._regenerate or self._fresh):
            # Only a rotation with no privilege change in the same request may
            # leave the old id forwarding: one real change cancels it.
            self._rotate = True
        self._regenerate = True
        self._writes += 1

    def invalidate(self) -> None:
        """End the session now: clear it, delete it from the store and the cookie.

        Unlike :meth:`clear`, the stored session is deleted immediately rather than
        when the response is sent, so requests already in flight cannot use it.
        Data set afterwards (a "you have been logged out" flash message, say) goes
        to a new session.
        """
        self.clear()
        if self._backend is not None:
            self._backend.invalidate_session(self)

    # -- lifetime ------------------------------------------------------------

    @property
    def max_age(self) -> int | None:
        """This session's idle timeout in seconds; ``None``: its cookie ends with the browser.

        The middleware's ``max_age`` unless set for this session. Setting it gives
        this session its own lifetime, kept with the session (in its signed cookie)
        for later requests, and re-issues the cookie: ``session.max_age = None`` for
        a browser-session cookie ("remember me" unticked), ``session.max_age =
        30 * 86400`` for a long one. ``absolute_max_age`` still applies, and a
        browser-session cookie is still refused by the server after 14 days unused
        (or ``absolute_max_age``). :meth:`reset_max_age` goes back to the default.

        A lifetime over :data:`~wsgisession.cookies.MAX_COOKIE_AGE` (400 days, the
        longest browsers keep a cookie) is clamped to it: ``session.max_age =
        10**12`` reads back as ``34560000``.

        :raises ValueError: setting anything but ``None`` or a positive ``int``.
        """
        if self._data is None:
            self._load()
        lifetime = self.state.lifetime if self.state is not None else None
        if lifetime is None:
            return self._backend.default_max_age if self._backend is not None else None
        return lifetime or None

    @max_age.setter
    def max_age(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ValueError(f"max_age must be a positive number of seconds or None, not {value!r}")
        self._set_lifetime(0 if value is None else min(value, MAX_COOKIE_AGE))

    def reissue(self) -> None:
        """Send the cookie again when the session is saved, even if nothing changed.

        The idle clock restarts and a server-side record has its TTL renewed; a
        session that stays empty still sends nothing. For frameworks whose rule is
        "a session written to is re-sent" (Flask's ``session.modified``, Django's
        ``SESSION_SAVE_EVERY_REQUEST``).
        """
        if self._data is None:
            self._load()
        if self.state is not None:
            self.state.stale = True

    def reset_max_age(self) -> None:
        """Go back to the middleware's ``max_age`` (undo setting :attr:`max_age`)."""
        self._set_lifetime(None)

    @property
    def has_own_max_age(self) -> bool:
        """Whether :attr:`max_age` was set for this session rather than inherited."""
        if self._data is None:
            self._load()
        return self.state is not None and self.state.lifetime is not None

    def _set_lifetime(self, lifetime: int | None) -> None:
        if self._data is None:
            self._load()
        if self.state is not None and self.state.lifetime != lifetime:
            self.state.lifetime = lifetime
            self._writes += 1
