"""Test helpers for the werkzeug test ``Client``: see and change a client's session.

- :func:`session_transaction` opens the session the client's cookie points at and
  writes your changes back on exit (the cookie jar for a cookie store; the store
  and the cookie for a server-side store), like Flask's
  ``client.session_transaction()`` but for any WSGI app and any store;
- :func:`read_session` returns the client's session data, read-only;
- :class:`HeaderClient` is a test client that carries its session in the session
  header (``SessionMiddleware(header="X-Auth-Token")``), as an API client does; both
  helpers above then read and write the session its token names.

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

from werkzeug.test import Client, EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from ..middleware import SessionMiddleware

if TYPE_CHECKING:
    from ..cookies import CookieOptions
    from ..sessions import Session

__all__ = ["HeaderClient", "find_middleware", "read_session", "session_transaction"]

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


def _session_header(middleware: SessionMiddleware) -> str:
    if middleware.header is None:
        raise LookupError(
            f"{middleware!r} has no session header: a HeaderClient needs"
            " SessionMiddleware(header='X-Auth-Token'); a plain Client uses the cookie"
        )
    return middleware.header


class HeaderClient(Client):
    """A werkzeug test ``Client`` that carries its session in the session header.

    As an API client does with ``SessionMiddleware(header="X-Auth-Token")``: every
    request sends the header with :attr:`token` (empty while it has none), and a
    response that sends the header replaces :attr:`token` with its value (``None``
    when it is empty: the session ended). A request that names the header in its own
    ``headers=`` sends that value instead. Cookies other than the session's work as
    with a plain ``Client``. :func:`session_transaction` and :func:`read_session`
    use the session the token names, and update the token.

    A redirect it follows (``follow_redirects=True``) is sent with the headers of
    the request that led to it, as HTTP clients do: with the token that request had.

    ::

        client = HeaderClient(app)
        client.post("/login", data={"user": "ada"})
        assert client.token is not None      # the app logged the session in
        assert client.get("/me").text == "ada"

    :param application: The WSGI application.
    :param token: The session header's value to start with; ``None``: no session.
    :param header: The header's name; default: the ``header`` of the
        :class:`~wsgisession.SessionMiddleware` found in *application*.
    :param kwargs: The other arguments of werkzeug's ``Client``.
    """

    def __init__(
        self,
        application: Any,
        *,
        token: str | None = None,
        header: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(application, **kwargs)
        #: The session header's value this client sends; ``None``: it has no session.
        self.token = token
        self._header = header

    @property
    def header(self) -> str:
        """The session header's name.

        :raises LookupError: none was given, and the application's middleware has none.
        """
        if self._header is None:
            self._header = _session_header(find_middleware(self.application))
        return self._header

    def open(
        self, *args: Any, buffered: bool = False, follow_redirects: bool = False, **kwargs: Any
    ) -> TestResponse:
        """As werkzeug's ``Client.open``, sending :attr:`token` and keeping the one sent back."""
        request = _request_of(args, kwargs)
        key = "HTTP_" + self.header.upper().replace("-", "_")
        request.environ.setdefault(key, self.token or "")
        response = super().open(request, buffered=buffered, follow_redirects=follow_redirects)
        self.take_token(response.headers.get(self.header))
        return response

    def take_token(self, value: str | None) -> None:
        """Keep *value*, the session header of a response: ``None`` (not sent) changes
        nothing, ``""`` (the session ended) forgets the token."""
        if value is not None:
            self.token = value or None


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    # What werkzeug's Client.open builds from its arguments, with its public API.
    if not kwargs and len(args) == 1:
        arg = args[0]
        if isinstance(arg, EnvironBuilder):
            return arg.get_request()
        if isinstance(arg, dict):
            return EnvironBuilder.from_environ(arg).get_request()
        if isinstance(arg, Request):
            return arg
    builder = EnvironBuilder(*args, **kwargs)
    try:
        return builder.get_request()
    finally:
        builder.close()


def _cookie_options(middleware: SessionMiddleware) -> CookieOptions:
    if middleware.cookie is None:
        raise LookupError(
            f"{middleware!r} sets no session cookie (cookie_name=None): use a HeaderClient,"
            " whose session travels in the session header"
        )
    return middleware.cookie


def _jar_domain(middleware: SessionMiddleware, base_url: str) -> str:
    # Where werkzeug's cookie jar files the session cookie: the Domain attribute if
    # the middleware sets one, else the request's host.
    domain = _cookie_options(middleware).domain
    return (domain or urlsplit(base_url).hostname or "localhost").lstrip(".")


def _request_environ(
    client: Client, middleware: SessionMiddleware, path: str, base_url: str
) -> dict[str, Any]:
    if isinstance(client, HeaderClient):
        headers = [(_session_header(middleware), client.token or "")]
    else:
        options = _cookie_options(middleware)
        cookie = client.get_cookie(options.name, _jar_domain(middleware, base_url), options.path)
        headers = [] if cookie is None else [("Cookie", f"{cookie.key}={cookie.value}")]
    return EnvironBuilder(path=path, base_url=base_url, headers=headers).get_environ()


def _store_cookie(
    client: Client, middleware: SessionMiddleware, base_url: str, header: str
) -> None:
    morsel = next(iter(SimpleCookie(header).values()))
    domain = _jar_domain(middleware, base_url)
    options = _cookie_options(middleware)
    path = options.path
    if morsel["max-age"] == "0":
        client.delete_cookie(morsel.key, domain=domain, path=path)
    else:
        origin_only = options.domain is None
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
    deletes the cookie. Nothing is saved when the block raises. For a
    :class:`HeaderClient`, the session its :attr:`~HeaderClient.token` names, and
    the new value (or ``None`` for an emptied session) becomes its token.

    :param client: A werkzeug test ``Client`` with cookies enabled, or a
        :class:`HeaderClient`.
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
        if isinstance(client, HeaderClient):
            if name.lower() == client.header.lower():
                client.take_token(value)
        elif name == "Set-Cookie":
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
    expiry renewal. For a :class:`HeaderClient`, the session its token names.

    :param client: A werkzeug test ``Client`` with cookies enabled, or a
        :class:`HeaderClient`.
    :param middleware: As for :func:`session_transaction`.
    :param path: As for :func:`session_transaction`.
    :param base_url: As for :func:`session_transaction`.
    :raises LookupError: no middleware was given or found.
    """
    middleware = middleware if middleware is not None else find_middleware(client.application)
    session = middleware.open_session(_request_environ(client, middleware, path, base_url))
    return MappingProxyType(dict(session))
