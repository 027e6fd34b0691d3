"""Fresh login: sensitive pages ask for a recent login, not just any login.

A session that logged in weeks ago on a shared computer should not be enough to
change the password or pay. :class:`FreshLogin` (a guard middleware) and
:func:`fresh_login_required` (a view decorator) let a request through only when its
:func:`~wsgisession.login` happened less than *max_age* seconds ago:

- not logged in at all: ``401`` (or the redirect to *location*), as with
  :class:`~wsgisession.Auth` / :class:`~wsgisession.AuthRedirect`;
- logged in, but too long ago: ``401`` with ``{"error": "login_not_fresh"}`` for a
  JSON client, or a ``303`` to *location* (the login page, with ``next=``) so the
  user re-enters the password and comes back.

The login time is the one :func:`~wsgisession.login` records (UTC), kept in the
signed cookie or the server record, so it cannot be moved by the client.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from .._frameworks import django_response_for
from .._options import count
from .._refusals import ErrorPage
from ..context import current_environ
from ..errors import NotLoggedIn
from ._paths import request_target
from .guards import GuardContext, _PathGuard
from .login import AuthInfo

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["FreshLogin", "LoginNotFresh", "fresh_login_required"]

F = TypeVar("F", bound=Callable[..., Any])


class LoginNotFresh(NotLoggedIn):
    """Logged in, but longer ago than the page allows: ``401``, log in again."""

    error_code = "login_not_fresh"

    def __init__(self, description: str = "Log in again to see this page.") -> None:
        super().__init__(description)


def _refusal(user: AuthInfo | None, max_age: int) -> HTTPException | None:
    if user is None:
        return NotLoggedIn()
    at = user.logged_in_at
    if at is None or time.time() - at.timestamp() > max_age:
        return LoginNotFresh()
    return None


def _redirect(location: str, environ: Any) -> Response:
    separator = "&" if "?" in location else "?"
    response = redirect(location + separator + urlencode({"next": request_target(environ)}), 303)
    response.headers["Cache-Control"] = "no-store"
    return response


class FreshLogin(_PathGuard):
    """Let a request through only when its login is at most *max_age* seconds old.

    ::

        app = FreshLogin(app, max_age=600, paths=["/account/password", "/pay"],
                         location="/login")

    :param app: The WSGI application to guard.
    :param max_age: How old (seconds) the login may be.
    :param paths: URL path prefixes the guard applies to; ``None`` (default): all.
    :param location: Redirect (303, with ``next=``) to this login page instead of
        answering ``401``.
    :param no_store: Send ``Cache-Control: no-store`` on the pages it guards, as
        :class:`~wsgisession.Auth` does.
    :param error_page: As for :class:`~wsgisession.Auth`: the page answering the
        ``401`` when there is no *location*.
    :raises ConfigurationError: *max_age* is not a positive int, a bad path, or
        *error_page* not callable.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        max_age: int,
        paths: str | Iterable[str] | None = None,
        location: str | None = None,
        no_store: bool = True,
        error_page: ErrorPage | None = None,
    ) -> None:
        super().__init__(app, paths, no_store, error_page)
        self.max_age = count("max_age", max_age, unit="seconds")
        self.location = location

    def refuse(self, ctx: GuardContext) -> WSGIApplication | None:
        """A 401 or a redirect to *location* when the login is missing or stale."""
        refusal = _refusal(ctx.user, self.max_age)
        if refusal is not None and self.location is not None:
            return _redirect(self.location, ctx.environ)
        return refusal


def fresh_login_required(*, max_age: int, location: str | None = None) -> Callable[[F], F]:
    """Decorate a view so it runs only when the login is at most *max_age* seconds old.

    Works on the same views as :func:`~wsgisession.login_required` (plain WSGI,
    Flask, Django)::

        @fresh_login_required(max_age=600, location="/login")
        def change_password(request): ...

    :param max_age: How old (seconds) the login may be.
    :param location: Redirect there (303, with ``next=``) instead of a ``401``.
    :raises ConfigurationError: *max_age* is not a positive int.
    """
    limit = count("max_age", max_age, unit="seconds")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            environ = current_environ()
            refusal = _refusal(GuardContext(environ).user, limit)
            if refusal is None:
                return view(*args, **kwargs)
            if location is not None:
                refusal = HTTPException(response=_redirect(location, environ))
            converted = django_response_for(args, refusal, environ)
            if converted is not None:
                return converted
            raise refusal

        return wrapper  # type: ignore[return-value]

    return decorate
