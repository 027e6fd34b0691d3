"""Django integration: ``request.session`` backed by wsgisession.

:class:`SessionMiddleware` replaces ``django.contrib.sessions.middleware.SessionMiddleware``
in ``MIDDLEWARE``; the ``WSGISESSION`` setting holds the settings of
:func:`~wsgisession.from_config` (``SECRET_KEY`` is the default secret key)::

    MIDDLEWARE = [
        "wsgisession.contrib.django.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        ...
    ]
    WSGISESSION = {"store": "redis://localhost:6379/0", "max_age": 3600}

``request.session`` is then a :class:`DjangoSession`: the parts of Django's session
API that ``django.contrib.auth`` (``login()``, ``logout()``, ``get_user()``),
``django.contrib.messages`` and most apps use, over a :class:`~wsgisession.Session`.
``login()`` cycles the session id and ``logout()`` deletes the stored session.
Werkzeug errors raised in a view (``BadParam``, ``NotLoggedIn`` …) become Django
responses rather than 500s.

On its own the middleware runs the session for Django's views. WSGI middlewares
that need the session (:class:`~wsgisession.CsrfMiddleware`, guards), form
parameters read with :func:`~wsgisession.param`, and changes made while a streamed
response is produced need the session at the WSGI layer: use :func:`wrap` as well,
which the middleware then simply adopts.

Not supported, because expiry belongs to the middleware (``max_age``,
``absolute_max_age``): ``set_expiry()`` with anything but ``None``; the
``django.contrib.sessions`` engines, ``SESSION_*`` settings and the ``a*`` async
methods (this is a WSGI library).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import django.http as django_http
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .._frameworks import add_django_cookie, as_django_response
from ..config import from_config
from ..context import SESSION_KEY, bind, unbind
from ..errors import StoreUnavailable
from ..middleware import BROWSER_SESSION_TTL
from ..middleware import SessionMiddleware as WsgiSessionMiddleware
from ._view import SessionView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


__all__ = ["DjangoSession", "SessionMiddleware", "to_django_response", "wrap"]

_TEST_COOKIE_NAME = "testcookie"
_TEST_COOKIE_VALUE = "worked"


class DjangoSession(SessionView):
    """``request.session``: Django's session API over a :class:`~wsgisession.Session`.

    Supported: the mapping API (``get``, ``pop``, ``setdefault``, ``update``,
    ``keys`` …), ``has_key``, ``is_empty``, ``clear``, ``flush`` (ends the session
    now: :meth:`~wsgisession.Session.invalidate`), ``cycle_key`` (new id, same data:
    :meth:`~wsgisession.Session.regenerate`), ``session_key``, ``accessed``,
    ``modified``, ``save``/``delete``, the test-cookie trio and the expiry getters.
    ``set_expiry`` accepts only ``None``: expiry is the middleware's.

    :param session: The wsgisession session of the request.
    """

    def has_key(self, key: str) -> bool:
        """Whether *key* is set (Django's old spelling of ``key in session``)."""
        return key in self.session

    def is_empty(self) -> bool:
        """Whether the session holds no data."""
        return not self.session

    def clear(self) -> None:
        """Remove every key; data set afterwards gets a new session id."""
        self.session.clear()

    def flush(self) -> None:
        """End the session now: the stored session and the cookie are deleted.

        What ``django.contrib.auth.logout()`` calls.
        """
        self.session.invalidate()

    def cycle_key(self) -> None:
        """Keep the data under a new session id; what ``login()`` calls."""
        self.session.regenerate()

    def save(self, must_create: bool = False) -> None:
        """Nothing to do: the session is saved with the response when it changed.

        :param must_create: Ignored.
        """

    def delete(self, session_key: str | None = None) -> None:
        """End the session now, like :meth:`flush`.

        :param session_key: Must be ``None`` (the current session).
        :raises NotImplementedError: another session's key.
        """
        if session_key is not None:
            raise NotImplementedError("only the current session can be deleted")
        self.session.invalidate()

    @property
    def session_key(self) -> str | None:
        """An identifier of the stored session (not the cookie), or ``None``.

        ``None`` for the cookie store (nothing is stored) and for a session that
        has not been saved yet; it changes when the id does.
        """
        if self.session.new:
            return None
        key = getattr(self.session.state, "key", None)
        return key if isinstance(key, str) else None

    @property
    def accessed(self) -> bool:
        """Whether anything read or wrote the session during this request."""
        return self.session.accessed

    @property
    def modified(self) -> bool:
        """Whether the data changed, compared by content; setting it changes nothing."""
        return self.session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        pass

    # -- the test cookie -----------------------------------------------------

    def set_test_cookie(self) -> None:
        """Set a value that :meth:`test_cookie_worked` finds on the next request."""
        self[_TEST_COOKIE_NAME] = _TEST_COOKIE_VALUE

    def test_cookie_worked(self) -> bool:
        """Whether the client sent back the session :meth:`set_test_cookie` wrote."""
        return bool(self.get(_TEST_COOKIE_NAME) == _TEST_COOKIE_VALUE)

    def delete_test_cookie(self) -> None:
        """Remove the value :meth:`set_test_cookie` wrote."""
        del self[_TEST_COOKIE_NAME]

    # -- expiry (the middleware's) ---------------------------------------------

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds until the session expires if it is not used again.

        :param kwargs: Django's ``modification``/``expiry``; ignored.
        """
        return self.session.max_age or BROWSER_SESSION_TTL

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session expires if it is not used again (UTC).

        :param kwargs: Ignored, as for :meth:`get_expiry_age`.
        """
        return datetime.now(UTC) + timedelta(seconds=self.get_expiry_age())

    def get_expire_at_browser_close(self) -> bool:
        """Whether the cookie ends with the browser session (``max_age=None``)."""
        return self.session.max_age is None

    def get_session_cookie_age(self) -> int:
        """The idle timeout in seconds (``max_age``)."""
        return self.session.max_age or BROWSER_SESSION_TTL

    def set_expiry(self, value: Any) -> None:
        """Accepts ``None`` only: expiry is set once, on the middleware.

        :param value: ``None``.
        :raises NotImplementedError: any other value; set ``max_age`` or
            ``absolute_max_age`` in ``WSGISESSION`` instead.
        """
        if value is not None:
            raise NotImplementedError(
                "wsgisession sessions expire as the middleware says: set max_age or"
                " absolute_max_age in settings.WSGISESSION rather than calling set_expiry()"
            )


def _config(options: Mapping[str, Any]) -> dict[str, Any]:
    config = dict(getattr(settings, "WSGISESSION", None) or {})
    config.update(options)
    if not config.get("secret_key") and getattr(settings, "SECRET_KEY", None):
        config["secret_key"] = settings.SECRET_KEY
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", None)
    if "fallback_secret_keys" not in config and fallbacks:
        config["fallback_secret_keys"] = list(fallbacks)
    return config


def wrap(app: WSGIApplication, **options: Any) -> WsgiSessionMiddleware:
    """Wrap a Django WSGI application in :class:`~wsgisession.SessionMiddleware`.

    Settings come from ``settings.WSGISESSION``, then *options*, then
    ``WSGISESSION_*`` environment variables (see :func:`~wsgisession.from_config`);
    ``secret_key`` defaults to ``SECRET_KEY``. Keep :class:`SessionMiddleware` in
    ``MIDDLEWARE``: it adopts this session as ``request.session``. ::

        application = wrap(CsrfMiddleware(get_wsgi_application()))

    :param app: The WSGI application (``get_wsgi_application()``, maybe wrapped in
        guards or :class:`~wsgisession.CsrfMiddleware`).
    :param options: Settings overriding ``WSGISESSION``.
    :raises ConfigurationError: no secret key anywhere, or a bad setting.

    .. versionadded:: 0.1
    """
    return from_config(app, _config(options))


def to_django_response(
    response: Response | HTTPException, request: HttpRequest | None = None
) -> HttpResponse:
    """A werkzeug response or ``HTTPException`` as a Django ``HttpResponse``.

    :param response: What to convert (the body is read whole).
    :param request: The Django request, so that an error answers in JSON to a
        client that asks for it.
    """
    if isinstance(response, HTTPException):
        environ = request.META if request is not None else None
        response = response.get_response(environ)
    return cast("HttpResponse", as_django_response(django_http, response))


def _unused_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("the Django middleware runs sessions itself; nothing to call")


class SessionMiddleware:
    """Django middleware: ``request.session`` is a :class:`DjangoSession`.

    Configured by ``settings.WSGISESSION`` (see the module documentation). Inside
    :func:`wrap` it adopts the WSGI layer's session; otherwise it loads the session
    itself and adds ``Set-Cookie``/``Vary`` to the response when the session
    changed. In both cases :data:`wsgisession.session`, :func:`~wsgisession.login`,
    :func:`~wsgisession.messages` … work in views, and a werkzeug ``HTTPException``
    raised by a view becomes the Django response it describes.

    :param get_response: The rest of Django's middleware chain.
    :raises ConfigurationError: a bad ``WSGISESSION`` setting (at start-up).

    .. versionadded:: 0.1
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.middleware = from_config(_unused_app, _config({}))

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        environ = request.META
        adopted = environ.get(SESSION_KEY)
        if adopted is not None:
            request.session = DjangoSession(adopted)
            return self.get_response(request)
        session = self.middleware.open_session(environ)
        token = bind(environ)
        request.session = DjangoSession(session)
        try:
            response = self.get_response(request)
            try:
                headers = self.middleware.save_session(session)
            except StoreUnavailable as exc:
                return to_django_response(exc, request)
            for name, value in headers:
                if name == "Set-Cookie":
                    add_django_cookie(response, value)
                elif name == "Vary":
                    patch_vary_headers(response, ("Cookie",))
                elif not response.has_header(name):
                    response[name] = value
            return response
        finally:
            # Changes made while a streamed response is produced need wrap().
            self.middleware.close_session(session)
            unbind(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A werkzeug ``HTTPException`` from a view as its Django response, not a 500.

        :param request: The Django request.
        :param exception: What the view raised; anything else is left to Django.
        """
        if isinstance(exception, HTTPException):
            return to_django_response(exception, request)
        return None
