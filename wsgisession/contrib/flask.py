"""Flask integration: ``flask.session`` backed by wsgisession.

:func:`init_app` wraps ``app.wsgi_app`` in :class:`~wsgisession.SessionMiddleware`
and installs :class:`WsgiSessionInterface`, so code that uses ``flask.session``,
``flask.flash`` and ``get_flashed_messages`` keeps working, with our stores, expiry,
fixation defences and content-based saving (``session["cart"].append(x)`` is saved
without ``session.modified = True``)::

    from flask import Flask
    from wsgisession.contrib.flask import init_app

    app = Flask(__name__)
    app.secret_key = SECRET_KEY
    init_app(app, store="sqlite:///var/lib/myapp/sessions.sqlite3")

Flask's ``request.view_args`` become the path parameters of
:func:`~wsgisession.param`. Flask's own session cookie is never written.

Differences from Flask's cookie session, on purpose:

- lifetime is the middleware's ``max_age`` (idle) and ``absolute_max_age``, not
  ``PERMANENT_SESSION_LIFETIME``; ``session.permanent`` is accepted and ignored (it
  reads ``True`` when the cookie outlives the browser, i.e. ``max_age`` is set), so a
  ``before_request`` that sets it on every request does not create sessions;
- ``session.modified = True`` is accepted and unnecessary;
- ``SESSION_COOKIE_*`` settings do not apply: pass ``cookie_name``, ``secure`` …
  to :func:`init_app` or in ``app.config["WSGISESSION"]``.

WSGI middlewares that need the session (:class:`~wsgisession.CsrfMiddleware`,
guards) go on ``app.wsgi_app`` *before* :func:`init_app`, so that they run inside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Request
from flask.sessions import SessionInterface, SessionMixin

from ..config import from_config
from ..context import SESSION_KEY
from ..middleware import SessionMiddleware
from ..request.params import set_path_params
from ._view import SessionView

if TYPE_CHECKING:
    from flask.wrappers import Response

    from ..sessions import Session

__all__ = ["FlaskSession", "WsgiSessionInterface", "init_app"]

#: Where init_app keeps the middleware, in ``app.extensions``.
EXTENSION_KEY = "wsgisession"

#: The environ key of a session opened outside a request (a session transaction).
_DETACHED_KEY = "wsgisession.flask.detached"


class FlaskSession(SessionView, SessionMixin):
    """``flask.session``: Flask's session API over a :class:`~wsgisession.Session`.

    Every mapping operation goes to the wsgisession session (:attr:`session`), which
    is also :data:`wsgisession.session` during the request. :meth:`clear`,
    :meth:`regenerate` and :meth:`invalidate` are the wsgisession ones.

    :param session: The wsgisession session of the request.
    :param persistent: Whether the cookie outlives the browser (``max_age`` set).
    """

    def __init__(self, session: Session, *, persistent: bool) -> None:
        super().__init__(session)
        self._persistent = persistent

    def clear(self) -> None:
        """Remove every key; data set afterwards gets a new session id."""
        self.session.clear()

    def regenerate(self) -> None:
        """Keep the data under a new session id (call it when privileges change)."""
        self.session.regenerate()

    def invalidate(self) -> None:
        """End the session now, in the store too (logout)."""
        self.session.invalidate()

    @property
    def permanent(self) -> bool:
        """``True`` when the session cookie outlives the browser.

        Setting it is accepted for compatibility and changes nothing: the lifetime
        is the middleware's ``max_age``.
        """
        return self._persistent

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass

    @property
    def new(self) -> bool:  # type: ignore[override]
        """``True`` when the client had no valid session (loads the session)."""
        return self.session.new

    @property
    def modified(self) -> bool:
        """Whether the data changed, compared by content; setting it changes nothing."""
        return self.session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        pass

    @property
    def accessed(self) -> bool:
        """Whether anything read or wrote the session during this request."""
        return self.session.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask sets it on every use of flask.session; the session knows better.
        pass


class WsgiSessionInterface(SessionInterface):
    """A Flask session interface that hands out the wsgisession session.

    Inside :class:`~wsgisession.SessionMiddleware` it opens the request's session
    and never writes a cookie itself: the middleware does. Outside a request (Flask's
    ``client.session_transaction()``) it loads the session from the request's cookie
    through *middleware* and writes it back with a ``Set-Cookie`` header.

    :param middleware: The middleware :func:`init_app` wrapped the app in.
    """

    def __init__(self, middleware: SessionMiddleware) -> None:
        self.middleware = middleware

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        """The request's session, not loaded until used."""
        environ = request.environ
        session = environ.get(SESSION_KEY)
        if session is None:
            session = self.middleware.open_session(environ)
            environ[_DETACHED_KEY] = session
        return FlaskSession(session, persistent=self.middleware.cookie.max_age is not None)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Nothing in a request (the middleware saves); a session transaction saves here."""
        if not isinstance(session, FlaskSession):
            return
        environ = session.session.environ or {}
        if environ.get(_DETACHED_KEY) is session.session:
            for name, value in self.middleware.save_session(session.session):
                if name == "Set-Cookie":
                    response.headers.add(name, value)


def _options(app: Flask, options: Mapping[str, Any]) -> dict[str, Any]:
    settings = dict(app.config.get("WSGISESSION") or {})
    settings.update(options)
    if not settings.get("secret_key") and app.secret_key:
        settings["secret_key"] = app.secret_key
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS")
    if "fallback_secret_keys" not in settings and fallbacks:
        settings["fallback_secret_keys"] = fallbacks
    return settings


def init_app(app: Flask, **options: Any) -> SessionMiddleware:
    """Back ``flask.session`` with wsgisession and wrap ``app.wsgi_app``.

    Settings are those of :func:`~wsgisession.from_config` (or the keyword
    arguments of :class:`~wsgisession.SessionMiddleware`: ``store`` may be a store
    or a URL), taken from ``app.config["WSGISESSION"]`` (a dict), then *options*,
    then ``WSGISESSION_*`` environment variables. ``secret_key`` defaults to
    ``app.secret_key`` and ``fallback_secret_keys`` to ``SECRET_KEY_FALLBACKS``.

    ::

        init_app(app, store="redis://localhost:6379/0", max_age=3600)

    :param app: The Flask application.
    :param options: Settings as above.
    :returns: The middleware now in ``app.wsgi_app`` (also in
        ``app.extensions["wsgisession"]``).
    :raises ConfigurationError: no secret key anywhere, or a bad setting.

    .. versionadded:: 0.1
    """
    middleware = from_config(app.wsgi_app, _options(app, options))
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.session_interface = WsgiSessionInterface(middleware)
    app.extensions[EXTENSION_KEY] = middleware
    app.url_value_preprocessor(_path_params)
    return middleware


def _path_params(endpoint: str | None, values: dict[str, Any] | None) -> None:
    set_path_params(values or {})
