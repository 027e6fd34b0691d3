"""Read a request's form without taking the body away from the wrapped app.

A middleware (CSRF) or a helper (``param()``) that parses the form before the
application runs would normally consume ``wsgi.input``, leaving Flask's
``request.form`` or Django's ``request.POST`` empty. :func:`form_data` buffers the
body once, puts an identical stream back into the environ, and parses a copy with
werkzeug's form parser. The result is cached in the environ, so several callers in
one request parse once.

A framework may hold on to the input stream before the view runs (Django's request
does), so a new stream in the environ would not reach it. Middlewares therefore call
:func:`keep_body_readable` before the app: the stream it installs rewinds itself to
the start once :func:`form_data` has read the body.

:func:`json_body` does the same for a JSON body (``body()`` reads it), so Flask's
``request.get_json()`` and Django's ``request.body`` still see it.
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import parse_form_data
from werkzeug.wsgi import get_content_length, get_input_stream

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "FORM_CONTENT_TYPES",
    "form_data",
    "is_form",
    "is_json",
    "json_body",
    "keep_body_readable",
]

_FORM_KEY = "wsgisession.form"
_INPUT_KEY = "wsgisession.input"
_BODY_KEY = "wsgisession.body"

#: The only bodies :func:`form_data` parses; anything else is left unread.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: The largest body buffered for parsing (uploads included); beyond it, 413.
MAX_BODY_SIZE = 16 * 1024 * 1024

#: The largest non-file form data kept in memory (werkzeug's own default); a JSON
#: body, which is all held in memory, has the same limit.
MAX_FORM_MEMORY_SIZE = 500_000


def _in_memory(*args: object, **kwargs: object) -> BytesIO:
    # The whole body is in memory already (at most MAX_BODY_SIZE). werkzeug's default
    # spools each upload to a temporary file that only werkzeug's own Request knows
    # to close; nothing closes ours, so every upload would leak an open file.
    return BytesIO()


class _ReplayableInput:
    """``wsgi.input`` that starts over with the buffered body once the form is parsed.

    It also keeps a copy of what the application reads, up to
    :data:`MAX_FORM_MEMORY_SIZE`, so a form the app parsed first (Flask-WTF reads
    ``request.form`` before the view) can still be parsed by :func:`form_data`.
    """

    __slots__ = ("_copy", "_stream", "read_bytes")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        #: How much the application has read.
        self.read_bytes = 0
        self._copy: bytearray | None = bytearray()

    def _seen(self, data: bytes) -> bytes:
        self.read_bytes += len(data)
        if self._copy is not None:
            if len(self._copy) + len(data) > MAX_FORM_MEMORY_SIZE:
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


def keep_body_readable(environ: WSGIEnvironment) -> None:
    """Let :func:`form_data` give the body back to an app that already holds the stream.

    Call it before the application runs. Only form and JSON bodies are wrapped;
    other requests cost one header lookup.
    """
    if (
        environ.get("CONTENT_TYPE")
        and _INPUT_KEY not in environ
        and (is_form(environ) or is_json(environ))
    ):
        environ["wsgi.input"] = environ[_INPUT_KEY] = _ReplayableInput(environ["wsgi.input"])


def _mimetype(environ: WSGIEnvironment) -> str:
    return environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()  # type: ignore[no-any-return]


def is_form(environ: WSGIEnvironment) -> bool:
    """Whether the request body is an HTML form (urlencoded or multipart)."""
    return _mimetype(environ) in FORM_CONTENT_TYPES


def is_json(environ: WSGIEnvironment) -> bool:
    """Whether the request body is JSON: ``application/json`` or ``application/*+json``."""
    mimetype = _mimetype(environ)
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def json_body(environ: WSGIEnvironment) -> bytes:
    """The raw bytes of a JSON body, read once; the body stays readable by the app.

    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over
        :data:`MAX_FORM_MEMORY_SIZE`.
    :raises RuntimeError: the application read a body too big to keep a copy of first.
    """
    return _buffered_body(
        environ, MAX_FORM_MEMORY_SIZE, "call body() before request.get_json() or request.body"
    )


def _buffered_body(environ: WSGIEnvironment, limit: int, hint: str) -> bytes:
    cached: bytes | None = environ.get(_BODY_KEY)
    if cached is not None:
        return cached
    length = get_content_length(environ)
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    replayable: _ReplayableInput | None = environ.get(_INPUT_KEY)
    if replayable is not None and replayable.read_bytes:
        body = _read_by_app(replayable, length, hint)
    else:
        stream = get_input_stream(environ, max_content_length=limit)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        # Put the body back for the application, as if nobody had read it.
        if replayable is not None:
            replayable.replay(body)
        else:
            environ["wsgi.input"] = BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ[_BODY_KEY] = body
    return body


def form_data(
    environ: WSGIEnvironment,
) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """The request's form fields and files, parsed once; the body stays readable.

    A body that is not a form gives two empty mappings and is not read.

    :raises werkzeug.exceptions.BadRequest: a malformed multipart body.
    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over
        :data:`MAX_BODY_SIZE`, or its fields over :data:`MAX_FORM_MEMORY_SIZE`.
    :raises RuntimeError: the application read the body first, so it is gone.
    """
    cached = environ.get(_FORM_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    form: MultiDict[str, str] = MultiDict()
    files: MultiDict[str, FileStorage] = MultiDict()
    if is_form(environ):
        body = _buffered_body(
            environ,
            MAX_BODY_SIZE,
            "call param() before request.form or request.POST",
        )
        copy = dict(environ)
        copy["wsgi.input"] = BytesIO(body)
        try:
            _, form, files = parse_form_data(
                copy,
                stream_factory=_in_memory,
                max_form_memory_size=MAX_FORM_MEMORY_SIZE,
                silent=False,
            )
        except ValueError as exc:
            raise BadRequest(f"The form data could not be parsed: {exc}") from None
    environ[_FORM_KEY] = (form, files)
    return form, files


def _read_by_app(replayable: _ReplayableInput, length: int | None, hint: str) -> bytes:
    body = replayable.already_read(length)
    if body is None:
        raise RuntimeError(
            "the application read the request body before wsgisession parsed it and it"
            f" was too big to keep a copy of: {hint}"
        )
    return body
