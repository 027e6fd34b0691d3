"""RequestLimits: how much of a request's body wsgisession reads and parses.

``param()``, ``body()``, a guard's ``ctx.request.form`` and
:class:`~wsgisession.CsrfMiddleware` read the body before the application runs,
often before anyone is logged in, so what they accept is bounded: a hostile form of
200,000 parts, or 8 million urlencoded fields, is a fast ``413``, not seconds of
CPU and hundreds of megabytes. The defaults are werkzeug's own (``Request``'s
``max_form_parts`` and ``max_form_memory_size``).

The limits are validated once, when made, and given to the middleware that binds
the request (:class:`~wsgisession.SessionMiddleware`,
:class:`~wsgisession.RequestScope` or :class:`~wsgisession.CsrfMiddleware`), which
puts them in the environ for the helpers to find.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._options import count
from .errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["LIMITS_KEY", "RequestLimits", "check_limits", "limits_for"]

#: Where the limits of the request are kept in the environ.
LIMITS_KEY = "wsgisession.limits"


@dataclass(frozen=True)
class RequestLimits:
    """Limits on the request bodies and values wsgisession parses; beyond them, 413 or 400.

    :param max_body_size: The largest form body, uploads included, read for
        parsing, in bytes; a larger ``Content-Length`` is refused before anything is
        read. Default 16 MiB.
    :param max_form_memory_size: The largest non-file form data, in bytes: a whole
        urlencoded body, one text part of a multipart body, a whole JSON body.
        Default 500,000 (werkzeug's). It is also how much of a body the application
        read first is kept, so that wsgisession can still parse it.
    :param max_form_parts: The most fields of a urlencoded body, or parts of a
        multipart body. Default 1,000 (werkzeug's).
    :param max_decimal_digits: The most digits a ``Decimal`` parameter or field may
        have when written out without an exponent (``9e999999999`` has a billion):
        beyond, a ``400``. Default 1,000.
    :raises ConfigurationError: a limit that is not a positive whole number.

    ::

        limits = RequestLimits(max_body_size=64 * 1024 * 1024, max_form_parts=5000)
        app = SessionMiddleware(app, secret_key=SECRET_KEY, limits=limits)
    """

    max_body_size: int = 16 * 1024 * 1024
    max_form_memory_size: int = 500_000
    max_form_parts: int = 1000
    max_decimal_digits: int = 1000  # = request._converters.MAX_DECIMAL_DIGITS

    def __post_init__(self) -> None:
        count("max_body_size", self.max_body_size, unit="bytes")
        count("max_form_memory_size", self.max_form_memory_size, unit="bytes")
        count("max_form_parts", self.max_form_parts)
        count("max_decimal_digits", self.max_decimal_digits)


@functools.cache
def default_limits() -> RequestLimits:
    """The default limits, made once."""
    return RequestLimits()


def check_limits(limits: object) -> RequestLimits | None:
    """*limits* if it is a :class:`RequestLimits` or ``None``.

    :raises ConfigurationError: anything else (a dict, say).
    """
    if limits is None or isinstance(limits, RequestLimits):
        return limits
    raise ConfigurationError(
        f"limits must be a RequestLimits(...) or None, not {limits!r}; for example"
        " limits=RequestLimits(max_form_parts=5000)"
    )


def limits_for(environ: WSGIEnvironment) -> RequestLimits:
    """The limits that apply to this request: the middleware's, or the defaults."""
    limits: RequestLimits | None = environ.get(LIMITS_KEY)
    return default_limits() if limits is None else limits
