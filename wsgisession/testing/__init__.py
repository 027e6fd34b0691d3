"""Test helpers for the werkzeug test ``Client``: see and change a client's session.

- :func:`session_transaction` opens the session the client's cookie points at and
  writes your changes back on exit (the cookie jar for a cookie store; the store
  and the cookie for a server-side store), like Flask's
  ``client.session_transaction()`` but for any WSGI app and any store;
- :func:`read_session` returns the client's session data, read-only.

Both find the :class:`~wsgisession.SessionMiddleware` by following the ``wsgi_app``
and ``app`` attributes from ``client.application`` (a Flask app, middlewares that
keep the app they wrap as ``.app``); pass ``middleware=`` when it is hidden::

    with session_transaction(client) as saved:
        saved["user_id"] = 42
    assert client.get("/account").status_code == 200
    assert read_session(client)["user_id"] == 42

The pytest plugin (:mod:`wsgisession.testing.pytest_plugin`, installed with the package)
adds the ``wsgisession_store`` and ``wsgisession_client`` fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.cookies import SimpleCookie
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder

from ..middleware import SessionMiddleware

if TYPE_CHECKING:
    from werkzeug.test import Client

    from ..sessions import Session

__all__ = ["find_middleware", "read_session", "session_transaction"]

_WRAPPED_APP_ATTRIBUTES = ("wsgi_app", "app")


def find_middleware(app: Any) -> SessionMiddleware:
    """The :class:`~wsgisession.SessionMiddleware` in *app* or in what it wraps.

    Follows ``wsgi_app`` (Flask) and ``app`` (werkzeug-style middlewares,
    wsgisession's own) attributes, and asks an object with a ``session_middleware()``
    method (:class:`~wsgisession.contrib.flask.FlaskSessionMiddleware`) for the one
    its current configuration uses.

    :param app: A WSGI application.
    :raises LookupError: no SessionMiddleware is reachable that way.
    """
    seen: set[int] = set()
    todo = [app]
    while todo:
        current = todo.pop(0)
        if isinstance(current, SessionMiddleware):
            return current
        # An integration that builds its middleware per configuration (Flask's).
        per_request = getattr(current, "session_middleware", None)
        if callable(per_request) and isinstance(found := per_request(), SessionMiddleware):
            return found
        if id(current) in seen:
            continue
        seen.add(id(current))
        todo.extend(
            inner
            for inner in (getattr(current, name, None) for name in _WRAPPED_APP_ATTRIBUTES)
            if inner is not None
        )
    raise LookupError(
        f"no SessionMiddleware found in {app!r} through its wsgi_app or app attributes;"
        " pass middleware= explicitly"
    )


def _jar_domain(middleware: SessionMiddleware, base_url: str) -> str:
    # Where werkzeug's cookie jar files the session cookie: the Domain attribute if
    # the middleware sets one, else the request's host.
    return (middleware.cookie.domain or urlsplit(base_url).hostname or "localhost").lstrip(".")


def _request_environ(
    client: Client, middleware: SessionMiddleware, path: str, base_url: str
) -> dict[str, Any]:
    cookie = client.get_cookie(
        middleware.cookie.name, _jar_domain(middleware, base_url), middleware.cookie.path
    )
    headers = [] if cookie is None else [("Cookie", f"{cookie.key}={cookie.value}")]
    return EnvironBuilder(path=path, base_url=base_url, headers=headers).get_environ()


def _store_cookie(
    client: Client, middleware: SessionMiddleware, base_url: str, header: str
) -> None:
    morsel = next(iter(SimpleCookie(header).values()))
    domain = _jar_domain(middleware, base_url)
    path = middleware.cookie.path
    if morsel["max-age"] == "0":
        client.delete_cookie(morsel.key, domain=domain, path=path)
    else:
        origin_only = middleware.cookie.domain is None
        client.set_cookie(
            morsel.key,
            morsel.value,
            domain=domain,
            path=path,
            origin_only=origin_only,
            max_age=int(morsel["max-age"]) if morsel["max-age"] else None,
            secure=bool(morsel["secure"]),
            httponly=bool(morsel["httponly"]),
            samesite=morsel["samesite"] or None,
        )


@contextmanager
def session_transaction(
    client: Client,
    *,
    middleware: SessionMiddleware | None = None,
    path: str = "/",
    base_url: str = "http://localhost/",
) -> Iterator[Session]:
    """Open the session *client*'s cookie points at; save it on a clean exit.

    The session is the real one, with the middleware's store and expiry: a new
    session gets a new id, ``clear()``/``regenerate()`` renew it, an emptied session
    deletes the cookie. Nothing is saved when the block raises.

    :param client: A werkzeug test ``Client`` with cookies enabled.
    :param middleware: The :class:`~wsgisession.SessionMiddleware` (default: found
        from ``client.application``, see :func:`find_middleware`).
    :param path: The request path the cookie is chosen for.
    :param base_url: Scheme and host: ``"https://localhost/"`` for a ``Secure``
        cookie.
    :raises LookupError: no middleware was given or found.
    """
    middleware = middleware if middleware is not None else find_middleware(client.application)
    session = middleware.open_session(_request_environ(client, middleware, path, base_url))
    yield session
    for name, value in middleware.save_session(session):
        if name == "Set-Cookie":
            _store_cookie(client, middleware, base_url, value)


def read_session(
    client: Client,
    *,
    middleware: SessionMiddleware | None = None,
    path: str = "/",
    base_url: str = "http://localhost/",
) -> Mapping[str, Any]:
    """The data of the session *client*'s cookie points at, as a read-only mapping.

    Empty when the client has no valid session. Nothing is written, not even an
    expiry renewal.

    :param client: A werkzeug test ``Client`` with cookies enabled.
    :param middleware: As for :func:`session_transaction`.
    :param path: As for :func:`session_transaction`.
    :param base_url: As for :func:`session_transaction`.
    :raises LookupError: no middleware was given or found.
    """
    middleware = middleware if middleware is not None else find_middleware(client.application)
    session = middleware.open_session(_request_environ(client, middleware, path, base_url))
    return MappingProxyType(dict(session))
