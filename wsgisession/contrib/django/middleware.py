"""The Django middleware, ``wrap()`` for the WSGI layer, and werkzeug errors as responses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import django.http as django_http
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core import checks
from django.core.handlers.wsgi import get_str_from_wsgi
from django.http import HttpRequest, HttpResponse, HttpResponseBase, parse_cookie
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import http_date
from werkzeug.exceptions import HTTPException
from werkzeug.http import dump_cookie
from werkzeug.wrappers import Response

from ..._frameworks import as_django_response
from ..._refusals import refusal_response
from ...access.devices import record_login
from ...context import SESSION_KEY, bind, unbind
from ...cookies import request_cookies
from ...errors import StoreUnavailable
from ...migration import MIGRATED_KEY
from . import _config
from ._migration import adopt_lifetime
from .engine import SessionStore
from .session import DjangoSession

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ...cookies import CookieOptions
    from ...middleware import SessionMiddleware as CoreMiddleware
    from ...sessions import CookieWrite

__all__ = ["SessionMiddleware", "to_django_response", "wrap"]

log = logging.getLogger("wsgisession")

ENGINE = "wsgisession.contrib.django.engine"
_OWNED = "wsgisession.contrib.django.session"
_OPENED = "wsgisession.contrib.django.opened"
#: The middleware of wrap(), so the session adopted from it is saved by it.
_WRAPPED = "wsgisession.contrib.django.wrapped"


def wrap(app: WSGIApplication, **options: Any) -> CoreMiddleware:
    """Wrap a Django WSGI application in :class:`~wsgisession.SessionMiddleware`.

    Settings come from Django's ``SESSION_*`` settings, then ``settings.WSGISESSION``,
    then *options*, then ``WSGISESSION_*`` environment variables (see
    :func:`~wsgisession.from_config`); ``secret_key`` defaults to ``SECRET_KEY``.
    Keep :class:`SessionMiddleware` in ``MIDDLEWARE``: it adopts this session as
    ``request.session``. ::

        application = wrap(CsrfMiddleware(get_wsgi_application()))

    :param app: The WSGI application (``get_wsgi_application()``, maybe wrapped in
        guards or :class:`~wsgisession.CsrfMiddleware`).
    :param options: Settings overriding ``WSGISESSION``.
    :raises ConfigurationError: no secret key anywhere, or a bad setting.
    """

    def marked(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[_WRAPPED] = middleware
        return app(environ, start_response)

    middleware = _config.build(marked, options)
    return middleware


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


def _environ_for(request: HttpRequest, name: str) -> WSGIEnvironment:
    """The environ the session is opened from: the request's, unless Django disagrees.

    The session cookie is read by wsgisession's own parser, exactly as the core
    middleware reads it (a cookie under a look-alike name is not the session, a
    header that is not UTF-8 is no 500). Two cases need another environ:

    - Tests set ``request.COOKIES[...]`` on a ``RequestFactory`` request: the
      session must see that value, so it gets a copy whose ``Cookie`` header says so.
    - Django's parser strips characters from cookie names that ours keeps
      (``\u00a0sessionid`` is ``sessionid`` to Django), so the two can disagree
      about which value is the session cookie. Then neither is trusted: the
      session starts fresh, as for two cookies of one name.
    """
    environ: WSGIEnvironment = request.META
    value = request.COOKIES.get(name)
    ours = request_cookies(environ)
    if value != _django_cookies(environ).get(name):
        # Set by code, not sent by the client: a test's RequestFactory request.
        cookies = [(key, item) for key, item in request.COOKIES.items()]
    elif ours.getlist(name) == ([] if value is None else [value]):
        return environ
    else:
        log.warning(
            "Django and wsgisession read the %r cookie differently (a look-alike"
            " name, or several cookies of that name); trusting neither, starting a"
            " fresh session",
            name,
        )
        cookies = [(key, item) for key, item in ours.items(multi=True) if key != name]
    fixed = {key: item for key, item in environ.items() if not key.startswith("wsgisession.")}
    fixed["HTTP_COOKIE"] = "; ".join(dump_cookie(key, item, path=None) for key, item in cookies)
    return fixed


def _django_cookies(environ: WSGIEnvironment) -> dict[str, str]:
    """The cookies as Django's ``request.COOKIES`` reads them from the header."""
    return cast("dict[str, str]", parse_cookie(get_str_from_wsgi(environ, "HTTP_COOKIE", "")))


class SessionMiddleware(DjangoSessionMiddleware):  # type: ignore[misc]
    """Django middleware: ``request.session`` is a :class:`DjangoSession`.

    A subclass of Django's own, so ``django.contrib.admin``'s check (``admin.E410``)
    and code that looks for it find it. Configured by Django's ``SESSION_*`` settings
    and ``settings.WSGISESSION`` (see the package documentation). Inside :func:`wrap`
    it adopts the WSGI layer's session; otherwise it opens the session itself and
    sets the cookie on the response (``response.cookies``) when the session
    changed, except on a 5xx response, whose session changes are dropped. In both
    cases :data:`wsgisession.session`, :func:`~wsgisession.login`,
    :func:`~wsgisession.flash` … work in views, and a werkzeug ``HTTPException``
    raised by a view becomes the Django response it describes; a store outage
    (:class:`~wsgisession.errors.StoreUnavailable`) is answered by
    ``WSGISESSION["error_page"]`` when it is set, as the core middleware does.

    ``process_request``/``process_response`` work on their own too, as in tests
    that drive the middleware with ``RequestFactory``.

    :param get_response: The rest of Django's middleware chain.
    :raises ConfigurationError: a bad ``WSGISESSION`` setting (at start-up).
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        MiddlewareMixin.__init__(self, get_response)
        # As Django's reads SESSION_ENGINE: once. A bad setting fails now.
        self.core = _config.core_middleware()
        self.SessionStore = SessionStore

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        refused = self.process_request(request)
        if refused is not None:
            return refused
        try:
            response = self.get_response(request)
        except BaseException:
            self._finish(request, discard=True)
            raise
        return self.process_response(request, response)

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        """Open the session: ``request.session``, :data:`wsgisession.session`.

        :param request: The Django request.
        :returns: ``None``, or the ``400`` for a request that sends its session in
            both the session header and the cookie
            (:class:`~wsgisession.errors.AmbiguousSession`), as the core middleware
            answers it.
        """
        environ = request.META
        adopted = environ.get(SESSION_KEY)
        if adopted is not None and environ.get(_OWNED) is not adopted:
            request.session = DjangoSession(
                adopted, environ.get(_WRAPPED), saved_by_wsgi_layer=True
            )
            return None
        middleware = self.core
        refusal = middleware.refusal_for(environ)
        if refusal is not None:
            return to_django_response(refusal, request)
        cookie = middleware.cookie
        session_environ = environ if cookie is None else _environ_for(request, cookie.name)
        session = middleware.open_session(session_environ)
        environ[_OWNED] = session_environ[_OWNED] = session
        request.session = DjangoSession(session, middleware)
        environ[_OPENED] = (session, bind(session_environ), middleware)
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """Save the session (not on a 5xx response) and set or delete its cookie.

        :param request: The Django request.
        :param response: The response so far.
        :raises SessionInterrupted: the session was ended (by a logout in another
            request) while this request changed it; Django answers 400.
        """
        view = getattr(request, "session", None)
        opened = request.META.get(_OPENED)
        if not isinstance(view, DjangoSession):
            # A view put another engine's session in request.session.
            self._finish(request, discard=False)
            return cast("HttpResponseBase", super().process_response(request, response))
        if opened is None:
            if view.session.accessed:
                adopt_lifetime(view)  # Django's set_expiry(), before wrap() saves the session
            return response  # the WSGI layer's session: wrap() saves it
        failed = response.status_code >= 500
        try:
            if failed:
                # Django drops the session changes of a failed request.
                if view.session.accessed:
                    patch_vary_headers(response, view.middleware.vary)
                return response
            if _config.save_every_request() and not view.session.new and not view.is_empty():
                view.session.reissue()
            wrote = view.written  # not modified: no serialization before the save
            try:
                used, cookie = view.save_cookie()
            except UpdateError:
                raise SessionInterrupted(
                    "The request's session was deleted before the request completed."
                    " The user may have logged out in a concurrent request, for example."
                ) from None
            except StoreUnavailable as exc:
                failed = True  # nothing more to save: the store is down
                return self._outage(request, exc)
            if used:
                self._apply(request, response, view, cookie)
            options = view.middleware.cookie
            if options is None or view.session.transport == "header":
                return response
            ended = wrote and view.is_empty() and options.name not in response.cookies
            if ended and options.name in request.COOKIES:
                # An ended session whose cookie did not verify: Django deletes it too.
                _delete_cookie(response, options)
            return response
        finally:
            self._finish(request, discard=failed)

    @staticmethod
    def _finish(request: HttpRequest, *, discard: bool) -> None:
        opened = request.META.pop(_OPENED, None)
        if opened is None:
            return
        session, token, middleware = opened
        if discard:
            unbind(token)
        else:
            try:
                # Changes made while a streamed response is produced need wrap().
                middleware.close_session(session)
            finally:
                unbind(token)

    @staticmethod
    def _apply(
        request: HttpRequest,
        response: HttpResponseBase,
        view: DjangoSession,
        cookie: CookieWrite | None,
    ) -> None:
        # Through response.set_cookie/delete_cookie, as Django's middleware does, so
        # the test client (which reads response.cookies) and other middlewares see it;
        # from the save's own values, never a Set-Cookie string parsed back.
        middleware = view.middleware
        patch_vary_headers(response, middleware.vary)
        if cookie is None:
            return
        if middleware.no_store and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        old = (view.session.environ or {}).get(MIGRATED_KEY)
        if old is not None:  # a carried-over session: the old system's cookie goes
            response.delete_cookie(old.name, path=old.path, domain=old.domain)
        value, max_age, _ = cookie
        if middleware.header is not None and view.session.transport == "header":
            # The session header: the value as it is; empty when the session ended.
            response[middleware.header] = value or ""
            return
        options = middleware.cookie
        assert options is not None  # a session without the header travels in the cookie
        if value is None:
            _delete_cookie(response, options)
            return
        response.set_cookie(
            options.name,
            value,
            max_age=max_age,
            expires=None if max_age is None else http_date(time.time() + max_age),
            path=options.path,
            domain=options.domain,
            secure=options.secure if options.secure is not None else request.is_secure(),
            httponly=options.httponly or None,
            samesite=options.samesite,
        )

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A werkzeug ``HTTPException`` from a view as its Django response, not a 500.

        A :class:`~wsgisession.errors.StoreUnavailable` drops the session's changes
        and answers ``503`` with ``WSGISESSION["error_page"]`` (JSON to a client that
        prefers it, ``Retry-After`` kept), or the one-line default.

        :param request: The Django request.
        :param exception: What the view raised; anything else is left to Django.
        """
        if isinstance(exception, StoreUnavailable):
            self._finish(request, discard=True)  # the store is down: save nothing
            return self._outage(request, exception)
        if isinstance(exception, HTTPException):
            return to_django_response(exception, request)
        return None

    def _outage(self, request: HttpRequest, refusal: StoreUnavailable) -> HttpResponse:
        # The 503 of a store outage, on the error_page setting as the core middleware
        # answers it (JSON for a client that prefers it, Retry-After kept).
        view = getattr(request, "session", None)
        middleware = view.middleware if isinstance(view, DjangoSession) else self.core
        answer = refusal_response(refusal, request.META, middleware.error_page)
        return to_django_response(answer, request)


def _delete_cookie(response: HttpResponseBase, options: CookieOptions) -> None:
    response.delete_cookie(
        options.name, path=options.path, domain=options.domain, samesite=options.samesite
    )


def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``wsgisession.W001``: our middleware with another ``SESSION_ENGINE``."""
    from django.conf import settings

    middleware = f"{__package__}.SessionMiddleware"
    if middleware in settings.MIDDLEWARE and settings.SESSION_ENGINE != ENGINE:
        return [
            checks.Warning(
                f"{middleware} is in MIDDLEWARE but SESSION_ENGINE is"
                f" {settings.SESSION_ENGINE!r}: the test client (client.login(),"
                " client.session) and clearsessions would use another session store.",
                hint=f'Set SESSION_ENGINE = "{ENGINE}".',
                id="wsgisession.W001",
            )
        ]
    return []


checks.register(check_session_engine, checks.Tags.compatibility)


def record_django_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: record the login as a device, if tracking is on.

    Django's ``login()`` has already moved the session to a new key
    (``cycle_key()``) when it sends the signal.
    """
    view = getattr(request, "session", None)
    if not isinstance(view, DjangoSession):
        return
    pk = user.pk
    if isinstance(pk, bool) or not isinstance(pk, str | int | UUID):
        pk = str(pk)
    record_login(pk, view.session.environ)


user_logged_in.connect(record_django_login, dispatch_uid="wsgisession.contrib.django.devices")
