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
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias
from uuid import UUID

from .cookies import MAX_COOKIE_AGE
from .serialization import copy_known

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "ID_BOUND_PREFIX",
    "CookieWrite",
    "Loaded",
    "Pending",
    "SaveOutcome",
    "Saved",
    "Session",
    "SessionBackend",
    "SessionState",
]

#: Session keys under this prefix belong to one session *id*, not to its data: every
#: id change (:meth:`Session.regenerate`, :meth:`Session.clear`) drops them. The CSRF
#: secret lives here, so a token issued before a login (whoever performs the login:
#: wsgisession, Django's ``cycle_key()``, Flask-Login) stops working after it.
ID_BOUND_PREFIX = "_wsgisession.id."

_new_object = object.__new__

# Values of these types cannot be changed in place, so handing one out cannot
# change the session behind our back.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, datetime, date, UUID, Decimal, frozenset}
)


class SessionState:
    """What the client holds and the store has, as the backend last reported it.

    Made by a backend when it loads or saves a session and kept by the
    :class:`Session`, which alone stores it (:meth:`Session.commit`). Never changed
    once made: a backend returns a new one (``tests/test_layers.py`` fails on an
    assignment to a record's field anywhere else). Read by integrations (the Django
    expiry getters, device tracking) through :attr:`Session.record`.

    :param created: When the session was created (Unix seconds), for ``absolute_max_age``.
    :param issued: When its cookie was last issued: the idle clock (``None``: never).
    :param lifetime: The session's own lifetime as the client's cookie has it:
        ``None`` (the middleware's ``max_age``), ``0`` (ends with the browser) or seconds.
    :param had_cookie: Whether the client holds a valid session cookie of ours (or,
        for a session carried in the session header, a valid header value).
    :param stale: Whether that cookie verified under a fallback key: re-issue it.
    :param sid: A server store's session id (secret: what the cookie proves).
    :param key: A server store's key for it (SHA-256 of the id, not secret); ``None``
        for a cookie session or one not stored yet.
    :param raw: A server store's fields, as loaded or last saved.
    :param payload: A cookie session's payload, as the client's cookie (or the last
        one sent) has it.
    :param known: Whether ``serialization.dumps_known`` may rely on *payload*.
    """

    # A slots class, not a NamedTuple: its fields are read on every save, and a
    # slot is read several times faster than a tuple field (measured with
    # benchmarks/instructions.py).
    __slots__ = (
        "created",
        "had_cookie",
        "issued",
        "key",
        "known",
        "lifetime",
        "payload",
        "raw",
        "sid",
        "stale",
    )

    def __init__(
        self,
        created: int,
        issued: int | None = None,
        lifetime: int | None = None,
        had_cookie: bool = False,
        stale: bool = False,
        sid: str | None = None,
        key: str | None = None,
        raw: dict[str, bytes] | None = None,
        payload: bytes | None = None,
        known: bool = False,
    ) -> None:
        self.created = created
        self.issued = issued
        self.lifetime = lifetime
        self.had_cookie = had_cookie
        self.stale = stale
        self.sid = sid
        self.key = key
        self.raw: dict[str, bytes] = _NO_FIELDS if raw is None else raw
        self.payload = payload
        self.known = known


_NO_FIELDS: dict[str, bytes] = {}
_DETACHED = SessionState(0)

#: What a backend's load returns: the data; the record; whether the client had no
#: valid session; keys the load itself set in the data that must be saved with this
#: response (device tracking adopting a login made while it was off); whether the
#: data's mutable values are shared with other requests (a cookie decoded once and
#: remembered), in which case the session copies each on its first access.
Loaded: TypeAlias = "tuple[dict[str, Any], SessionState, bool, tuple[str, ...], bool]"

#: How a save ended: ``"saved"`` (written, or nothing needed writing); ``"gone"``
#: (the stored session was deleted meanwhile, by a logout in another request: its
#: changes were dropped rather than bring it back); ``"revoked"`` (device tracking
#: found it revoked: it was ended); ``"lost"`` (a change made after the headers
#: needed a new id or cookie: not saved).
SaveOutcome: TypeAlias = Literal["saved", "gone", "revoked", "lost"]

#: The session cookie a save decided to send: its value (``None``: delete the
#: cookie), its ``Max-Age`` (``None``: ends with the browser), and the ``Set-Cookie``
#: header made of them for a WSGI response. A framework that sets cookies itself
#: (Django's ``response.set_cookie``) takes the first two. For a session carried in
#: the session header (:attr:`Session.transport`), the third is that header's value:
#: the first, or ``""`` to end the session.
CookieWrite: TypeAlias = "tuple[str | None, int | None, str]"

#: What a backend's save returns: the new record (``None``: unchanged), the cookie
#: to send (``None``: none), and the outcome.
Saved: TypeAlias = "tuple[SessionState | None, CookieWrite | None, SaveOutcome]"


class Pending:
    """What a save starts from: a snapshot :meth:`Session.commit` fills for the backend.

    The backend reads it and never changes it (nor the objects it holds).
    """

    __slots__ = (
        "data",
        "dirty",
        "environ",
        "fresh",
        "lifetime",
        "record",
        "regenerate",
        "reissue",
        "rotate",
        "saved_writes",
        "shared",
        "writes",
    )

    #: The session's data (not a copy).
    data: dict[str, Any]
    #: Keys written, or that handed out a mutable value, since the last save.
    dirty: set[str]
    #: The write count now, and when the session was last saved.
    writes: int
    saved_writes: int
    #: :meth:`Session.clear` was called: a new identity.
    fresh: bool
    #: :meth:`Session.regenerate` was called: a new id, same data.
    regenerate: bool
    #: ... with ``privilege_change=False``: the old id may forward for a while.
    rotate: bool
    #: :meth:`Session.reissue` was called: send the cookie again.
    reissue: bool
    #: The session's own lifetime now (see :attr:`SessionState.lifetime`).
    lifetime: int | None
    #: What the backend last reported.
    record: SessionState
    #: The request's WSGI environ.
    environ: WSGIEnvironment
    #: Whether the values of *data* under keys outside *dirty* are shared with other
    #: requests and were never handed out (see ``Loaded``): they never change.
    shared: bool


class SessionBackend(Protocol):
    """What a :class:`Session` asks of the middleware that created it.

    A backend reads the session (:meth:`Session.pending`) and returns values; it
    never sets anything on it.
    """

    #: The middleware's idle timeout (``max_age``), for sessions without their own.
    default_max_age: int | None

    def load_session(self, session: Session) -> Loaded:
        """Load the data (first access) and say what the client holds."""

    def session_changed(self, pending: Pending) -> bool:
        """Whether the data differs from what was loaded (or last saved)."""

    def invalidate_session(self, record: SessionState) -> SessionState:
        """Delete the stored session now; the record of a session with none."""

    def transport(self, environ: WSGIEnvironment) -> Literal["cookie", "header"]:
        """How the session of the request *environ* travels."""

    def save(self, pending: Pending, now: int, late: bool) -> Saved:
        """Plan what *pending* needs written, write it, and say how it went.

        *late*: after the response headers, when no new id or cookie can be sent.
        """


class Session(MutableMapping[str, Any]):
    """The data of one client's session, as a mutable mapping of ``str`` keys.

    Values may be anything :mod:`wsgisession.serialization` can store: JSON types
    plus ``tuple``, ``set``, ``bytes``, ``datetime``, ``date``, ``UUID`` and
    ``Decimal``. The data is loaded on first access, so a request that never touches
    the session costs no cookie parsing and no store call.

    A session outside any middleware (``Session()``) is a plain in-memory mapping,
    handy in tests.

    The session is the only writer of its state: the data, which keys changed, the
    requests to clear, regenerate or re-issue, its own lifetime, and the record of
    what the client holds (:attr:`record`). Its backend loads and saves through
    :meth:`pending` and :meth:`mark_saved`.

    :param backend: Loads and saves the data; ``None`` for a detached session.
    :param environ: The WSGI environ of the request the session belongs to.
    """

    __slots__ = (
        "_backend",
        "_cookie",
        "_data",
        "_dirty",
        "_fresh",
        "_lifetime",
        "_new",
        "_outcome",
        "_record",
        "_regenerate",
        "_reissue",
        "_rotate",
        "_saved_writes",
        "_shared",
        "_writes",
        "environ",
        "has_unsaved_writes",
        "loaded",
    )

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
        #: Whether the session was loaded: something read or wrote it in this
        #: request. Set by the session alone (an attribute, not a property: the
        #: middleware reads it on every request).
        self.loaded = False
        #: Whether it was written to since it was loaded or last saved (by
        #: :meth:`commit`). Set by the session alone, as :attr:`loaded`.
        self.has_unsaved_writes = False
        if backend is None or data is not None:
            self._track(_DETACHED)
            self._new = True
            self._data = dict(data or {})
            self.loaded = True

    def _track(self, record: SessionState) -> None:
        # Set on first access rather than in __init__: a request that never touches
        # its session should pay for as little as possible.
        # has_unsaved_writes is False already: nothing writes before the load.
        self._record = record
        self._lifetime = record.lifetime
        self._dirty: set[str] = set()
        self._fresh = False
        self._regenerate = False
        self._rotate = False
        self._reissue = False
        self._writes = 0
        self._saved_writes = 0
        self._cookie: CookieWrite | None = None
        self._outcome: SaveOutcome | None = None
        self._shared = False

    def _load(self) -> dict[str, Any]:
        if self._backend is None:
            self._track(_DETACHED)
            self._new = True
            data: dict[str, Any] = {}
        else:
            # Nothing is set until the backend answers: a load that fails (a store
            # outage) leaves the session not loaded, and the next access tries again.
            data, record, new, adopted, shared = self._backend.load_session(self)
            self._track(record)
            self._new = new
            self._shared = shared
            if adopted:
                self._dirty.update(adopted)
                self._writes += 1
                self.has_unsaved_writes = True
                self._reissue = True
        self._data = data
        self.loaded = True
        return data

    # -- the mapping ---------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        data = self._data if self._data is not None else self._load()
        value = data[key]
        if type(value) not in _IMMUTABLE:
            if self._shared and key not in self._dirty:
                # A value of a remembered cookie, shared with other requests until
                # handed out: this request's own copy from now on. (A key outside
                # _dirty holding a mutable value was never handed out or written.)
                value = data[key] = copy_known(value)
            self._dirty.add(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        data = self._data if self._data is not None else self._load()
        data[key] = value
        self._dirty.add(key)
        self._writes += 1
        self.has_unsaved_writes = True

    def __delitem__(self, key: str) -> None:
        data = self._data if self._data is not None else self._load()
        del data[key]
        self._dirty.add(key)
        self._writes += 1
        self.has_unsaved_writes = True

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
        self._lifetime = None
        self._fresh = True
        self._regenerate = self._rotate = False
        self._writes += 1
        self.has_unsaved_writes = True

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
    def transport(self) -> Literal["cookie", "header"]:
        """How this request's session travels: ``"cookie"`` or ``"header"``.

        ``"header"`` when the middleware has a session header
        (``SessionMiddleware(header="X-Auth-Token")``) and the request sends it, or
        the middleware sets no cookie: a new value for the client then goes back in
        that header rather than in ``Set-Cookie``. Such a session is no ambient
        credential (a browser never sends the header by itself), so
        :class:`~wsgisession.CsrfMiddleware` asks no token of it. Reading it does
        not load the session.
        """
        if self._backend is None or self.environ is None:
            return "cookie"
        return self._backend.transport(self.environ)

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
        if self._fresh or self._regenerate or self._lifetime != self._record.lifetime:
            return True
        if self._backend is None:
            return bool(self._dirty)
        return self._backend.session_changed(self.pending())

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
        self.has_unsaved_writes = True

    def invalidate(self) -> None:
        """End the session now: clear it, delete it from the store and the cookie.

        Unlike :meth:`clear`, the stored session is deleted immediately rather than
        when the response is sent, so requests already in flight cannot use it.
        Data set afterwards (a "you have been logged out" flash message, say) goes
        to a new session.
        """
        self.clear()
        if self._backend is not None:
            self._record = self._backend.invalidate_session(self._record)

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
        lifetime = self._lifetime
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
        self._reissue = True

    def reset_max_age(self) -> None:
        """Go back to the middleware's ``max_age`` (undo setting :attr:`max_age`)."""
        self._set_lifetime(None)

    @property
    def has_own_max_age(self) -> bool:
        """Whether :attr:`max_age` was set for this session rather than inherited."""
        if self._data is None:
            self._load()
        return self._lifetime is not None

    def _set_lifetime(self, lifetime: int | None) -> None:
        if self._data is None:
            self._load()
        if self._lifetime != lifetime:
            self._lifetime = lifetime
            self._writes += 1
            self.has_unsaved_writes = True

    # -- for the backend and the integrations ------------------------------------

    @property
    def record(self) -> SessionState:
        """What the client holds and the store has, as last loaded or saved (loads it)."""
        if self._data is None:
            self._load()
        return self._record

    @property
    def may_have_changed_in_place(self) -> bool:
        """Whether a mutable value was handed out (or written) since the last save."""
        return self._data is not None and bool(self._dirty)

    @property
    def save_outcome(self) -> SaveOutcome | None:
        """How the last save in this request ended; ``None`` before one."""
        return self._outcome if self._data is not None else None

    def pending(self) -> Pending:
        """What a save would start from now (loads the session); for reading only."""
        if self._data is None:
            self._load()
        return self._snapshot()

    def _snapshot(self) -> Pending:
        # object.__new__ and slot stores: no __init__ frame on every save.
        pending = _new_object(Pending)
        pending.data = self._data  # type: ignore[assignment]  # loaded by the callers
        pending.dirty = self._dirty
        pending.writes = self._writes
        pending.saved_writes = self._saved_writes
        pending.fresh = self._fresh
        pending.regenerate = self._regenerate
        pending.rotate = self._rotate
        pending.reissue = self._reissue
        pending.lifetime = self._lifetime
        pending.record = self._record
        pending.environ = self.environ or {}
        pending.shared = self._shared
        return pending

    def request_finished(self) -> None:
        """The response is finished: a loaded session lets go of its environ.

        The environ holds the session and the session its environ, a reference
        cycle that only the garbage collector would free; its passes cost a request
        under gunicorn about a tenth of a session read
        (``benchmarks/gunicorn_profile.py``). A loaded session keeps its data for
        code that reads it after the response; an untouched one keeps its environ,
        so that such code can still load it from ``environ["wsgisession.session"]``.
        """
        if self.loaded:
            self.environ = None

    def commit(self, now: int, *, late: bool = False) -> CookieWrite | None:
        """Save through the backend and record how it went; the cookie to send.

        The backend plans from :meth:`pending` and acts (store calls, a new cookie)
        and returns the new record and the outcome, which the session records: a
        lost change (``"lost"``) keeps its requests pending; any other outcome
        clears the requests the save carried, and from then on only keys holding
        mutable values can change unseen.

        :param now: The time of the save (Unix seconds).
        :param late: After the response headers: no new id or cookie can be sent.
        :returns: The cookie this request must send (from this save or an earlier
            one in the request), or ``None``.
        :raises StoreUnavailable: the store is down; nothing is recorded.
        """
        assert self._backend is not None
        data = self._data if self._data is not None else self._load()
        writes = self._writes
        # As _snapshot() does, inline: this runs on every request that used its
        # session, and a call costs as much as the stores (benchmarks/instructions.py).
        pending = _new_object(Pending)
        pending.data = data
        pending.dirty = self._dirty
        pending.writes = writes
        pending.saved_writes = self._saved_writes
        pending.fresh = self._fresh
        pending.regenerate = self._regenerate
        pending.rotate = self._rotate
        pending.reissue = self._reissue
        pending.lifetime = self._lifetime
        pending.record = self._record
        pending.environ = self.environ or {}
        pending.shared = self._shared
        record, cookie, outcome = self._backend.save(pending, now, late)
        self._outcome = outcome
        if cookie is not None:
            self._cookie = cookie
        if outcome == "lost":
            return self._cookie
        if record is not None:
            self._record = record
        self._saved_writes = writes
        self.has_unsaved_writes = False
        self._fresh = self._regenerate = self._rotate = self._reissue = False
        dirty = self._dirty
        if dirty:
            # Only keys holding mutable values can change unseen from now on. A loop
            # first: most saves follow writes of immutable values (a counter, an id),
            # and a set comprehension costs a function call even when it keeps none.
            for key in dirty:
                if key in data and type(data[key]) not in _IMMUTABLE:
                    self._dirty = {
                        k for k in dirty if k in data and type(data[k]) not in _IMMUTABLE
                    }
                    break
            else:
                self._dirty = set()
        return self._cookie
