"""Where the current request's session lives, for code that has no environ at hand.

:class:`~wsgisession.SessionMiddleware` (and :class:`~wsgisession.RequestScope`)
bind the WSGI environ to a :class:`~contextvars.ContextVar` for the duration of the
request, body iteration included, and unbind it when the response is closed. Each
thread (and each asyncio task or greenlet) sees only its own request.

:data:`session` is a werkzeug :class:`~werkzeug.local.LocalProxy` over that variable;
:func:`get_session` is the explicit form for code that has the environ. :data:`at`,
the request scope, is the same over a dict kept in the environ.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, cast

from werkzeug.local import LocalProxy

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from _typeshed.wsgi import WSGIEnvironment

    from .sessions import Session

__all__ = ["at", "bind", "current_environ", "get_session", "request_scope", "session", "unbind"]

#: The environ key under which the current request's :class:`Session` is kept.
SESSION_KEY = "wsgisession.session"

#: The environ key of the request scope (:data:`at`), set on its first use only.
AT_KEY = "wsgisession.at"

_environ: ContextVar[WSGIEnvironment | None] = ContextVar("wsgisession.environ", default=None)

_WRAP_HINT = "wrap your WSGI app in wsgisession.SessionMiddleware"


def bind(environ: WSGIEnvironment | None) -> Token[WSGIEnvironment | None]:
    """Make *environ* the current request's environ; returns the token for :func:`unbind`.

    ``bind(None)`` makes sure no request is current (a test fixture's clean slate).
    """
    return _environ.set(environ)


def unbind(token: Token[WSGIEnvironment | None]) -> None:
    """Undo :func:`bind`. Safe when called from another context than the bind."""
    try:
        _environ.reset(token)
    except ValueError:  # a server that closes the response in another thread or context
        _environ.set(None)


def current_environ() -> WSGIEnvironment:
    """The WSGI environ of the request being handled.

    :raises RuntimeError: no request is being handled in this thread or task.
    """
    environ = _environ.get()
    if environ is None:
        raise RuntimeError(f"no request is being handled here: {_WRAP_HINT} (or RequestScope)")
    return environ


def get_session(environ: WSGIEnvironment | None = None) -> Session:
    """The session of the request whose environ is *environ* (default: the current one).

    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.
    """
    if environ is None:
        environ = current_environ()
    session = environ.get(SESSION_KEY)
    if session is None:
        raise RuntimeError(f"this request has no session: {_WRAP_HINT}")
    return cast("Session", session)


#: The current request's :class:`~wsgisession.Session`, usable anywhere the request
#: is being handled (a werkzeug ``LocalProxy``).
session: Session = cast("Session", LocalProxy(get_session))


def request_scope(environ: WSGIEnvironment | None = None) -> dict[str, Any]:
    """The request scope (:data:`at`) of *environ* (default: the current request).

    Created on first use, so a request that never uses it pays nothing.

    :raises RuntimeError: no request is being handled and no *environ* was given.
    """
    if environ is None:
        environ = current_environ()
    scope = environ.get(AT_KEY)
    if scope is None:
        scope = environ[AT_KEY] = {}
    return cast("dict[str, Any]", scope)


#: The current request's scope: a fresh mutable mapping per request for passing data
#: between the parts of the code that handle it.
at: MutableMapping[str, Any] = cast("MutableMapping[str, Any]", LocalProxy(request_scope))
