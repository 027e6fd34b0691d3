"""Keep a request body readable by the application after wsgisession reads it.

A middleware (CSRF) or a helper (``param()``, ``body()``) that reads the body before
the application runs would normally consume ``wsgi.input``, leaving Flask's
``request.form`` or Django's ``request.POST`` empty. A framework may also hold on to
the input stream before the view runs (Django's request does), so a new stream in
the environ would not reach it. :class:`~wsgisession.SessionMiddleware` therefore
calls :func:`keep_body_readable` before the app: the stream it installs keeps a copy
of what the app reads and starts over once wsgisession has buffered the body
(:mod:`wsgisession.request.params._forms`).
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING, Any

from .limits import LIMITS_KEY, RequestLimits, limits_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "INPUT_KEY",
    "ReplayableInput",
    "is_form",
    "is_json",
    "is_urlencoded",
    "keep_body_readable",
]

INPUT_KEY = "wsgisession.input"

#: The only bodies parsed as forms; anything else is left unread.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ReplayableInput:
    """``wsgi.input`` that starts over with the buffered body once the form is parsed.

    It also keeps a copy of what the application reads, up to *copy_limit* bytes
    (:attr:`~wsgisession.RequestLimits.max_form_memory_size`), so a form the app
    parsed first (Flask-WTF reads ``request.form`` before the view) can still be
    parsed by wsgisession.
    """

    __slots__ = ("_copy", "_copy_limit", "_stream", "read_bytes")

    def __init__(self, stream: Any, copy_limit: int) -> None:
        self._stream = stream
        self._copy_limit = copy_limit
        #: How much the application has read.
        self.read_bytes = 0
        self._copy: bytearray | None = bytearray()

    def _seen(self, data: bytes) -> bytes:
        self.read_bytes += len(data)
        if self._copy is not None:
            if len(self._copy) + len(data) > self._copy_limit:
                self._copy = None  # an upload: too big to keep twice
            else:
                self._copy += data
        return data

    def read(self, *size: int) -> bytes:
        return self._seen(self._stream.read(*size))

    def readline(self, *size: int) -> bytes:
        return self._seen(self._stream.readline(*size))

    def readlines(self, *hint: int) -> list[bytes]:
        return [self._seen(line) for line in self._stream.readlines(*hint)]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def already_read(self, length: int | None) -> bytes | None:
        """The whole body, if the application read all of it and it was kept."""
        if self._copy is None or length is None or len(self._copy) < length:
            return None
        return bytes(self._copy)

    def replay(self, body: bytes) -> None:
        """Serve *body* from its start, as if nothing had been read."""
        self._stream = BytesIO(body)
        self.read_bytes = 0
        self._copy = None


def keep_body_readable(environ: WSGIEnvironment, limits: RequestLimits | None = None) -> None:
    """Let wsgisession give the body back to an app that already holds the stream.

    Call it before the application runs. Only form and JSON bodies are wrapped;
    other requests cost one header lookup.

    :param limits: The limits of the middleware calling it, if it was given any:
        they replace those of a middleware further out, for this request.
    """
    if limits is not None:
        environ[LIMITS_KEY] = limits
    if not environ.get("CONTENT_TYPE"):
        return
    if INPUT_KEY not in environ and (is_form(environ) or is_json(environ)):
        copy_limit = limits_for(environ).max_form_memory_size
        environ["wsgi.input"] = environ[INPUT_KEY] = ReplayableInput(
            environ["wsgi.input"], copy_limit
        )


def _mimetype(environ: WSGIEnvironment) -> str:
    return environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()  # type: ignore[no-any-return]


def is_form(environ: WSGIEnvironment) -> bool:
    """Whether the request body is an HTML form (urlencoded or multipart)."""
    return _mimetype(environ) in FORM_CONTENT_TYPES


def is_urlencoded(environ: WSGIEnvironment) -> bool:
    """Whether the request body is a urlencoded HTML form."""
    return _mimetype(environ) == FORM_CONTENT_TYPES[0]


def is_json(environ: WSGIEnvironment) -> bool:
    """Whether the request body is JSON: ``application/json`` or ``application/*+json``."""
    mimetype = _mimetype(environ)
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )
