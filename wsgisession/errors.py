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
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.http import parse_accept_header

from ._input import is_json

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


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


class StoreUnavailable(SessionError, ServiceUnavailable):
    """The session store could not be reached (or timed out).

    A werkzeug :class:`~werkzeug.exceptions.ServiceUnavailable`: the client gets a
    ``503`` with ``Retry-After``, and no ``Set-Cookie`` is sent, so its good session
    id survives the outage.

    :param message: What failed, for the log.
    :param retry_after: Seconds the client should wait, sent as ``Retry-After``.
    """

    def __init__(self, message: str = "The session store is unavailable.", retry_after: int = 5):
        SessionError.__init__(self, message)
        ServiceUnavailable.__init__(
            self,
            "The service is temporarily unavailable. Please try again shortly.",
            retry_after=retry_after,
        )
        self.message = message

    def __str__(self) -> str:
        return self.message

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """A short plain-text body: the client needs no HTML to retry."""
        return "Service temporarily unavailable: please try again shortly.\n"

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """``Content-Type: text/plain`` and ``Retry-After``."""
        return [
            ("Content-Type", "text/plain; charset=utf-8")
            if name == "Content-Type"
            else (name, value)
            for name, value in super().get_headers(environ, scope)
        ]


def _wants_json(environ: WSGIEnvironment | None) -> bool:
    """Whether the client prefers ``application/json`` to ``text/plain``.

    ``Accept: */*``, a browser's ``text/html,…,*/*;q=0.8`` or no ``Accept`` at all
    give plain text; only a client that ranks JSON higher gets JSON.
    """
    if not environ:
        return False
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return accept.best_match(["text/plain", "application/json"]) == "application/json"


class _Refusal(HTTPException):
    """A short refusal: one plain-text line, or a JSON object when the client wants JSON.

    The JSON form is ``{"error": code, "message": description}``, so a script can
    branch on ``error`` without parsing English.
    """

    #: Stable, machine-readable name of the refusal (the ``error`` of the JSON body).
    error_code = "refused"

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """The description, as plain text or JSON depending on ``Accept``."""
        if _wants_json(environ):
            return json.dumps({"error": self.error_code, "message": self.description}) + "\n"
        return f"{self.code} {self.name}: {self.description}\n"

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """The parent's headers, with the ``Content-Type`` of :meth:`get_body`."""
        content_type = "application/json" if _wants_json(environ) else "text/plain; charset=utf-8"
        headers = [(k, v) for k, v in super().get_headers(environ, scope) if k != "Content-Type"]
        return [("Content-Type", content_type), ("Cache-Control", "no-store"), *headers]


class NotLoggedIn(SessionError, _Refusal, Unauthorized):
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
        SessionError.__init__(self, description)
        Unauthorized.__init__(self, description, www_authenticate=WWWAuthenticate("Cookie"))

    def __str__(self) -> str:
        return str(self.description)


class AccessDenied(SessionError, _Refusal, Forbidden):
    """The request is known but not allowed: a missing role or a failed guard. ``403``.

    :param description: Why, for the client (which role is missing, say).
    """

    error_code = "forbidden"

    def __init__(self, description: str = "You are not allowed to see this page.") -> None:
        SessionError.__init__(self, description)
        Forbidden.__init__(self, description)

    def __str__(self) -> str:
        return str(self.description)


class CsrfError(SessionError, _Refusal, Forbidden):
    """A state-changing request failed the CSRF check: ``403 Forbidden``.

    Answered by :class:`~wsgisession.CsrfMiddleware` before the application runs.

    :param reason: ``"missing"`` (no token), ``"invalid"`` (wrong, malformed, or from
        another session), ``"no_secret"`` (the session has no token: it expired or
        was never given a form) or ``"origin"`` (the ``Origin``/``Referer`` is
        another site).
    :param description: The sentence the client sees.
    """

    def __init__(self, reason: str, description: str) -> None:
        SessionError.__init__(self, description)
        Forbidden.__init__(self, description)
        self.reason = reason
        self.error_code = f"csrf_{reason}"

    def __str__(self) -> str:
        return str(self.description)


class BadParam(SessionError, BadRequest):
    """A request parameter is missing or cannot be converted to the type asked for.

    Raised by :func:`~wsgisession.param` and friends. A werkzeug
    :class:`~werkzeug.exceptions.BadRequest`: Flask renders it natively, and
    :class:`~wsgisession.SessionMiddleware` or :class:`~wsgisession.RequestScope`
    render one that escapes any other WSGI app, so bad input is a ``400`` with a
    one-line plain-text body, never a ``500``.

    :param name: The parameter's name (kept as ``param``: ``name`` is the HTTP
        status name of a werkzeug exception).
    :param value: The value that could not be converted; ``None`` when missing.
    :param type_name: The name of the type asked for (``"int"``).
    """

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
        BadRequest.__init__(self, message)
        SessionError.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """The message alone, as plain text."""
        return self.message + "\n"

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """Plain text that no browser may sniff as HTML: the body echoes client input."""
        return [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
        ]


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


class BadBody(SessionError, _Refusal, BadRequest):
    """The request body does not fit the model a view asked for: ``400 Bad Request``.

    Raised by :func:`~wsgisession.request.body` with **every** failing field. The response is
    ``{"errors": [{"field": "age", "message": "must be >= 0"}, ...]}`` when the client
    prefers JSON, or sent JSON and accepts it (no ``Accept``, or ``*/*``); otherwise
    the same as plain text, one ``field: message`` line per error. Flask renders it
    natively, :class:`~wsgisession.SessionMiddleware` and
    :class:`~wsgisession.RequestScope` for any other WSGI app.

    :param errors: What is wrong, in the order the fields are declared.
    """

    error_code = "bad_body"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        message = "; ".join(str(error) for error in self.errors) or "Invalid request body."
        SessionError.__init__(self, message)
        BadRequest.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """The errors as ``{"errors": [...]}`` or as plain-text lines, by ``Accept``."""
        if _errors_as_json(environ):
            errors = [{"field": e.field, "message": e.message} for e in self.errors]
            return json.dumps({"errors": errors}) + "\n"
        return "".join(f"{error}\n" for error in self.errors)

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """``Content-Type`` as in :meth:`get_body`; ``nosniff``, as it echoes field names."""
        content_type = (
            "application/json" if _errors_as_json(environ) else "text/plain; charset=utf-8"
        )
        return [
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]


def _errors_as_json(environ: WSGIEnvironment | None) -> bool:
    # A client that sent JSON reads JSON, unless its Accept says otherwise: fetch()
    # and curl send "*/*", which _wants_json() alone would answer in plain text.
    if _wants_json(environ):
        return True
    if not environ or not is_json(environ):
        return False
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return not accept or accept.quality("application/json") > 0
