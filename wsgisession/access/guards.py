"""Guards: test the request and the session before the application runs.

A guard wraps a WSGI application (or, as a decorator, one view) and refuses a
request whose test fails, before any of your code runs:

- :class:`Guard` runs any ``test(ctx) -> bool`` on a :class:`GuardContext`
  (environ, werkzeug request, session, logged-in user) and answers ``403`` (or your
  ``deny`` response) when it is false;
- :class:`Auth` lets only logged-in users through (see :func:`~wsgisession.login`):
  ``401`` for anyone else, ``403`` for a user without the required role;
- :class:`AuthRedirect` sends a visitor who is not logged in to the login page with
  a 303, remembering where they were going in ``next=`` (always a same-site path:
  read it back with :func:`safe_next`);
- :func:`~wsgisession.login_required` and :func:`~wsgisession.guarded` do the same
  for a single view of any framework (a plain WSGI callable, a Flask view, a Django
  view); they live in ``_view_guards``.

``paths`` limits a guard to URL path prefixes, matched on segment boundaries
(``/admin`` covers ``/admin/users``, not ``/administrator``) and on the normalized
path too, so ``//admin`` or ``/x/../admin`` cannot slip past. Guards compose by
nesting and run outside-in; all of them go inside
:class:`~wsgisession.SessionMiddleware`::

    app = SessionMiddleware(
        AuthRedirect(Auth(app, roles=["admin"], paths=["/admin"]), paths=["/account"]),
        secret_key=SECRET_KEY,
    )

When *not* to use them: a path guard protects URLs, not data. If the same data is
reachable under another path (an API, an export), guard that too, or check
:func:`~wsgisession.current_user` where the data is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.utils import redirect
from werkzeug.wrappers import Request

from .._options import check_bool
from .._refusals import ErrorPage, answer_refusal, check_error_page
from ..context import get_session
from ..errors import AccessDenied, ConfigurationError, NotLoggedIn, _wants_json
from ..request._forms import form_data
from ._paths import PathPrefixes, request_path, request_target, safe_next
from .login import AuthInfo, current_user, role_set

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.datastructures import FileStorage, MultiDict

    from ..sessions import Session

__all__ = [
    "Auth",
    "AuthRedirect",
    "Guard",
    "GuardContext",
    "safe_next",
]


class _GuardRequest(Request):
    # A guard runs before the application: reading the form must leave the body
    # for it, so the form comes from the shared, body-preserving parser. Its public
    # attributes are overridden, not werkzeug's private _load_form_data hook.
    @cached_property
    def _form_and_files(self) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        return form_data(self.environ)

    @cached_property
    def form(self) -> MultiDict[str, str]:  # type: ignore[override]
        """The form fields, read without consuming the body."""
        return self._form_and_files[0]

    @cached_property
    def files(self) -> MultiDict[str, FileStorage]:  # type: ignore[override]
        """The uploaded files, read without consuming the body."""
        return self._form_and_files[1]


class GuardContext:
    """What a guard's test gets: the request, its session and who is logged in.

    Everything but :attr:`environ` is built on first use, so a test that only looks
    at a header costs no session load.

    :param environ: The WSGI environ of the request being tested.
    """

    def __init__(self, environ: WSGIEnvironment) -> None:
        #: The WSGI environ.
        self.environ = environ

    @cached_property
    def request(self) -> Request:
        """A werkzeug :class:`~werkzeug.wrappers.Request`.

        Its ``form`` and ``files`` leave the body readable for the application;
        do not read ``get_data()`` or ``stream``, which would consume it.
        """
        return _GuardRequest(self.environ)

    @cached_property
    def session(self) -> Session:
        """The request's :class:`~wsgisession.Session`."""
        return get_session(self.environ)

    @cached_property
    def user(self) -> AuthInfo | None:
        """The logged-in user (:func:`~wsgisession.current_user`), or ``None``."""
        return current_user(self.environ)


def _auth_refusal(
    user: AuthInfo | None, roles: frozenset[str], require_all: bool
) -> HTTPException | None:
    if user is None:
        return NotLoggedIn()
    if user.has_roles(roles, require_all=require_all):
        return None
    names = " and ".join(repr(r) for r in sorted(roles))
    if len(roles) == 1:
        return AccessDenied(f"This page needs the role {names}.")
    if require_all:
        return AccessDenied(f"This page needs the roles {names}.")
    return AccessDenied(f"This page needs one of the roles {names.replace(' and ', ', ')}.")


def _no_store(
    start_response: StartResponse,
    status: str,
    headers: list[tuple[str, str]],
    exc_info: OptExcInfo | None = None,
) -> Any:
    headers = [(k, v) for k, v in headers if k.lower() != "cache-control"]
    headers.append(("Cache-Control", "no-store"))
    return start_response(status, headers, exc_info)


class _PathGuard:
    """The part every guard shares: the path filter, no-store, answering a refusal."""

    def __init__(
        self,
        app: WSGIApplication,
        paths: str | Iterable[str] | None,
        no_store: bool,
        error_page: ErrorPage | None,
    ) -> None:
        self.app = app
        self.paths = None if paths is None else PathPrefixes(paths, "paths")
        self.no_store = check_bool("no_store", no_store)
        self.error_page = check_error_page(error_page)

    def refuse(self, ctx: GuardContext) -> WSGIApplication | None:
        """The response for a refused request, or ``None`` to let it through."""
        raise NotImplementedError

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.paths is None or self.paths.covers(environ):
            if self.no_store:
                # A page only some may see must not be kept by the browser: after
                # logout, Back would show it again from the cache.
                start_response = partial(_no_store, start_response)
            try:
                refusal = self.refuse(GuardContext(environ))
            except HTTPException as exc:
                refusal = exc
            if isinstance(refusal, HTTPException):
                return answer_refusal(refusal, environ, start_response, self.error_page)
            if refusal is not None:
                return refusal(environ, start_response)
        return self.app(environ, start_response)


class Guard(_PathGuard):
    """Let a request through only when ``test(ctx)`` is true.

    ::

        def from_office(ctx: GuardContext) -> bool:
            return ctx.environ.get("REMOTE_ADDR", "").startswith("10.1.")

        app = Guard(app, from_office, paths=["/internal"])

    :param app: The WSGI application to guard.
    :param test: Called with a :class:`GuardContext`; a false result refuses the
        request. It may also raise a werkzeug ``HTTPException`` (``NotFound`` to hide
        a page, say), which becomes the response.
    :param paths: URL path prefixes the guard applies to; ``None`` (default): all.
    :param deny: The response when the test fails: any WSGI application, such as a
        werkzeug ``Response``. Default: ``403 Forbidden`` in plain text (JSON for a
        client that asks for it).
    :param error_page: ``error_page(refusal, environ)`` returns the WSGI application
        (a werkzeug ``Response``, say) that answers a refusal without *deny*: the
        ``403``, or the ``HTTPException`` the test raised. A client that prefers
        JSON still gets the JSON body. ``None`` (default): one line of plain text.
    :param no_store: Send ``Cache-Control: no-store`` (replacing the app's own) on
        every response of the guarded paths, so that a browser keeps no copy of a
        page that needed the guard: after logout, Back does not show it again.
    :raises ConfigurationError: *test* or *deny* is not callable, or a path does not
        start with ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        test: Callable[[GuardContext], bool],
        *,
        paths: str | Iterable[str] | None = None,
        deny: WSGIApplication | None = None,
        no_store: bool = True,
        error_page: ErrorPage | None = None,
    ) -> None:
        if not callable(test):
            raise ConfigurationError(f"test must be a callable taking a GuardContext: {test!r}")
        if deny is not None and not callable(deny):
            raise ConfigurationError(f"deny must be a WSGI application (a Response): {deny!r}")
        super().__init__(app, paths, no_store, error_page)
        self.test = test
        self.deny = deny

    def refuse(self, ctx: GuardContext) -> WSGIApplication | None:
        """*deny* (or a 403) when the test fails, else ``None``."""
        if self.test(ctx):
            return None
        return self.deny if self.deny is not None else AccessDenied()


class Auth(_PathGuard):
    """Let only logged-in users (with the required roles) through.

    - not logged in: ``401 Unauthorized`` with ``WWW-Authenticate: Cookie``;
    - logged in without the role(s): ``403 Forbidden``, naming the role(s).

    Both are one line of plain text, or ``{"error": …, "message": …}`` for a client
    whose ``Accept`` prefers JSON. For pages a browser visits, :class:`AuthRedirect`
    (outside) turns the 401 into a redirect to the login page.

    ::

        app = Auth(app, roles=["admin"], paths=["/admin"])

    :param app: The WSGI application to guard.
    :param roles: Role names (see :func:`~wsgisession.login`); a single ``str`` is
        one role. Empty (default): any logged-in user.
    :param require_all: Need every role in *roles* rather than any one of them.
    :param paths: URL path prefixes the guard applies to; ``None`` (default): all.
    :param no_store: Send ``Cache-Control: no-store`` (replacing the app's own) on
        every response of the guarded paths, so that a browser keeps no copy of a
        page that needed the guard: after logout, Back does not show it again.
    :param error_page: ``error_page(refusal, environ)`` returns the WSGI application
        that answers the ``401`` or ``403`` (the refusal, a
        :class:`~wsgisession.errors.NotLoggedIn` or
        :class:`~wsgisession.errors.AccessDenied`, carries ``code`` and
        ``description``) for a client that does not prefer JSON. ``None``
        (default): one line of plain text.
    :raises ConfigurationError: a path does not start with ``/``, or *error_page* is
        not callable.
    :raises TypeError: a role that is not a non-empty ``str``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        roles: str | Iterable[str] = (),
        require_all: bool = False,
        paths: str | Iterable[str] | None = None,
        no_store: bool = True,
        error_page: ErrorPage | None = None,
    ) -> None:
        super().__init__(app, paths, no_store, error_page)
        self.roles = role_set(roles, configuring=True)
        self.require_all = require_all

    def refuse(self, ctx: GuardContext) -> WSGIApplication | None:
        """401 or 403 as described above, or ``None``."""
        return _auth_refusal(ctx.user, self.roles, self.require_all)


class AuthRedirect(Auth):
    """Send visitors who are not logged in to the login page.

    A browser that is not logged in gets ``303 See Other`` to *location* with
    ``next=`` set to the path and query it asked for, so the login page can send the
    user back (pass ``next`` through :func:`safe_next` first). ``next`` is only ever
    a same-site path: a request for ``//evil.example`` gets ``next=/``.

    A client whose ``Accept`` prefers JSON (an API client, a ``fetch``) gets the
    ``401`` JSON of :class:`Auth` instead: a redirect to an HTML form is no use to it.
    A logged-in user without the required role gets ``403``, as with :class:`Auth`:
    logging in again would not help them, and a redirect would hide why.
    The login page itself is never redirected, even when *paths* cover it, when it
    is on this site: a login *location* that is an absolute URL (a single sign-on
    server) exempts no local path.

    ::

        app = AuthRedirect(app, location="/login", paths=["/account", "/admin"])

    :param app: The WSGI application to guard.
    :param location: The login page: a path (``"/login"``) or an absolute URL.
    :param roles: As for :class:`Auth`.
    :param require_all: As for :class:`Auth`.
    :param paths: URL path prefixes the guard applies to; ``None`` (default): all.
    :param no_store: As for :class:`Auth`.
    :param error_page: As for :class:`Auth` (it answers the ``403``; the redirect
        stays a redirect).
    :raises ConfigurationError: an empty *location*, or a path not starting with ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        location: str = "/login",
        *,
        roles: str | Iterable[str] = (),
        require_all: bool = False,
        paths: str | Iterable[str] | None = None,
        no_store: bool = True,
        error_page: ErrorPage | None = None,
    ) -> None:
        if not isinstance(location, str) or not location:
            raise ConfigurationError(f"location must be the login page's URL, not {location!r}")
        super().__init__(
            app,
            roles=roles,
            require_all=require_all,
            paths=paths,
            no_store=no_store,
            error_page=error_page,
        )
        self.location = location
        parts = urlsplit(location)
        # Only a page of this site is exempt: the path of another host's URL
        # (https://sso.example.com/start) says nothing about ours.
        self._login_path = None if parts.scheme or parts.netloc else unquote(parts.path or "/")

    def refuse(self, ctx: GuardContext) -> WSGIApplication | None:
        """A 303 to the login page, a 403, or ``None``."""
        environ = ctx.environ
        path = request_path(environ)
        if self._login_path is not None and path is not None:
            script_name = request_path({"PATH_INFO": environ.get("SCRIPT_NAME", "")}) or ""
            if self._login_path in (path, script_name + path):
                return None  # the login page must stay reachable, or the redirect loops
        refusal = super().refuse(ctx)
        if not isinstance(refusal, NotLoggedIn) or _wants_json(environ):
            return refusal
        separator = "&" if "?" in self.location else "?"
        url = self.location + separator + urlencode({"next": request_target(environ)})
        response = redirect(url, 303)
        response.headers["Cache-Control"] = "no-store"
        return response
