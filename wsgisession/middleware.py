"""SessionMiddleware: a session for any WSGI application.

Wrap the application once and every request has a :class:`~wsgisession.Session`,
as ``environ["wsgisession.session"]``, :func:`~wsgisession.get_session` and the
context-local :data:`~wsgisession.session`::

    from wsgisession import SessionMiddleware, SQLiteStore

    app = SessionMiddleware(app, secret_key=SECRET_KEY, store=SQLiteStore())

What happens per request:

- the session is *lazy*: a request that never touches it costs no cookie parsing,
  no store call, no ``Set-Cookie`` and no ``Vary``;
- when the application calls ``start_response``, a session that changed (compared
  by content, nested values included) is saved and its cookie set; a session that
  was read adds ``Vary: Cookie``;
- a change made while a streamed body is being produced still reaches a server-side
  store when the response is closed (its cookie is already out);
- a tampered, expired or unreadable cookie gives a fresh, empty session and a
  warning in the ``wsgisession`` log, never an error page;
- a store outage answers ``503`` with ``Retry-After`` and no ``Set-Cookie``, so the
  client keeps its session for when the store is back;
- with ``header="X-Auth-Token"``, API, mobile and command-line clients may carry the
  session in that header instead of the cookie (``cookie_name=None`` turns the
  cookie off): a response sends the new value back in the same header, ``""`` when
  the session ended, and a request sending both the header and the cookie is
  refused with ``400``.

When *not* to use it: a cookie session (the default store) is readable by the
client (unless ``CookieStore(encrypt=True)``) and cannot be revoked before it
expires; pick a server-side store when logout must be final.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import dump_cookie
from werkzeug.wsgi import ClosingIterator

from ._backends import (
    BROWSER_SESSION_TTL,
    ClientBackend,
    CookieContents,
    ServerBackend,
    SessionHeader,
    SessionTimes,
    Transport,
)
from ._input import keep_body_readable
from ._options import check_bool, count
from ._refusals import ErrorPage, answer_refusal, check_error_page
from .context import SESSION_KEY, _environ, unbind
from .cookies import KEYRING_KEY, MAX_COOKIE_AGE, CookieOptions, request_cookie_values
from .errors import AmbiguousSession, ConfigurationError, StoreUnavailable
from .events import HOOKS_KEY, SessionEvent, SessionHooks
from .limits import RequestLimits, check_limits
from .migration import MIGRATED_KEY, Migration, MigrationReader
from .sessions import Session
from .signing import Keyring
from .stores.base import ClientSessionStore, ServerSessionStore
from .stores.cookie import CookieStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextvars import Token

    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["BROWSER_SESSION_TTL", "CookieContents", "SessionMiddleware", "SessionTimes"]

log = logging.getLogger("wsgisession")


#: Set in the environ by an integration that saved the session into its framework's
#: response itself (Flask's ``save_session``): the middleware then adds no session
#: headers when the response starts.
SAVED_KEY = "wsgisession.saved"

#: Set in the environ by an integration that answered a store outage itself (Flask's
#: ``save_session`` turns the response into the 503): the request's session changes
#: are dropped, as when the outage reaches the middleware, never saved after the body.
DROPPED_KEY = "wsgisession.dropped"


def _add_vary(headers: list[tuple[str, str]], names: tuple[str, ...]) -> None:
    # One Vary header, the app's own with the names added ("Cookie", and the session
    # header if there is one): some caches and proxies read only the first of
    # several Vary lines.
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            tokens = {token.strip().lower() for token in value.split(",")}
            missing = [item for item in names if item.lower() not in tokens]
            if missing and "*" not in tokens:
                headers[index] = (name, ", ".join([value, *missing] if value.strip() else missing))
            return
    headers.append(("Vary", ", ".join(names)))


class _Exchange:
    """One request's ``start_response``: the app calls :meth:`session_start_response`."""

    __slots__ = ("middleware", "session", "start_response", "started")

    middleware: SessionMiddleware
    session: Session
    start_response: StartResponse
    #: Whether the app called start_response (an error page then passes exc_info).
    started: bool

    def session_start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Any:
        session = self.session
        if session.loaded and SAVED_KEY not in session.environ:  # type: ignore[operator]
            headers = _response_headers(session, list(headers), self.middleware)
        write = self.start_response(status, headers, exc_info)
        self.started = True
        return write


_new_object = object.__new__


def _response_headers(
    session: Session, headers: list[tuple[str, str]], middleware: SessionMiddleware
) -> list[tuple[str, str]]:
    """Save a used session (:meth:`Session.commit`) and add its headers to *headers*.

    ``Vary`` always (``Cookie``, and the session header if there is one); when the
    save (or an earlier one in the request) decided a new value for the client,
    ``Set-Cookie`` or, for a session carried in the header, that header; then
    ``Cache-Control: no-store`` unless *headers* has a ``Cache-Control`` or the
    middleware's ``no_store`` is off.
    """
    # One look at the app's headers for both its Vary and its Cache-Control (a
    # loop, not any() over a generator: this runs on every request that used its
    # session).
    has_vary = has_cache_control = False
    for name, _ in headers:
        lowered = name.lower()
        if lowered == "vary":
            has_vary = True
        elif lowered == "cache-control":
            has_cache_control = True
    if has_vary:
        _add_vary(headers, middleware.vary)
    else:
        headers.append(middleware._vary_header)
    cookie = session.commit(int(time.time()))
    if cookie is not None:
        header = middleware.header
        if header is not None and session.transport == "header":
            headers.append((header, cookie[2]))
        else:
            headers.append(("Set-Cookie", cookie[2]))
        old = session.environ.get(MIGRATED_KEY)  # type: ignore[union-attr]
        if old is not None:  # a carried-over session: the old system's cookie goes
            headers.append(("Set-Cookie", old.delete_header()))
        # A response that sets a session cookie is one user's page: a shared cache
        # must not keep it, nor the browser show it again after logout (back button).
        if middleware.no_store and not has_cache_control:
            headers.append(("Cache-Control", "no-store"))
    return headers


def _migration(
    reader: MigrationReader | None, until: datetime | None, cookie_name: str | None
) -> Migration | None:
    if reader is None:
        if until is not None:
            raise ConfigurationError("migrate_until was given without migrate_from")
        return None
    return Migration(reader, until, cookie_name=cookie_name)


def _session_header(header: str | None, cookie_name: str | None) -> SessionHeader | None:
    if header is None:
        if cookie_name is None:
            raise ConfigurationError(
                "cookie_name=None turns the session cookie off, so sessions need a header"
                " to travel in: add header='X-Auth-Token' (or a name of your own), or give"
                " a cookie name"
            )
        return None
    return SessionHeader(header, cookie_name)


def _error_start_response(
    start_response: StartResponse,
    started: bool,
    status: str,
    headers: list[tuple[str, str]],
    *_: Any,
) -> Any:
    # PEP 3333: replacing a response the app had already started requires exc_info;
    # passing it otherwise makes some servers (werkzeug's) re-raise the error.
    return start_response(status, headers, sys.exc_info() if started else None)


def check_store_at_start(store: object, check: bool | None) -> None:
    """Ping *store* as ``SessionMiddleware(check_store=check)`` does when it is made.

    :raises ConfigurationError: the store failed its check, with its message.
    """
    check = check_bool("check_store", check, optional=True)
    if check is False or not isinstance(store, ServerSessionStore):
        return
    if check or store.ping_at_start:
        try:
            store.ping()
        except StoreUnavailable as exc:
            raise ConfigurationError(
                f"the session store does not work: {exc} (check_store=False starts anyway,"
                " and requests answer 503 until the store works)"
            ) from exc


def _clamped_max_age(max_age: int | None) -> int | None:
    # Clamped rather than refused: Django's SESSION_COOKIE_AGE and Flask's
    # PERMANENT_SESSION_LIFETIME accept any length, and browsers clamp the cookie
    # the same way. A bad type is left for count() to refuse.
    if isinstance(max_age, int) and not isinstance(max_age, bool) and max_age > MAX_COOKIE_AGE:
        log.warning(
            "max_age=%d is over %d seconds (400 days), the longest browsers keep a"
            " cookie (RFC 6265bis): sessions end after 400 days unused; set max_age to"
            " at most %d to silence this warning",
            max_age,
            MAX_COOKIE_AGE,
            MAX_COOKIE_AGE,
        )
        return MAX_COOKIE_AGE
    return max_age


class SessionMiddleware:
    """Give every request a session, saved only when it changes.

    :param app: The WSGI application to wrap.
    :param secret_key: Signs the cookie. Required: at least 32 random bytes, for
        example from ``python -c "import secrets; print(secrets.token_urlsafe(32))"``.
    :param fallback_secret_keys: Previous keys, still accepted; a cookie signed with
        one is re-issued under *secret_key* on its next use.
    :param store: Where sessions live: a :class:`~wsgisession.ClientSessionStore`
        (default :class:`~wsgisession.CookieStore`) or a
        :class:`~wsgisession.ServerSessionStore`.
    :param cookie_name: The cookie's name; ``__Host-session`` is the most locked-down.
        ``None``: no cookie at all, every session travels in *header* (an API with no
        browser pages); the cookie attributes below are then unused.
    :param max_age: Idle timeout in seconds (sliding): a session unused for this
        long is gone. ``None`` makes a cookie that ends with the browser session.
        Over :data:`~wsgisession.cookies.MAX_COOKIE_AGE` (400 days, the longest
        browsers keep a cookie) it is clamped to that, with a warning in the log.
    :param absolute_max_age: A session older than this many seconds since it was
        created is gone, however active it is. ``None``: no limit. Whatever it is, a
        session unused for 400 days is gone.
    :param refresh_interval: A session that is only read has its idle timeout renewed
        (cookie re-sent, store TTL reset) at most this often; ``0``: on every request
        that loads it (Flask's ``SESSION_REFRESH_EACH_REQUEST``). Default: a tenth of
        *max_age*. A browser-session cookie is renewed a tenth as often as the
        server's bound on it, whatever this says.
    :param path: The cookie's ``Path``; so are *domain*, *httponly*, *samesite*.
    :param secure: ``None`` (default): ``Secure`` exactly when the request is HTTPS.
    :param partitioned: Add the ``Partitioned`` attribute (CHIPS, for an app embedded
        in another site's page); forces ``Secure``.
    :param no_store: Add ``Cache-Control: no-store`` to a response that sets the
        session cookie, unless the app set its own ``Cache-Control``: such a page
        belongs to one user, and must not come back from a cache after logout.
    :param rotation_grace: Seconds an old session id still leads to the session after
        ``session.regenerate(privilege_change=False)`` (a routine rotation), so
        requests the browser sent with the old cookie meanwhile still see it. Never
        after a login, logout, ``clear()``, ``invalidate()`` or a plain
        ``regenerate()``. ``0`` (default): the old id ends at once. Server-side
        stores only.
    :param limits: How much of a request body :func:`~wsgisession.param`,
        :func:`~wsgisession.body`, guards and CSRF parse: a
        :class:`~wsgisession.RequestLimits`. ``None`` (default): its defaults.
    :param error_page: ``error_page(refusal, environ)`` returns the WSGI application
        that answers a store outage (the refusal is a
        :class:`~wsgisession.errors.StoreUnavailable`) for a client that does not
        prefer JSON; ``Retry-After`` is added if the page has none. It runs with no
        session: it must not use one. ``None`` (default): one line of plain text.
    :param check_store: Check now that a server store works (its
        :meth:`~wsgisession.ServerSessionStore.ping`), so that an unwritable SQLite
        path or a Redis or PostgreSQL that is not listening fails at start-up, with
        the message the first request would log. ``None`` (default): only when the
        check is local and cheap (:class:`~wsgisession.SQLiteStore`); ``True``:
        for every store (one connection to Redis or PostgreSQL, closed again, so
        it is safe before gunicorn forks); ``False``: never (requests answer
        ``503`` until the store works).
    :param migrate_from: A :class:`~wsgisession.migration.MigrationReader` of the
        sessions of the system being replaced: a request without a session of ours
        but with a valid old session gets its data in a new session of ours, once,
        so nobody is logged out by the switch (:mod:`wsgisession.migration`).
    :param migrate_until: When old sessions stop being carried over (a
        timezone-aware ``datetime``); required for a reader of client-side (cookie)
        sessions, at most 400 days away.
    :param header: A request and response header that carries the session in place
        of the cookie, for API, mobile and command-line clients (``"X-Auth-Token"``,
        as Spring Session's ``HeaderHttpSessionIdResolver``). A request that sends it
        (empty until the client has a session) gets the session its value names; a
        response that gives the client a new value (a new session, a new id, a
        renewal; with the cookie store, any change) sends it in the same header, and
        an empty one when the session ended. The value is exactly what the cookie's
        would be. Such a session is no ambient credential, so
        :class:`~wsgisession.CsrfMiddleware` asks no token of it; a request that sends
        both the header and the session cookie is answered ``400``
        (:class:`~wsgisession.errors.AmbiguousSession`). ``None`` (default): the
        cookie only, at no cost per request.
    :raises ConfigurationError: a missing secret key, an invalid cookie name or
        attribute, an unknown store type, *error_page* not callable, a store
        that failed its check, a migration reader without its end date, a *header*
        that is not a header name of one's own, or neither a cookie nor a header.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        secret_key: str | bytes | None,
        fallback_secret_keys: Iterable[str | bytes] = (),
        store: ClientSessionStore | ServerSessionStore | None = None,
        cookie_name: str | None = "session",
        max_age: int | None = 1209600,
        absolute_max_age: int | None = None,
        refresh_interval: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = "Lax",
        partitioned: bool = False,
        no_store: bool = True,
        rotation_grace: int = 0,
        limits: RequestLimits | None = None,
        error_page: ErrorPage | None = None,
        check_store: bool | None = None,
        migrate_from: MigrationReader | None = None,
        migrate_until: datetime | None = None,
        header: str | None = None,
    ) -> None:
        self.app = app
        self.limits = check_limits(limits)
        self.error_page = check_error_page(error_page)
        self.keyring = Keyring(secret_key, fallback_secret_keys)
        max_age = _clamped_max_age(max_age)
        #: The session cookie's name and attributes; ``None`` with ``cookie_name=None``.
        self.cookie: CookieOptions | None = None
        if cookie_name is not None:
            self.cookie = CookieOptions(
                name=cookie_name,
                max_age=max_age,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
                partitioned=partitioned,
            )
        session_header = _session_header(header, cookie_name)
        #: The session header's name (``header=``); ``None``: sessions travel in the cookie.
        self.header = header
        #: The request headers a response that used the session varies on: ``Cookie``,
        #: the session header, or both.
        self.vary = tuple(
            name for name in ("Cookie" if cookie_name is not None else None, header) if name
        )
        # The Vary header a response that used the session gets when the app's
        # headers have none.
        self._vary_header = ("Vary", ", ".join(self.vary))
        # Whether __call__ may open the session inline: not if a subclass has its own.
        self._open_inline = type(self).open_session is SessionMiddleware.open_session
        times = SessionTimes(
            count("max_age", max_age, unit="seconds", optional=True),
            count("absolute_max_age", absolute_max_age, unit="seconds", optional=True),
            count("refresh_interval", refresh_interval, minimum=0, unit="seconds", optional=True),
        )
        self.store = CookieStore() if store is None else store
        # The value is signed for the session it names, whichever way it travels:
        # the cookie's name, else (no cookie) the header's.
        purpose = (
            f"wsgisession.session:{cookie_name}"
            if cookie_name is not None
            else f"wsgisession.session-header:{str(header).lower()}"
        )
        self._backend: ClientBackend | ServerBackend
        if isinstance(self.store, ClientSessionStore):
            self._backend = ClientBackend(
                self.store.bind(self.keyring, purpose), self.cookie, times, session_header
            )
        elif isinstance(self.store, ServerSessionStore):
            self._backend = ServerBackend(
                self.store, self.keyring.signer(purpose), self.cookie, times, session_header
            )
        else:
            raise ConfigurationError(
                f"store must be a ClientSessionStore or ServerSessionStore instance, not"
                f" {self.store!r}; use CookieStore(), LRUStore(), SQLiteStore() or"
                " RedisStore(), or store_from_url()"
            )
        #: Whether a response that sets the session cookie gets ``Cache-Control:
        #: no-store`` (unless it has its own); integrations that set the cookie
        #: themselves (Django) read it.
        self.no_store = bool(check_bool("no_store", no_store))
        grace = count("rotation_grace", rotation_grace, minimum=0, unit="seconds")
        if grace and not isinstance(self._backend, ServerBackend):
            raise ConfigurationError(
                "rotation_grace needs a server-side store: a cookie session has no id"
                " to forward; use SQLiteStore, RedisStore or PostgresStore, or leave it 0"
            )
        if isinstance(self._backend, ServerBackend):
            self._backend.rotation_grace = grace
        #: For a framework integration that runs its app inside this middleware:
        #: ``reraise_http_exception(exc)`` says whether a werkzeug ``HTTPException``
        #: that escaped the app goes on up (Flask's ``trap_http_exception``, for its
        #: debugger and test client) instead of being rendered. ``None``: rendered.
        self.reraise_http_exception: Callable[[HTTPException], bool] | None = None
        self._check_multiprocess = isinstance(self.store, ServerSessionStore) and (
            self.store.process_local
        )
        # Whether a request needs a look before the app runs (the warning above, the
        # session header's 400): decided here, so that without either a request pays
        # one attribute test.
        self._inspect = self._check_multiprocess or session_header is not None
        #: The reader of the replaced system's sessions, while a migration runs.
        self.migration = _migration(migrate_from, migrate_until, cookie_name)
        self._backend.migration = self.migration
        check_store_at_start(self.store, check_store)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._inspect and (refusal := self._inspect_request(environ)) is not None:
            return refusal(environ, start_response)
        if environ.get("CONTENT_TYPE") or self.limits is not None:
            keep_body_readable(environ, self.limits)  # a body: GET requests skip the call
        if self._open_inline:
            # open_session(), inlined: the untouched path is hot (instruction budget).
            backend = self._backend
            session = Session(backend, environ)
            environ[SESSION_KEY] = session
            environ[KEYRING_KEY] = self.keyring
            if backend.hooks is not None:
                environ[HOOKS_KEY] = backend.hooks
        else:  # a subclass's own open_session()
            session = self.open_session(environ)
        token = _environ.set(environ)  # bind(), inlined
        # The app's start_response: a bound method of a slotted object rather than a
        # closure, whose four cells cost the untouched path more.
        exchange = _new_object(_Exchange)
        exchange.middleware = self
        exchange.session = session
        exchange.start_response = start_response
        exchange.started = False
        try:
            app_iter = self.app(environ, exchange.session_start_response)
        except StoreUnavailable as exc:
            # Already logged by the backend, where the store failed.
            unbind(token)
            return answer_refusal(
                exc,
                environ,
                partial(_error_start_response, start_response, exchange.started),
                self.error_page,
            )
        except HTTPException as exc:
            # A werkzeug error (a BadParam from param(), say) that escaped a plain
            # WSGI app: render it, as Flask would, rather than let it become a 500.
            if self.reraise_http_exception is not None and self.reraise_http_exception(exc):
                unbind(token)
                raise
            app_iter = exc(
                environ,
                partial(_error_start_response, exchange.session_start_response, exchange.started),
            )
        except BaseException:
            unbind(token)
            raise
        if type(app_iter) is list:
            # Nothing of the app runs after it returns a list: finish now and spare
            # the ClosingIterator's cost on every chunk.
            if not session.has_unsaved_writes:  # untouched, or saved at header time
                # Untouched, or nothing written since the save at header time: there is
                # nothing for close_session() to do.
                _environ.reset(token)
                if session.loaded:  # checked here too: spares the untouched path a call
                    session.request_finished()
            else:
                self._finish(session, token, streamed=False)
            return app_iter
        return ClosingIterator(app_iter, partial(self._finish, session, token, streamed=True))

    def _inspect_request(self, environ: WSGIEnvironment) -> AmbiguousSession | None:
        """What a request needs before the app runs; the refusal to answer it with, if any."""
        if self._check_multiprocess:
            self._warn_if_multiprocess(environ)
        return self.refusal_for(environ)

    # -- the session lifecycle, public for integrations -----------------------
    # Flask's session interface, Django's middleware and engine, and the test helpers
    # run a session through these three steps outside __call__.

    def open_session(self, environ: WSGIEnvironment) -> Session:
        """The session of the request *environ*, not loaded until used.

        It is put in the environ (``environ["wsgisession.session"]``, so
        :func:`~wsgisession.get_session` finds it) with the keys that sign cookies
        and CSRF tokens. The context variable behind :data:`~wsgisession.session` is
        left alone: bind it with :func:`wsgisession.context.bind` if code without the
        environ must see this session.

        :param environ: A WSGI environ; its ``Cookie`` header (or the session header)
            says which session.
        """
        session = Session(self._backend, environ)
        environ[SESSION_KEY] = session
        environ[KEYRING_KEY] = self.keyring
        if self._backend.hooks is not None:
            environ[HOOKS_KEY] = self._backend.hooks
        return session

    def refusal_for(self, environ: WSGIEnvironment) -> AmbiguousSession | None:
        """The ``400`` this middleware answers the request *environ* with before the app
        runs, or ``None``: a request that sends its session in both the session header
        and the session cookie (:class:`~wsgisession.errors.AmbiguousSession`).

        ``__call__`` checks it; an integration that runs the session steps itself
        (Django's middleware) answers with it.

        :param environ: A WSGI environ.
        """
        header = self._backend.header
        if header is None or not header.ambiguous(environ):
            return None
        log.warning(
            "refused %s %s with 400: it sends a session in both the %s header and the"
            " session cookie",
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/"),
            header.name,
        )
        assert header.cookie_name is not None  # ambiguous: there is a cookie
        return AmbiguousSession(header.name, header.cookie_name)

    def transport(self, environ: WSGIEnvironment) -> Transport:
        """How the session of the request *environ* travels: ``"cookie"`` or ``"header"``.

        ``"header"`` when the request sends the session header, or there is no cookie;
        the same as :attr:`Session.transport` of its session.

        :param environ: A WSGI environ.
        """
        return self._backend.transport(environ)

    def session_key(self, session: Session) -> str | None:
        """A name of *session* that :meth:`open_session_by_key` opens again.

        On a server-side store it stays the same for the life of the session, until
        its id changes (``regenerate()``, ``clear()``), although the cookie is
        re-signed at each renewal. On a client-side store the data is the cookie, so
        the name is the cookie's current value. ``None`` for a session not saved yet.

        :param session: A session this middleware opened, saved at least once.
        """
        backend = self._backend
        key = backend.stable_key(session.record) if isinstance(backend, ServerBackend) else None
        if key is not None:
            return key
        # A cookie session, or one reached through a rotation's forward (whose id
        # this request never learns): the name is the value it came with.
        return self.sent_value(session.environ or {})

    def sent_value(self, environ: WSGIEnvironment) -> str | None:
        """The session value the request *environ* sends, not verified: its session
        header's when its session travels there, else its session cookie's.

        ``None`` when it sends none, an empty one, or several cookies of the name.

        :param environ: A WSGI environ.
        """
        header = self._backend.header
        if header is not None and header.carries(environ):
            return header.value(environ)
        assert self.cookie is not None  # no header: a cookie
        values = request_cookie_values(environ, self.cookie.name)
        return values[0] if len(values) == 1 and values[0] else None

    def open_session_by_key(self, key: str | None) -> Session:
        """The session named by *key* (a :meth:`session_key` or a cookie value), outside a request.

        On a server-side store a key's age does not matter: its signature proves the
        id was issued here, and the store says whether the session is still alive.
        A forged, unknown or ended key gives a new, empty session.

        :param key: What :meth:`session_key` returned, or a session cookie's (or
            header's) value.
        """
        backend = self._backend
        if key and isinstance(backend, ServerBackend):
            key = backend.restamp(key)
        environ: WSGIEnvironment = {"wsgi.url_scheme": "http"}
        if key:
            if self.cookie is not None:
                environ["HTTP_COOKIE"] = dump_cookie(self.cookie.name, key, path=None)
            else:
                assert backend.header is not None  # no cookie: a header
                environ[backend.header.environ_key] = key
        return self.open_session(environ)

    # -- events ----------------------------------------------------------------

    @property
    def hooks(self) -> SessionHooks:
        """This middleware's :class:`~wsgisession.events.SessionHooks`, created on first use.

        Until something registers here the backends hold ``None`` and pay one
        ``is None`` test per place an event could happen.
        """
        hooks = self._backend.hooks
        if hooks is None:
            hooks = self._backend.hooks = SessionHooks()
        return hooks

    def on_event(
        self, callback: Callable[[SessionEvent], object]
    ) -> Callable[[SessionEvent], object]:
        """Call *callback* with every :class:`~wsgisession.events.SessionEvent`; a decorator.

        Events: created, regenerated, logged in, logged out, revoked, expired,
        tampered cookie refused, store error (:class:`~wsgisession.events.EventName`).
        Each carries the user id and device handle when known, and a reason; never
        the session id or data. A callback that raises is logged and ignored.

        :param callback: Called in the request's thread; keep it fast.
        :returns: *callback*, so this works as ``@sessions.on_event``.
        """
        if not callable(callback):
            raise ConfigurationError(
                f"on_event needs a callable taking a SessionEvent: {callback!r}"
            )
        self.hooks.callbacks.append(callback)
        return callback

    def wrap_store(
        self, wrapper: Callable[[ServerSessionStore], ServerSessionStore]
    ) -> ServerSessionStore:
        """Route this middleware's session store calls through ``wrapper(store)``.

        For observers that time or trace the four calls of a server store
        (:func:`wsgisession.metrics.instrument` does): the wrapper gets the store
        the middleware calls now (the one given, or an earlier wrapper) and returns
        the one it calls from now on. :attr:`store` stays the store given, for the
        device index and admin tools. Call it at start-up, before serving.

        :param wrapper: Takes a :class:`~wsgisession.ServerSessionStore`, returns one;
            returning its argument leaves things as they are.
        :returns: The store the middleware now calls.
        :raises ConfigurationError: the store is client-side (it makes no calls).
        """
        backend = self._backend
        if not isinstance(backend, ServerBackend):
            raise ConfigurationError(
                f"{self.store!r} keeps sessions in the cookie: there are no store calls to wrap"
            )
        wrapped = wrapper(backend.store)
        if not isinstance(wrapped, ServerSessionStore):
            raise ConfigurationError(
                f"wrap_store needs a wrapper returning a ServerSessionStore, not {wrapped!r}"
            )
        backend.store = wrapped
        return wrapped

    def save_session(
        self, session: Session, headers: list[tuple[str, str]] | None = None
    ) -> list[tuple[str, str]]:
        """Save *session* if it changed (or is due for renewal); the headers to send.

        Returns *headers* (a new list when ``None``) with ``Vary: Cookie`` (and the
        session header, if there is one: :attr:`vary`) merged in when the session
        was used, and ``Set-Cookie`` (plus ``Cache-Control: no-store`` unless
        *headers* has a ``Cache-Control`` or ``no_store=False``) when its cookie must
        be set or deleted; for a session carried in the session header
        (:attr:`Session.transport`), that header instead of ``Set-Cookie``, empty to
        end it. May be called again in the same request: later changes are saved and
        the value is returned again.

        :param session: A session from :meth:`open_session`.
        :param headers: The response's headers so far.
        :raises StoreUnavailable: the store is down (a ``503`` to the client).
        :raises SessionTooLarge: a cookie session over the browsers' 4 KB.
        """
        headers = [] if headers is None else headers
        if not session.loaded:
            return headers
        return _response_headers(session, headers, self)

    def close_session(self, session: Session, *, streamed: bool = False) -> None:
        """After the response: save what changed since :meth:`save_session`, if possible.

        A server-side store still takes a change made while the body was produced
        (its id cookie is already out); a lost change is logged, never raised.

        :param session: A session from :meth:`open_session`.
        :param streamed: Whether the body was produced after the headers, so values
            handed out earlier may have changed in place since.
        """
        try:
            late = session.has_unsaved_writes or (streamed and session.may_have_changed_in_place)
            # The client was told 503: saving its change now would apply it twice
            # when it retries.
            if session.loaded and late and DROPPED_KEY not in (session.environ or {}):
                session.commit(int(time.time()), late=True)
        except StoreUnavailable:
            log.warning("a session change made after the headers was lost (store unavailable)")

    # -- reading a cookie without a request (``wsgisession inspect``) -----------

    @property
    def times(self) -> SessionTimes:
        """The expiry settings: ``max_age``, ``absolute_max_age``, ``refresh_interval``."""
        return self._backend.times

    def read_cookie(self, value: str) -> CookieContents:
        """Verify and decode a session cookie value made by this middleware.

        Expiry is not checked: see :meth:`SessionTimes.expired` on :attr:`times`.

        :raises itsdangerous.BadData: a bad signature (or ciphertext).
        :raises ValueError: anything else wrong with the value.
        """
        return self._backend.read_cookie(value)

    def load_stored(self, sid: str) -> tuple[str, dict[str, Any] | None]:
        """The store key of session id *sid* and its stored data (``None`` if absent).

        :raises TypeError: the store is client-side (there is nothing stored).
        :raises ValueError: the stored record is corrupt.
        :raises StoreUnavailable: the store is down.
        """
        backend = self._backend
        if not isinstance(backend, ServerBackend):
            raise TypeError(f"{self.store!r} keeps sessions in the cookie, not on the server")
        key = backend.store_key(sid)
        record = backend.store.load(key)
        if not record:
            return key, None
        try:
            return key, backend.decode_record(record)
        except (TypeError, RecursionError) as exc:
            raise ValueError(str(exc)) from exc

    def _finish(
        self, session: Session, token: Token[WSGIEnvironment | None], *, streamed: bool
    ) -> None:
        try:
            self.close_session(session, streamed=streamed)
        finally:
            unbind(token)
            session.request_finished()

    def _warn_if_multiprocess(self, environ: WSGIEnvironment) -> None:
        if environ.get("wsgi.multiprocess"):
            self._check_multiprocess = False
            self._inspect = self._backend.header is not None
            log.warning(
                "%s keeps sessions inside one process, but this server runs several"
                " processes: each has its own sessions, so users will appear logged out"
                " at random. Use SQLiteStore (one machine), RedisStore (several) or"
                " CookieStore, or a load balancer with sticky sessions.",
                type(self.store).__name__,
            )
