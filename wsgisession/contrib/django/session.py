"""``request.session``: Django's session API over a wsgisession :class:`~wsgisession.Session`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import UpdateError
from django.utils import timezone

from ...access.devices import forget_device
from ...cookies import MAX_COOKIE_AGE
from ...stores.base import ServerSessionStore
from .._view import SessionView
from . import _config
from ._migration import adopt_lifetime

if TYPE_CHECKING:
    from ...middleware import SessionMiddleware as CoreMiddleware
    from ...sessions import CookieWrite, Session

__all__ = ["DjangoSession"]

P = ParamSpec("P")

#: What ``DjangoSession`` holds before a value is known.
UNSET: Any = object()
R = TypeVar("R")

#: Set by save() on an empty session: Django's engines store an empty session that
#: is saved explicitly (the test client's ``client.session`` relies on it), while
#: wsgisession stores nothing for an empty one. Hidden from the mapping.
_SAVED = "_wsgisession.django.saved"


def _in_thread(method: Callable[P, R]) -> Callable[P, Any]:
    """The ``a*`` twin of a method: the store may block, so it runs in a thread."""

    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(method)(*args, **kwargs)

    twin.__doc__ = f"The async form of :meth:`{method.__name__}`."
    return twin


class DjangoSession(SessionView):
    """``request.session``: the API of Django's ``SessionBase`` over our session.

    The mapping API (``get``, ``pop``, ``setdefault``, ``update``, ``keys`` …) and
    ``has_key``, ``is_empty``, ``clear``, ``flush`` (the stored session is deleted
    now), ``cycle_key`` (a new key now, same data), ``save``, ``delete``, ``load``,
    ``exists``, ``session_key`` (see there), ``accessed``/``modified``, the test
    cookie, ``set_expiry`` and the expiry getters, and an ``a*`` twin of each
    (``aget``, ``aset``, ``acycle_key`` …).

    What differs: ``modified`` is also ``True`` after an in-place change of a nested
    value (compared by content), ``clear()`` moves the session to a new key, an empty
    session is not stored, and ``encode``/``decode`` do not exist (the format is
    wsgisession's).

    :param session: The wsgisession session of the request.
    :param middleware: The session middleware that opened it; default: the one of
        the current settings.
    :param saved_by_wsgi_layer: The session belongs to a WSGI ``SessionMiddleware``
        that is not known here: it saves the session with the response, and
        :meth:`save` leaves it to it.
    """

    TEST_COOKIE_NAME = "testcookie"
    TEST_COOKIE_VALUE = "worked"

    def __init__(
        self,
        session: Session,
        middleware: CoreMiddleware | None = None,
        *,
        saved_by_wsgi_layer: bool = False,
    ) -> None:
        super().__init__(session)
        self._middleware = middleware
        self._deferred = saved_by_wsgi_layer and middleware is None
        self._key: str | None = UNSET
        self._accessed: bool | None = None
        self._modified: bool | None = None
        self._expiry: Any = UNSET
        self._expired = False
        self._lifetime_adopted = False

    @property
    def middleware(self) -> CoreMiddleware:
        """The session middleware that loads and saves this session."""
        if self._middleware is None:
            self._middleware = _config.core_middleware()
        return self._middleware

    # -- the mapping, with Django's accessed/modified flags --------------------------

    def _touch(self, write: bool = False) -> None:
        self._accessed = True
        if write:
            self._modified = True
        if not self._lifetime_adopted:
            self._adopt_lifetime()

    def _adopt_lifetime(self) -> None:
        # At the first use: a session carried over from a Django engine gets the
        # lifetime set_expiry() gave it there (loads the session; an outage leaves it
        # to the next use). save_cookie() and, inside wrap(), the middleware check
        # too, for a session used only through wsgisession's own API.
        if not self._lifetime_adopted:
            adopt_lifetime(self)
            self._lifetime_adopted = True

    def __getitem__(self, key: str) -> Any:
        self._touch()
        return self.session[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._touch(write=True)
        self.session[key] = value

    def __delitem__(self, key: str) -> None:
        self._touch(write=True)
        del self.session[key]

    def __iter__(self) -> Iterator[str]:
        self._touch()
        return (key for key in self.session if key != _SAVED)

    def __len__(self) -> int:
        self._touch()
        return len(self.session) - (_SAVED in self.session)

    def __contains__(self, key: object) -> bool:
        self._touch()
        return key != _SAVED and key in self.session

    def __bool__(self) -> bool:
        # Django's test client asks `if self.session:` about a SessionStore.
        return not self.is_empty()

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if *key* is set, else *default*."""
        self._touch()
        return self.session.get(key, default)

    def has_key(self, key: str) -> bool:
        """Whether *key* is set (Django's old spelling of ``key in session``)."""
        return key in self

    def is_empty(self) -> bool:
        """Whether the session holds no data."""
        session = self.session
        return not session or (len(session) == 1 and _SAVED in session)

    def clear(self) -> None:
        """Remove every key; data set afterwards is saved under a new session key."""
        self._touch(write=True)
        self.session.clear()

    @property
    def accessed(self) -> bool:
        """Whether anything read or wrote the session during this request."""
        return self._accessed if self._accessed is not None else self.session.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._accessed = value

    @property
    def modified(self) -> bool:
        """Whether the session was written, or its data changed (compared by content).

        Setting it only changes what it reports: the session is saved when its
        content changed, whatever the flag says.
        """
        if self._modified is not None:
            return self._modified
        return self.session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    @property
    def written(self) -> bool:
        """Whether the request wrote the session (or set :attr:`modified`).

        Unlike :attr:`modified`, it compares nothing by content, so reading it
        serializes nothing: the save that follows serializes each value once.
        """
        if self._modified is not None:
            return self._modified
        return self.session.has_unsaved_writes

    # -- keys and storage --------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """The key that names this session, or ``None`` while it has none.

        As with Django's engines, ``SessionStore(session_key)`` opens this session
        again and the test client sends it as the cookie. On a server-side store it
        stays the same for the life of the session, until :meth:`cycle_key` (or
        ``clear()``), although the cookie itself is re-signed at each renewal: a key
        recorded at login keeps naming the session, and :meth:`exists` and
        :meth:`delete` ask the store, not the key's age. On a cookie store the data
        is the key, as with Django's ``signed_cookies``: it is the signed cookie of
        the session's current data, so read after a change it signs the data again
        (a save, with no I/O) rather than name the session as it was. So after
        ``django.contrib.auth.get_user()`` replaced an auth hash made with a
        ``SECRET_KEY_FALLBACKS`` key (``cycle_key()``, then the new hash), the key
        opens the session with the new hash. It is set by :meth:`save` and ``None``
        after :meth:`flush`.
        """
        key = self._key
        if key is UNSET:
            session = self.session
            key = self._key = None if session.new else self.middleware.session_key(session)
        if key is not None and not self._expired and self._stale_cookie_key():
            self.save_cookie()
            key = self._key
        return key

    def _stale_cookie_key(self) -> bool:
        # On a cookie store the key is the signed data: stale once the data changed
        # (compared by content, so an unchanged session is not signed again).
        store = self.middleware.store
        return not isinstance(store, ServerSessionStore) and self.session.modified

    def save(self, must_create: bool = False) -> None:
        """Save the session now, as a Django engine does; :attr:`session_key` is its key.

        Also done with the response, so a view need not call it.

        :param must_create: Ignored: a new session always gets a new key.
        :raises UpdateError: the stored session was deleted meanwhile (logged out
            by another request); it is not brought back.
        :raises StoreUnavailable: the store is down.
        """
        if not self.session and not self._expired:
            self.session[_SAVED] = True
        self.save_cookie()

    def save_cookie(self) -> tuple[bool, CookieWrite | None]:
        """Save as :meth:`save` does: whether the session was used and saved here, and
        the cookie to set or delete (its value, ``None`` to delete it, and Max-Age).

        What the middleware calls with the response, to set the cookie through
        ``response.set_cookie()``.
        """
        session = self.session
        if session.accessed:
            self._adopt_lifetime()
        if self._expired:
            self._expired = False
            session.invalidate()
        if not session.accessed or self._deferred:
            return False, None
        if _SAVED in session and len(session) > 1:
            del session[_SAVED]
        stored = session.record.key
        middleware = self.middleware
        cookie = session.commit(int(time.time()))
        if cookie is not None:
            value = cookie[0]
            # On a server store the key names the session, not this cookie.
            server = isinstance(middleware.store, ServerSessionStore)
            self._key = value and ((server and middleware.session_key(session)) or value)
        ended = session.save_outcome in ("gone", "revoked")
        if ended and stored is not None and session:
            # The stored session was deleted (a logout elsewhere) while this one changed.
            raise UpdateError
        return True, cookie

    def load(self) -> dict[str, Any]:
        """The data stored under :attr:`session_key` now (a fresh read)."""
        other = _open_session(self.middleware, self.session_key)
        return {key: value for key, value in other.items() if key != _SAVED}

    def exists(self, session_key: str | None) -> bool:
        """Whether a session is stored under *session_key* (a cookie value).

        :param session_key: A value of :attr:`session_key`.
        """
        if not session_key or not isinstance(self.middleware.store, ServerSessionStore):
            return False  # a cookie session is stored nowhere (as Django's signed_cookies)
        return not _open_session(self.middleware, session_key).new

    def create(self) -> None:
        """Start a new, empty session with a new key."""
        self.clear()
        self.save()

    def delete(self, session_key: str | None = None) -> None:
        """Delete the stored session *session_key* (default: this one) now.

        :param session_key: A value of :attr:`session_key`.
        """
        if session_key is None or session_key == self.session_key:
            self.session.invalidate()
            self._key = None
            return
        other = _open_session(self.middleware, session_key)
        if not other.new:
            other.invalidate()

    def flush(self) -> None:
        """End the session now: the stored session is deleted and so is the cookie.

        What ``django.contrib.auth.logout()`` calls. With device tracking on, the
        session's device is forgotten first.
        """
        self._touch(write=True)
        forget_device(self.session)
        self.session.invalidate()
        self._key = None

    def cycle_key(self) -> None:
        """Keep the data under a new session key, now; what ``login()`` calls."""
        self._touch(write=True)
        self.session.regenerate()
        self.save()

    @classmethod
    def clear_expired(cls) -> None:
        """Delete expired sessions, for stores that keep them (``manage.py clearsessions``).

        Redis and the memory store expire sessions themselves.
        """
        purge = getattr(_config.core_middleware().store, "gc", None)
        if purge is not None:
            purge()

    # -- expiry: Django keeps it in the session; here it is the session's max_age ----

    def _expiry_setting(self) -> Any:
        # What Django keeps in session["_session_expiry"]: None (the default), 0 (the
        # browser session), seconds, or a datetime.
        self._adopt_lifetime()
        if self._expiry is not UNSET:
            return self._expiry
        if not self.session.has_own_max_age:
            return None
        return self.session.max_age or 0

    def get_session_cookie_age(self) -> int:
        """The default session lifetime: ``WSGISESSION["max_age"]`` or ``SESSION_COOKIE_AGE``."""
        max_age = self.middleware.times.max_age
        return max_age if max_age is not None else _config.cookie_age({})

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from the last change (*modification*, default now) to expiry.

        :param kwargs: Django's ``modification`` and ``expiry``.
        """
        modification = kwargs.get("modification") or timezone.now()
        expiry: Any = kwargs["expiry"] if "expiry" in kwargs else self._expiry_setting()
        if not expiry:
            return self.get_session_cookie_age()
        if isinstance(expiry, str):
            expiry = datetime.fromisoformat(expiry)
        if not isinstance(expiry, datetime):
            return int(expiry)
        delta: timedelta = expiry - modification
        return delta.days * 86400 + delta.seconds

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session expires if it is not used after *modification* (default now).

        :param kwargs: Django's ``modification`` and ``expiry``.
        """
        modification: datetime = kwargs.get("modification") or timezone.now()
        expiry: Any = kwargs["expiry"] if "expiry" in kwargs else self._expiry_setting()
        if isinstance(expiry, datetime):
            return expiry
        if isinstance(expiry, str):
            return datetime.fromisoformat(expiry)
        return modification + timedelta(seconds=expiry or self.get_session_cookie_age())

    def get_expire_at_browser_close(self) -> bool:
        """Whether the cookie ends with the browser session."""
        expiry = self._expiry_setting()
        if expiry is None:
            return bool(_config.core_middleware().times.max_age is None)
        return bool(expiry == 0)

    def set_expiry(self, value: int | datetime | timedelta | None) -> None:
        """Set this session's lifetime, kept with the session from now on.

        - an ``int``: expires after that many seconds of inactivity;
        - a ``datetime`` or ``timedelta``: expires then (or after that long); kept as
          an inactivity timeout of the seconds left, renewed while the session is used;
        - ``0``: the cookie ends when the browser closes;
        - ``None``: back to the default (``SESSION_COOKIE_AGE``, ``max_age``).

        A lifetime already over ends the session when it is saved. One over
        :data:`~wsgisession.cookies.MAX_COOKIE_AGE` (400 days, the longest browsers
        keep a cookie) is clamped to it, however far off: the getters then report
        the 400 days.
        """
        self._touch(write=True)
        self._expired = False
        session = self.session
        if value is None:
            self._expiry = None
            session.reset_max_age()
            return
        if isinstance(value, timedelta):
            delta = value
            try:
                value = timezone.now() + delta
            except OverflowError:
                # Past year 9999 or before year 1: as long as allowed, or already over.
                value = MAX_COOKIE_AGE if delta > timedelta(0) else -1
        if isinstance(value, datetime):
            now = datetime.now(value.tzinfo) if value.tzinfo else datetime.now()
            seconds = math.ceil((value - now).total_seconds())
        else:
            seconds = int(cast("int", value))
        if seconds > MAX_COOKIE_AGE:
            # Kept as seconds: the getters then report the lifetime the session really
            # has, and get_expiry_date() never builds a date past year 9999.
            value = seconds = MAX_COOKIE_AGE
        elif seconds < -MAX_COOKIE_AGE and not isinstance(value, datetime):
            value = seconds = -MAX_COOKIE_AGE  # as over, and a date before year 1 is none
        self._expiry = value
        if seconds == 0 and not isinstance(value, datetime):
            session.max_age = None
        elif seconds <= 0:
            self._expired = True
        else:
            session.max_age = seconds

    # -- the test cookie -----------------------------------------------------

    def set_test_cookie(self) -> None:
        """Set a value that :meth:`test_cookie_worked` finds on the next request."""
        self[self.TEST_COOKIE_NAME] = self.TEST_COOKIE_VALUE

    def test_cookie_worked(self) -> bool:
        """Whether the client sent back the session :meth:`set_test_cookie` wrote."""
        return bool(self.get(self.TEST_COOKIE_NAME) == self.TEST_COOKIE_VALUE)

    def delete_test_cookie(self) -> None:
        """Remove the value :meth:`set_test_cookie` wrote."""
        del self[self.TEST_COOKIE_NAME]

    # -- the async API, as Django's SessionBase has it ---------------------------------

    aget = _in_thread(get)
    aset = _in_thread(__setitem__)
    apop = _in_thread(SessionView.pop)
    asetdefault = _in_thread(SessionView.setdefault)
    aupdate = _in_thread(SessionView.update)
    ahas_key = _in_thread(has_key)
    aset_test_cookie = _in_thread(set_test_cookie)
    atest_cookie_worked = _in_thread(test_cookie_worked)
    adelete_test_cookie = _in_thread(delete_test_cookie)
    aget_expiry_age = _in_thread(get_expiry_age)
    aget_expiry_date = _in_thread(get_expiry_date)
    aset_expiry = _in_thread(set_expiry)
    aget_expire_at_browser_close = _in_thread(get_expire_at_browser_close)
    aflush = _in_thread(flush)
    acycle_key = _in_thread(cycle_key)
    aexists = _in_thread(exists)
    acreate = _in_thread(create)
    asave = _in_thread(save)
    adelete = _in_thread(delete)
    aload = _in_thread(load)

    async def akeys(self) -> list[str]:
        """The keys, read in a thread."""
        return await sync_to_async(lambda: list(self.keys()))()

    async def avalues(self) -> list[Any]:
        """The values, read in a thread."""
        return await sync_to_async(lambda: list(self.values()))()

    async def aitems(self) -> list[tuple[str, Any]]:
        """The items, read in a thread."""
        return await sync_to_async(lambda: list(self.items()))()

    @classmethod
    async def aclear_expired(cls) -> None:
        """The async form of :meth:`clear_expired`."""
        await sync_to_async(cls.clear_expired)()


def _open_session(middleware: CoreMiddleware, session_key: str | None) -> Session:
    """The session *session_key* names, outside any request."""
    return middleware.open_session_by_key(session_key)
