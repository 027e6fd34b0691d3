"""Read a request's form or JSON body without taking it away from the wrapped app.

:func:`form_data` buffers the body once, gives the application an identical stream
(through :func:`wsgisession._input.keep_body_readable`'s replayable input, or a new
one), and parses a copy with werkzeug's form parser. The result is cached in the
environ, so several callers in one request parse once. :func:`json_body` does the
same for a JSON body (``body()`` reads it), so Flask's ``request.get_json()`` and
Django's ``request.body`` still see it.

Both run before any token or login is checked, so both keep to the request's
:class:`~wsgisession.RequestLimits` and refuse what is over them with a ``413``
*before* parsing: a ``Content-Length`` over the size limit before the body is read,
a body with too many fields or parts before it is split (werkzeug's own
``max_form_parts`` check stays as the exact one).
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import parse_form_data
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from .._input import INPUT_KEY, ReplayableInput, is_form, is_json, is_urlencoded
from ..limits import limits_for

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["form_data", "is_form", "is_json", "json_body"]

_FORM_KEY = "wsgisession.form"
_BODY_KEY = "wsgisession.request.body"


def _in_memory(*args: object, **kwargs: object) -> BytesIO:
    # The whole body is in memory already (at most max_body_size). werkzeug's default
    # spools each upload to a temporary file that only werkzeug's own Request knows
    # to close; nothing closes ours, so every upload would leak an open file.
    return BytesIO()


def json_body(environ: WSGIEnvironment) -> bytes:
    """The raw bytes of a JSON body, read once; the body stays readable by the app.

    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over
        :attr:`~wsgisession.RequestLimits.max_form_memory_size`.
    :raises RuntimeError: the application read a body too big to keep a copy of first.
    """
    return _buffered_body(
        environ,
        limits_for(environ).max_form_memory_size,
        "call body() before request.get_json() or request.body",
    )


def _buffered_body(environ: WSGIEnvironment, limit: int, hint: str) -> bytes:
    cached: bytes | None = environ.get(_BODY_KEY)
    if cached is not None:
        return cached
    length = get_content_length(environ)
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    replayable: ReplayableInput | None = environ.get(INPUT_KEY)
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
    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over a limit of
        the request's :class:`~wsgisession.RequestLimits`: ``max_body_size``,
        ``max_form_memory_size`` (a urlencoded body, a multipart text part) or
        ``max_form_parts``.
    :raises RuntimeError: the application read the body first, so it is gone.
    """
    cached = environ.get(_FORM_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    form: MultiDict[str, str] = MultiDict()
    files: MultiDict[str, FileStorage] = MultiDict()
    if is_form(environ):
        limits = limits_for(environ)
        urlencoded = is_urlencoded(environ)
        # A urlencoded body is all form data held in memory, and werkzeug applies
        # neither max_form_memory_size nor max_form_parts to it.
        size_limit = (
            min(limits.max_body_size, limits.max_form_memory_size)
            if urlencoded
            else limits.max_body_size
        )
        body = _buffered_body(
            environ, size_limit, "call param() before request.form or request.POST"
        )
        if _too_many_parts(environ, body, urlencoded, limits.max_form_parts):
            raise RequestEntityTooLarge(f"The form has more than {limits.max_form_parts} fields.")
        copy = dict(environ)
        copy["wsgi.input"] = BytesIO(body)
        try:
            _, form, files = parse_form_data(
                copy,
                stream_factory=_in_memory,
                max_form_memory_size=limits.max_form_memory_size,
                max_form_parts=limits.max_form_parts,
                silent=False,
            )
        except ValueError as exc:
            raise BadRequest(f"The form data could not be parsed: {exc}") from None
    environ[_FORM_KEY] = (form, files)
    return form, files


def _too_many_parts(
    environ: WSGIEnvironment, body: bytes, urlencoded: bool, max_parts: int
) -> bool:
    # A count at C speed before any parsing, so a body of a million parts costs
    # milliseconds. Each multipart delimiter but the first follows a line break;
    # the boundary cannot occur there inside a part, and werkzeug's own
    # max_form_parts stays the exact check.
    if urlencoded:
        return body.count(b"&") >= max_parts
    boundary = parse_options_header(environ.get("CONTENT_TYPE"))[1].get("boundary")
    if not boundary:
        return False  # werkzeug refuses it as malformed
    try:
        delimiter = b"\n--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        return False
    return body.count(delimiter) > max_parts + 1


def _read_by_app(replayable: ReplayableInput, length: int | None, hint: str) -> bytes:
    body = replayable.already_read(length)
    if body is None:
        raise RuntimeError(
            "the application read the request body before wsgisession parsed it and it"
            f" was too big to keep a copy of: {hint}"
        )
    return body
