"""Flask integration: ``flask.session`` backed by wsgisession, configured the Flask way.

:func:`init_app` wraps ``app.wsgi_app`` in :class:`FlaskSessionMiddleware` and
installs :class:`WsgiSessionInterface`, so code that uses ``flask.session``,
``flask.flash``, ``get_flashed_messages`` and ``client.session_transaction()`` keeps
working, with our stores, expiry, fixation defences and content-based saving
(``session["cart"].append(x)`` is saved without ``session.modified = True``)::

    from flask import Flask
    from wsgisession.contrib.flask import init_app

    app = Flask(__name__)
    init_app(app, store="sqlite:////var/lib/myapp/sessions.sqlite3")
    app.secret_key = SECRET_KEY  # before or after init_app: read per request

Flask's configuration is read from ``app.config`` on every request, as Flask reads
it: ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``, ``SESSION_COOKIE_NAME``,
``SESSION_COOKIE_DOMAIN``, ``SESSION_COOKIE_PATH`` (else ``APPLICATION_ROOT``),
``SESSION_COOKIE_HTTPONLY``, ``SESSION_COOKIE_SECURE``, ``SESSION_COOKIE_SAMESITE``,
``SESSION_COOKIE_PARTITIONED``, ``PERMANENT_SESSION_LIFETIME`` (the lifetime of a
session whose ``session.permanent`` is true; the others end with the browser) and
``SESSION_REFRESH_EACH_REQUEST``. A setting given to :func:`init_app` (or in
``app.config["WSGISESSION"]`` or a ``WSGISESSION_*`` variable) wins over Flask's.

Beyond Flask's cookie session:

- the session id changes at every Flask-Login ``login_user()`` / ``logout_user()``
  (and "remember me" logins), so a planted session id is worthless after login;
- ``csrf_token()`` is a Jinja global (unless another extension, Flask-WTF say,
  registered one);
- ``request.view_args`` become the path parameters of :func:`~wsgisession.param`;
- ``migrate_from="flask"`` or ``"flask-session"`` carries each user's session of
  the system being replaced over, so the switch logs nobody out.

WSGI middlewares that need the session (:class:`~wsgisession.CsrfMiddleware`,
guards) go on ``app.wsgi_app`` *before* :func:`init_app`, so that they run inside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.wsgi import ClosingIterator

from .._refusals import refusal_response
from ..access.csrf import csrf_token
from ..access.devices import Devices, track_devices
from ..config import middleware_options
from ..context import SESSION_KEY, bind, unbind
from ..errors import StoreUnavailable
from ..middleware import DROPPED_KEY, SAVED_KEY, SessionMiddleware, check_store_at_start
from ..request.params import set_path_params
from ..stores.cookie import CookieStore
from ._flask_login import _connect_flask_login, _sync_remember_issued
from ._flask_migration import adopt_permanent, build_reader, check_migration, reader_name
from ._flask_session import FlaskSession

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask.wrappers import Response
    from werkzeug.wrappers import Response as WerkzeugResponse


__all__ = ["FlaskSession", "FlaskSessionMiddleware", "WsgiSessionInterface", "init_app"]

#: Where init_app keeps the middleware, in ``app.extensions``.
EXTENSION_KEY = "wsgisession"

#: The environ key of the SessionMiddleware (configuration) of this request.
_MIDDLEWARE_KEY = "wsgisession.flask.middleware"

#: How many configurations (secret keys, cookie settings …) are kept built at once.
_CONFIGURATIONS = 8


class WsgiSessionInterface(SessionInterface):
    """A Flask session interface that hands out the wsgisession session.

    It opens the request's session (from :class:`FlaskSessionMiddleware`, or from the
    request's cookie outside it, as in ``client.session_transaction()`` and
    ``test_request_context()``) and, in :meth:`save_session`, saves it and adds the
    ``Set-Cookie`` and ``Vary`` headers to Flask's response. Without a secret key it
    opens no session, and Flask uses its ``NullSession``, as with its own sessions.

    :param sessions: The middleware :func:`init_app` wrapped the app in.
    """

    def __init__(self, sessions: FlaskSessionMiddleware) -> None:
        self.sessions = sessions

    def open_session(self, app: Flask, request: Request) -> FlaskSession | None:
        """The request's session, not loaded until used; ``None`` without a secret key."""
        environ = request.environ
        session = environ.get(SESSION_KEY)
        if session is None:
            middleware = self.sessions.session_middleware()
            if middleware is None:
                return None
            session = middleware.open_session(environ)
            environ[_MIDDLEWARE_KEY] = middleware
        return FlaskSession(session, lifetime=self.sessions.lifetime())

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save the session if needed; add its cookie and ``Vary: Cookie`` to *response*.

        A session carried in the session header (``header=``) gets that header
        instead of the cookie, and ``Vary`` names it too.
        """
        if not isinstance(session, FlaskSession):
            return
        environ = session.session.environ or {}
        middleware: SessionMiddleware | None = environ.get(_MIDDLEWARE_KEY)
        if middleware is None:
            return
        try:
            headers = self._save(app, session, middleware, response)
        except StoreUnavailable as exc:
            _become(response, refusal_response(exc, environ, middleware.error_page))
            environ[SAVED_KEY] = environ[DROPPED_KEY] = True
            return
        environ[SAVED_KEY] = True
        cache_control = response.headers.get("Cache-Control")
        session_header = (middleware.header or "").lower()
        cookies = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "set-cookie":
                response.headers.add("Set-Cookie", value)
                cookies = True
            elif lowered == session_header:
                response.headers[name] = value
                cookies = True
            elif lowered == "cache-control" and cache_control is None:
                response.headers["Cache-Control"] = value
        # Flask's rule: Vary when the session was used or its cookie is set.
        if cookies or session.accessed:
            for name in middleware.vary:
                response.vary.add(name)

    def _save(
        self,
        app: Flask,
        session: FlaskSession,
        middleware: SessionMiddleware,
        response: Response,
    ) -> list[tuple[str, str]]:
        # Everything that may reach the store, so an outage anywhere is the 503.
        core = session.session
        environ = core.environ or {}
        if not core.accessed and self.sessions.refreshes_each_request(environ, middleware):
            session.load_for_renewal()
        if middleware.migration is not None and core.accessed:
            adopt_permanent(session)  # Flask's "_permanent" key, in a carried-over session
        if self.sessions.devices is not None and hasattr(app, "login_manager"):
            _sync_remember_issued(app, core, response)  # Flask-Login's remember cookie
        if core.accessed and session.resend:
            core.reissue()  # Flask re-sends a session written to, even with equal values
        cache_control = response.headers.get("Cache-Control")
        return middleware.save_session(
            core, [] if cache_control is None else [("Cache-Control", cache_control)]
        )


def _become(response: Response, error: WerkzeugResponse) -> None:
    # The store failed while saving, after Flask built its response: answer 503
    # instead (Flask would turn an error raised here into a 500).
    response.status = error.status
    response.headers.clear()
    response.headers.extend(error.headers)
    response.set_data(error.get_data())


class FlaskSessionMiddleware:
    """``app.wsgi_app`` after :func:`init_app`: a session for every request.

    Each request gets a :class:`~wsgisession.SessionMiddleware` built from the
    *options* given to :func:`init_app` and, for what they leave out, from
    ``app.config`` as it is at that moment (built once per distinct configuration).
    The session is opened and bound here, saved by Flask's ``save_session``
    (:class:`WsgiSessionInterface`), or here for a response that did not come from
    Flask (a :class:`~wsgisession.CsrfMiddleware` refusal), and closed after the body.

    A werkzeug ``HTTPException`` escaping the app is rendered, unless Flask would
    trap it (``TRAP_HTTP_EXCEPTIONS``, ``TRAP_BAD_REQUEST_ERRORS``, debug mode):
    then it propagates, for the debugger and the test client.

    :param flask_app: The Flask application.
    :param app: The WSGI application to wrap (``app.wsgi_app``).
    :param options: :class:`~wsgisession.SessionMiddleware` keyword arguments that
        win over ``app.config``.
    """

    def __init__(
        self,
        flask_app: Flask,
        app: WSGIApplication,
        options: Mapping[str, Any],
        *,
        devices: Mapping[str, Any] | None = None,
    ) -> None:
        self.flask_app = flask_app
        self.app = app
        self.options = dict(options)
        #: The store every configuration shares.
        store = self.options.pop("store", None)
        self.store = CookieStore() if store is None else store
        #: The options of :func:`~wsgisession.track_devices` for every middleware
        #: built here; ``None``: no device tracking.
        self.devices = None if devices is None else dict(devices)
        if self.devices is not None:
            Devices(self.store, **self.devices)  # a bad option fails now, not per request
        # Checked once, here at init_app, not for each configuration built later.
        check_store_at_start(self.store, self.options.pop("check_store", None))
        self._built: dict[tuple[Any, ...], SessionMiddleware] = {}

    def _settings(self) -> dict[str, Any]:
        # What Flask's SecureCookieSessionInterface reads, per request, the same way.
        config = self.flask_app.config
        secure = config["SESSION_COOKIE_SECURE"]
        refresh = config["SESSION_REFRESH_EACH_REQUEST"]
        settings = {
            "secret_key": self.flask_app.secret_key,
            "fallback_secret_keys": tuple(config.get("SECRET_KEY_FALLBACKS") or ()),
            "cookie_name": config["SESSION_COOKIE_NAME"],
            "domain": config["SESSION_COOKIE_DOMAIN"] or None,
            "path": config["SESSION_COOKIE_PATH"] or config["APPLICATION_ROOT"] or "/",
            "httponly": bool(config["SESSION_COOKIE_HTTPONLY"]),
            # Flask's False means "not set": Secure exactly on HTTPS, never less safe.
            "secure": True if secure else None,
            "samesite": config["SESSION_COOKIE_SAMESITE"],
            "partitioned": bool(config.get("SESSION_COOKIE_PARTITIONED")),
            # A session is a browser session unless made permanent.
            "max_age": None,
            "refresh_interval": 0 if refresh else None,
        }
        settings.update(self.options)
        return settings

    def session_middleware(self) -> SessionMiddleware | None:
        """The middleware for the configuration in force; ``None`` without a secret key."""
        settings = self._settings()
        if not settings["secret_key"]:
            return None
        key = tuple(
            tuple(value) if isinstance(value, list) else value for value in settings.values()
        )
        middleware = self._built.get(key)
        if middleware is None:
            if len(self._built) >= _CONFIGURATIONS:
                self._built.pop(next(iter(self._built)))
            settings["fallback_secret_keys"] = list(settings["fallback_secret_keys"])
            middleware = SessionMiddleware(
                self.app,
                store=self.store,
                check_store=False,
                **settings,
            )
            middleware.reraise_http_exception = self.flask_app.trap_http_exception
            if self.devices is not None:
                track_devices(middleware, **self.devices)
            self._built[key] = middleware
        return middleware

    def lifetime(self) -> int | None:
        """The ``max_age`` of a permanent session: init_app's, else Flask's lifetime."""
        max_age: int | None = self.options.get("max_age")
        if max_age is not None:
            return max_age
        return int(self.flask_app.permanent_session_lifetime.total_seconds())

    def refreshes_each_request(
        self, environ: WSGIEnvironment, middleware: SessionMiddleware
    ) -> bool:
        """Whether a request that did not use its session must still renew it.

        Flask renews a permanent session's cookie on every request when
        ``SESSION_REFRESH_EACH_REQUEST`` is true; with a ``refresh_interval`` of
        ours the session is only renewed on the requests that use it.
        """
        if "refresh_interval" in self.options or not self.flask_app.config.get(
            "SESSION_REFRESH_EACH_REQUEST"
        ):
            return False
        return middleware.sent_value(environ) is not None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        middleware = self.session_middleware()
        if middleware is None:  # no secret key: Flask's NullSession, but a request scope
            token = bind(environ)
            try:
                return ClosingIterator(self.app(environ, start_response), partial(unbind, token))
            except BaseException:
                unbind(token)
                raise
        # The core middleware runs the request (one lifecycle for every integration:
        # the body kept readable within its limits, the session bound, outages
        # answered by error_page, late changes saved); Flask's save_session saves
        # the session into Flask's response and marks the environ (SAVED_KEY).
        environ[_MIDDLEWARE_KEY] = middleware
        return middleware(environ, start_response)


def init_app(app: Flask, **options: Any) -> FlaskSessionMiddleware:
    """Back ``flask.session`` with wsgisession and wrap ``app.wsgi_app``.

    Settings are the keyword arguments of :class:`~wsgisession.SessionMiddleware`
    (``store`` may be a store or a URL, see :func:`~wsgisession.from_config`), taken
    from ``app.config["WSGISESSION"]`` (a dict), then *options*, then
    ``WSGISESSION_*`` environment variables. Whatever they leave out comes from
    Flask's configuration, read per request (see the module documentation): the
    secret key may be set after ``init_app``, and without one ``flask.session`` is
    Flask's ``NullSession`` (reads are empty, a write raises ``RuntimeError``).

    ::

        init_app(app, store="redis://localhost:6379/0")

    When Flask-Login is installed, ``init_app`` also connects its
    ``user_logged_in``, ``user_loaded_from_cookie`` and ``user_logged_out`` signals
    (for *app*) to :meth:`~wsgisession.Session.regenerate`: each login and logout
    moves the session to a new id (and a new CSRF secret). With
    ``track_devices=True`` (or a dict of :func:`~wsgisession.track_devices`
    options) each of those logins is recorded as a device of the user
    (:func:`~wsgisession.record_login`) and each logout forgets it first, so
    ``sessions_of()``, ``revoke()`` and ``logout_everywhere()`` work in views.

    Switching from Flask's own sessions or Flask-Session logs nobody out with
    ``migrate_from="flask"`` (Flask's signed cookies; ``migrate_until`` is then
    required, at most ``PERMANENT_SESSION_LIFETIME`` away) or
    ``migrate_from="flask-session"`` (Flask-Session 0.8's records on Redis or
    SQLAlchemy, each deleted as it is carried over): a user's old session becomes a
    session of ours on their next request, logins included. The reader is built from
    ``app.config`` as it is when ``init_app`` runs (the ``SESSION_COOKIE_*`` and
    Flask-Session's settings; the secret keys are read at each request). ::

        init_app(app, store="redis://localhost:6379/0", migrate_from="flask-session")

    :param app: The Flask application.
    :param options: Settings as above.
    :returns: The middleware now in ``app.wsgi_app`` (also in
        ``app.extensions["wsgisession"]``).
    :raises ConfigurationError: a bad setting.
    """
    settings = dict(app.config.get("WSGISESSION") or {})
    settings.update(options)
    environ = dict(os.environ)
    # "flask" and "flask-session" name readers built from this app's configuration.
    source = reader_name(settings, environ)
    if source is not None:
        settings["migrate_from"] = build_reader(source, app)
    options = middleware_options(settings, environ=environ)
    check_migration(app, options, source)
    devices = options.pop("track_devices", None)
    sessions = FlaskSessionMiddleware(app, app.wsgi_app, options, devices=devices)
    app.wsgi_app = sessions  # type: ignore[method-assign]
    app.session_interface = WsgiSessionInterface(sessions)
    app.extensions[EXTENSION_KEY] = sessions
    app.url_value_preprocessor(_path_params)
    app.context_processor(partial(_csrf_global, app))
    _connect_flask_login(app, tracking=devices is not None)
    if options.get("error_page") is not None:
        # A store outage inside a view: Flask renders HTTPExceptions itself, so the
        # page is a Flask error handler, as SessionMiddleware answers one in __call__.
        app.register_error_handler(StoreUnavailable, _outage_page)
    return sessions


def _outage_page(refusal: StoreUnavailable) -> WerkzeugResponse:
    environ = request.environ
    middleware: SessionMiddleware | None = environ.get(_MIDDLEWARE_KEY)
    return refusal_response(refusal, environ, None if middleware is None else middleware.error_page)


def _path_params(endpoint: str | None, values: dict[str, Any] | None) -> None:
    set_path_params(values or {})


def _csrf_global(app: Flask) -> dict[str, Any]:
    # A context processor rather than a Jinja global: it leaves room for another
    # extension's csrf_token (Flask-WTF's) and does not create app.jinja_env early.
    if "csrf_token" in app.jinja_env.globals:
        return {}
    return {"csrf_token": csrf_token}
