"""The errors wsgisession raises, as one small hierarchy.

Every error a user can meet derives from :class:`SessionError`, so one ``except``
catches them all. Errors that have an obvious HTTP meaning also derive from the
matching werkzeug :class:`~werkzeug.exceptions.HTTPException`: Flask renders them
natively, and :class:`~wsgisession.SessionMiddleware` renders one that escapes any
other WSGI app, so a store outage is a ``503`` rather than a ``500``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MIMEAccept, WWWAuthenticate
from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Request

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "AccessDenied",
    "AmbiguousSession",
    "BadBody",
    "BadParam",
    "ConfigurationError",
    "CsrfError",
    "FieldError",
    "HTTPError",
    "NotLoggedIn",
    "SessionError",
    "SessionTooLarge",
    "StoreUnavailable",
    "TooManySessions",
]


class SessionError(Exception):
    """Base class of every error raised by wsgisession."""


class ConfigurationError(SessionError, ValueError):
    """The middleware or a store was configured wrongly.

    Raised at start-up (construction time), never while serving a request. The
    message names the setting and says how to fix it.
    """


class SessionTooLarge(SessionError):
    """A client-side session does not fit in one cookie.

    Browsers silently drop a cookie whose ``Set-Cookie`` value is longer than about
    4 KB, which loses the whole session without an error anywhere. wsgisession
    refuses to send such a cookie instead: the previous cookie stays in the browser,
    and this error says how big the cookie would have been and which keys are the
    biggest, so you can move them to a server-side store.

    :param size: The length in bytes of the ``Set-Cookie`` value that was refused.
    :param limit: The largest length allowed.
    :param biggest_keys: Session keys with their serialized sizes, largest first.
    :param cookie: The name of the cookie.
    """

    def __init__(
        self,
        size: int,
        limit: int,
        biggest_keys: Sequence[tuple[str, int]] = (),
        cookie: str = "session",
    ):
        self.size = size
        self.limit = limit
        self.biggest_keys = list(biggest_keys)
        self.cookie = cookie
        keys = ", ".join(f"{key!r} ({n} bytes)" for key, n in self.biggest_keys)
        super().__init__(
            f"the {cookie!r} cookie would be {size} bytes, over the {limit}-byte limit that"
            " browsers enforce; store less in the session or use a server-side store"
            " (SQLiteStore, RedisStore)" + (f"; biggest keys: {keys}" if keys else "")
        )


class HTTPError(SessionError, HTTPException):
    """Base class of the errors that are also an HTTP answer.

    Every one renders the same way: one plain-text line (``"401 Unauthorized: Log
    in to see this page."``), or ``{"error": error_code, "message": ...}`` for a
    client that prefers JSON; always ``Cache-Control: no-store`` and
    ``X-Content-Type-Options: nosniff`` (messages may echo client input). Flask
    renders these natively; :class:`~wsgisession.SessionMiddleware` renders one that
    escapes any other WSGI app, and the Django integration turns it into a Django
    response.

    :param description: What the client reads.
    :param message: What the server log reads (``str(error)``); defaults to
        *description*.
    """

    #: Stable, machine-readable name of the error (the ``error`` of the JSON body).
    error_code = "error"

    def __init__(self, description: str | None = None, message: str | None = None) -> None:
        HTTPException.__init__(self, description)
        self.message = message if message is not None else str(self.description)

    def __str__(self) -> str:
        return self.message

    def text(self) -> str:
        """The plain-text body."""
        return f"{self.code} {self.name}: {self.description}\n"

    def json(self) -> dict[str, Any]:
        """The JSON body, as a dict."""
        return {"error": self.error_code, "message": self.description}

    def wants_json(self, environ: WSGIEnvironment | None) -> bool:
        """Whether to answer in JSON: the client ranks JSON above plain text."""
        return _wants_json(environ)

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """:meth:`text` or :meth:`json`, as :meth:`wants_json` decides."""
        if self.wants_json(environ):
            return json.dumps(self.json()) + "\n"
        return self.text()

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """The parent's headers, with the body's ``Content-Type``, ``no-store`` and ``nosniff``."""
        content_type = (
            "application/json" if self.wants_json(environ) else "text/plain; charset=utf-8"
        )
        headers = [(k, v) for k, v in super().get_headers(environ, scope) if k != "Content-Type"]
        return [
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ]


class StoreUnavailable(HTTPError, ServiceUnavailable):
    """The session store could not be reached (or timed out): ``503``.

    The client gets ``Retry-After`` and no ``Set-Cookie``, so its good session id
    survives the outage.

    :param message: What failed, for the log (the client reads a generic sentence).
    :param retry_after: Seconds the client should wait, sent as ``Retry-After``.
    """

    error_code = "store_unavailable"

    def __init__(self, message: str = "The session store is unavailable.", retry_after: int = 5):
        HTTPError.__init__(
            self, "The service is temporarily unavailable. Please try again shortly.", message
        )
        self.retry_after = retry_after

    def text(self) -> str:
        """A short sentence: the client needs no status line to retry."""
        return "Service temporarily unavailable: please try again shortly.\n"


def _wants_json(environ: WSGIEnvironment | None) -> bool:
    """Whether the client prefers ``application/json`` to ``text/plain``.

    ``Accept: */*``, a browser's ``text/html,…,*/*;q=0.8`` or no ``Accept`` at all
    give plain text; only a client that ranks JSON higher gets JSON.
    """
    if not environ:
        return False
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return accept.best_match(["text/plain", "application/json"]) == "application/json"


class NotLoggedIn(HTTPError, Unauthorized):
    """The request needs a logged-in user and has none: ``401 Unauthorized``.

    Raised by :func:`~wsgisession.login_required` and answered by
    :class:`~wsgisession.Auth`. HTTP requires a ``401`` to name an authentication
    scheme; a session cookie has no registered one, so the challenge is
    ``WWW-Authenticate: Cookie`` (browsers show no password prompt for a scheme they
    do not know).

    :param description: Why, for the client; the default asks it to log in.
    """

    error_code = "not_logged_in"

    def __init__(self, description: str = "Log in to see this page.") -> None:
        HTTPError.__init__(self, description)
        self.www_authenticate = [WWWAuthenticate("Cookie")]


class AccessDenied(HTTPError, Forbidden):
    """The request is known but not allowed: a missing role or a failed guard. ``403``.

    :param description: Why, for the client (which role is missing, say).
    """

    error_code = "forbidden"

    def __init__(self, description: str = "You are not allowed to see this page.") -> None:
        HTTPError.__init__(self, description)


class TooManySessions(HTTPError, Conflict):
    """A login refused because the user has as many sessions as allowed: ``409``.

    Raised by :func:`~wsgisession.login` (and the Flask-Login and Django logins)
    under ``track_devices(middleware, max_per_user=N, when_full="refuse")``: the
    user is logged in on *N* devices already. The session stays logged out and no
    device is recorded; the user logs out elsewhere (or the app ends a session for
    them, :meth:`~wsgisession.access.devices.Devices.revoke`) and tries again.

    :param limit: The most sessions a user may have (``max_per_user``).
    :param description: What the client reads.
    """

    error_code = "too_many_sessions"

    def __init__(self, limit: int, description: str | None = None) -> None:
        self.limit = limit
        HTTPError.__init__(
            self,
            description
            or (
                f"You are logged in on {limit} device{'s' if limit != 1 else ''} already,"
                " the most allowed: log out on one of them, then log in here again."
            ),
            f"login refused: the user already has {limit} sessions (max_per_user={limit})",
        )


class CsrfError(HTTPError, Forbidden):
    """A state-changing request failed the CSRF check: ``403 Forbidden``.

    Answered by :class:`~wsgisession.CsrfMiddleware` before the application runs.

    :param reason: ``"missing"`` (no token), ``"invalid"`` (wrong, malformed, or from
        another session), ``"no_secret"`` (the session has no token: it expired or
        was never given a form) or ``"origin"`` (the ``Origin``/``Referer`` is
        another site).
    :param description: The sentence the client sees.
    """

    def __init__(self, reason: str, description: str) -> None:
        HTTPError.__init__(self, description)
        self.reason = reason
        self.error_code = f"csrf_{reason}"


class AmbiguousSession(HTTPError, BadRequest):
    """The request sends its session twice, in the cookie and in the session header: ``400``.

    Answered by :class:`~wsgisession.SessionMiddleware` (configured with
    ``header=``) before the application runs, rather than guess which one the client
    meant: a browser adds the cookie by itself, and only the header exempts a
    request from the CSRF check. A client that carries its session in the header
    must not send the session cookie (``fetch(..., {credentials: "omit"})``).

    :param header: The session header's name.
    :param cookie: The session cookie's name.
    """

    error_code = "ambiguous_session"

    def __init__(self, header: str, cookie: str) -> None:
        HTTPError.__init__(
            self,
            f"The request sends a session in both the {header!r} header and the {cookie!r}"
            " cookie: send only one of them.",
        )
        self.header = header
        self.cookie = cookie


class BadParam(HTTPError, BadRequest):
    """A request parameter is missing or cannot be converted to the type asked for.

    Raised by :func:`~wsgisession.param` and friends: a ``400`` whose plain-text
    body is the message alone, never a ``500``.

    :param name: The parameter's name (kept as ``param``: ``name`` is the HTTP
        status name of a werkzeug exception).
    :param value: The value that could not be converted; ``None`` when missing.
    :param type_name: The name of the type asked for (``"int"``).
    """

    error_code = "bad_param"

    #: A value longer than this is cut short in the message, which is sent back.
    MAX_SHOWN = 50

    def __init__(self, name: str, value: str | None = None, type_name: str | None = None):
        self.param = name
        self.value = value
        self.type_name = type_name
        if value is None:
            message = f"Missing parameter: {name}"
        else:
            shown = value if len(value) <= self.MAX_SHOWN else value[: self.MAX_SHOWN] + "..."
            message = f"Parameter {name!r}: cannot convert {shown!r} to {type_name}"
        HTTPError.__init__(self, message)

    def text(self) -> str:
        """The message alone."""
        return self.message + "\n"

    def json(self) -> dict[str, Any]:
        """The JSON body, naming the parameter."""
        return {**super().json(), "param": self.param}


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with a request body: which field, and what is wrong with it.

    :param field: The field's path in the body: ``"age"``, ``"address.city"``,
        ``"tags[2]"``; ``None`` when the body as a whole is wrong (malformed JSON, an
        array where an object was expected, a ``__post_init__`` of the top model).
    :param message: What is wrong, for the client: ``"must be >= 0"``.
    """

    field: str | None
    message: str

    def __str__(self) -> str:
        return self.message if self.field is None else f"{self.field}: {self.message}"


class BadBody(HTTPError, BadRequest):
    """The request body does not fit the model a view asked for: ``400 Bad Request``.

    Raised by :func:`~wsgisession.body` with **every** failing field. The response is
    ``{"errors": [{"field": "age", "message": "must be >= 0"}, ...]}`` when the client
    prefers JSON, or sent JSON and accepts it (no ``Accept``, or ``*/*``); otherwise
    the same as plain text, one ``field: message`` line per error.

    :param errors: What is wrong, in the order the fields are declared.
    """

    error_code = "bad_body"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        HTTPError.__init__(
            self, "; ".join(str(error) for error in self.errors) or "Invalid request body."
        )

    def text(self) -> str:
        """One ``field: message`` line per error."""
        return "".join(f"{error}\n" for error in self.errors)

    def json(self) -> dict[str, Any]:
        """``{"errors": [{"field": ..., "message": ...}, ...]}``."""
        return {"errors": [{"field": e.field, "message": e.message} for e in self.errors]}

    def wants_json(self, environ: WSGIEnvironment | None) -> bool:
        """JSON when asked for, or when the client sent JSON and accepts it."""
        # fetch() and curl send "*/*", which _wants_json() alone would answer in
        # plain text.
        if _wants_json(environ):
            return True
        if not environ or not Request(environ, populate_request=False, shallow=True).is_json:
            return False
        accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
        return not accept or accept.quality("application/json") > 0
