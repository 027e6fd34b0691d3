"""The guards as decorators of one view: :func:`login_required` and :func:`guarded`.

The view-sized form of :class:`~wsgisession.Auth` and :class:`~wsgisession.Guard`
(see :mod:`wsgisession.access.guards`), for any framework: a plain WSGI callable, a
Flask view, a Django view (function or method).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from werkzeug.exceptions import HTTPException

from .._frameworks import django_response_for
from ..context import current_environ
from ..errors import AccessDenied, ConfigurationError
from .guards import GuardContext, _auth_refusal
from .login import role_set

__all__ = ["guarded", "login_required"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_before(view: F, check: Callable[[GuardContext], HTTPException | None]) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        environ = current_environ()
        refusal = check(GuardContext(environ))
        if refusal is not None:
            response = django_response_for(args, refusal, environ)
            if response is not None:
                return response
            raise refusal
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@overload
def login_required(view: F, /) -> F: ...


@overload
def login_required(
    *, roles: str | Iterable[str] = (), require_all: bool = False
) -> Callable[[F], F]: ...


def login_required(
    view: F | None = None,
    /,
    *,
    roles: str | Iterable[str] = (),
    require_all: bool = False,
) -> F | Callable[[F], F]:
    """Decorate one view so that it runs only for a logged-in user (with *roles*).

    Works on any callable run inside :class:`~wsgisession.SessionMiddleware`: a plain
    WSGI application, a Flask view, a Django view (function or method). The check
    happens before the view is called:

    - not logged in: raises :class:`~wsgisession.errors.NotLoggedIn` (a werkzeug
      ``Unauthorized``, 401);
    - lacking the role(s): raises :class:`~wsgisession.errors.AccessDenied` (a
      werkzeug ``Forbidden``, 403).

    Flask renders these natively; :class:`~wsgisession.SessionMiddleware` renders
    them for a plain WSGI app. A Django view gets the same answer as a Django
    ``HttpResponse``, since Django would turn the exception into a 500.

    ::

        @login_required
        def account(request): ...

        @login_required(roles=["admin"])
        def admin(request): ...

    :param view: The view, when used bare as ``@login_required``.
    :param roles: Role names; a single ``str`` is one role. Empty: any logged-in user.
    :param require_all: Need every role in *roles* rather than any one of them.
    :raises ConfigurationError: a role that is not a non-empty ``str``.
    """
    wanted = role_set(roles, configuring=True)

    def decorate(view: F) -> F:
        return _check_before(view, lambda ctx: _auth_refusal(ctx.user, wanted, require_all))

    return decorate if view is None else decorate(view)


def guarded(test: Callable[[GuardContext], bool]) -> Callable[[F], F]:
    """Decorate one view so that it runs only when ``test(ctx)`` is true.

    The view-sized :class:`Guard`: a false result raises
    :class:`~wsgisession.errors.AccessDenied` (a werkzeug ``Forbidden``, 403), with
    the same framework support as :func:`login_required`.

    ::

        @guarded(lambda ctx: ctx.user is not None and ctx.user.extra.get("verified"))
        def payouts(request): ...

    :param test: Called with a :class:`GuardContext` before the view.
    :raises ConfigurationError: *test* is not callable.
    """
    if not callable(test):
        raise ConfigurationError(f"test must be a callable taking a GuardContext: {test!r}")

    def check(ctx: GuardContext) -> HTTPException | None:
        return None if test(ctx) else AccessDenied()

    def decorate(view: F) -> F:
        return _check_before(view, check)

    return decorate
