"""Read a request's form without taking the body away from the wrapped app.

A middleware (CSRF) or a helper (``param()``) that parses the form before the
application runs would normally consume ``wsgi.input``, leaving Flask's
``request.form`` or Django's ``request.POST`` empty. :func:`form_data` buffers the
body once, puts an identical stream back into the environ, and parses a copy with
werkzeug's form parser. The result is cached in the environ, so several callers in
one request parse once.
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import parse_form_data
from werkzeug.wsgi import get_content_length, get_input_stream

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["FORM_CONTENT_TYPES", "form_data"]

_FORM_KEY = "wsgisession.form"

#: The only bodies :func:`form_data` parses; anything else is left unread.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: The largest body buffered for parsing (uploads included); beyond it, 413.
MAX_BODY_SIZE = 16 * 1024 * 1024

#: The largest non-file form data kept in memory (werkzeug's own default).
MAX_FORM_MEMORY_SIZE = 500_000


def is_form(environ: WSGIEnvironment) -> bool:
    """Whether the request body is an HTML form (urlencoded or multipart)."""
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return mimetype in FORM_CONTENT_TYPES


def form_data(
    environ: WSGIEnvironment,
) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """The request's form fields and files, parsed once; the body stays readable.

    A body that is not a form gives two empty mappings and is not read.

    :raises werkzeug.exceptions.BadRequest: a malformed multipart body.
    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over
        :data:`MAX_BODY_SIZE`, or its fields over :data:`MAX_FORM_MEMORY_SIZE`.
    """
    cached = environ.get(_FORM_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    form: MultiDict[str, str] = MultiDict()
    files: MultiDict[str, FileStorage] = MultiDict()
    if is_form(environ):
        length = get_content_length(environ)
        if length is not None and length > MAX_BODY_SIZE:
            raise RequestEntityTooLarge()
        body = get_input_stream(environ, max_content_length=MAX_BODY_SIZE).read(MAX_BODY_SIZE + 1)
        if len(body) > MAX_BODY_SIZE:
            raise RequestEntityTooLarge()
        # Put the body back for the application, as if nobody had read it.
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        copy = dict(environ)
        copy["wsgi.input"] = BytesIO(body)
        try:
            _, form, files = parse_form_data(
                copy, max_form_memory_size=MAX_FORM_MEMORY_SIZE, silent=False
            )
        except ValueError as exc:
            raise BadRequest(f"The form data could not be parsed: {exc}") from None
    environ[_FORM_KEY] = (form, files)
    return form, files
