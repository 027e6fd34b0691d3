"""How a session travels between client and server: the cookie, or a request header.

Browsers carry the session in the cookie, which they send by themselves. API,
mobile and command-line clients may carry it in a header of their own choosing
instead (``SessionMiddleware(header="X-Auth-Token")``, as Spring Session's
``HeaderHttpSessionIdResolver``): the client sends the value it was last given and
replaces it with whatever a response sends back.

:class:`SessionHeader` is that header's name and rules, checked once at start-up.
Which of the two carries a request's session is a function of the request alone
(:meth:`SessionHeader.carries`), so the backends reading and writing the value, the
middleware writing the response and :class:`~wsgisession.CsrfMiddleware` agree
without keeping anything per request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, TypeAlias

from ..cookies import request_cookie_values
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["SessionHeader", "Transport"]

#: How a request's session travels: in the session cookie, or in the session header.
Transport: TypeAlias = Literal["cookie", "header"]

# An RFC 9110 token without "_": servers drop or refuse header names with an
# underscore (gunicorn, nginx), and WSGI spells "-" as "_", so two names could meet.
_NAME = re.compile(r"[A-Za-z0-9-]+")
# Headers with a meaning of their own, which a client or a proxy would not pass
# through as an opaque value: a session header must be one no one else reads.
_RESERVED = frozenset(
    {
        "accept",
        "authorization",
        "cache-control",
        "connection",
        "content-length",
        "content-type",
        "cookie",
        "host",
        "keep-alive",
        "origin",
        "proxy-authorization",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "vary",
    }
)


class SessionHeader:
    """The request and response header that carries a session, and when it does.

    :param name: The header, e.g. ``"X-Auth-Token"``: letters, digits and ``-``.
    :param cookie_name: The session cookie's name, or ``None`` when the middleware
        sets no cookie (then every request's session travels in the header).
    :raises ConfigurationError: a name that is not a header name, or one HTTP
        gives a meaning of its own (``Cookie``, ``Authorization`` …).
    """

    __slots__ = ("cookie_name", "environ_key", "name")

    def __init__(self, name: str, cookie_name: str | None) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(
                f"header must be an HTTP header name such as 'X-Auth-Token' (letters,"
                f" digits and '-'), not {name!r}"
            )
        if name.lower() in _RESERVED:
            hint = (
                ": the value is the bare token, with no 'Bearer' scheme"
                if name.lower().endswith("authorization")
                else ""
            )
            raise ConfigurationError(
                f"header={name!r} names a header HTTP gives a meaning of its own{hint};"
                " choose one of your own, such as 'X-Auth-Token'"
            )
        #: The header's name as responses spell it.
        self.name = name
        #: Its key in a WSGI environ (``HTTP_X_AUTH_TOKEN``).
        self.environ_key = "HTTP_" + name.upper().replace("-", "_")
        #: The session cookie's name; ``None``: no cookie.
        self.cookie_name = cookie_name

    def carries(self, environ: WSGIEnvironment) -> bool:
        """Whether this request's session travels in the header rather than the cookie.

        It does when the request sends the header (with any value, an empty one
        included: "I have no session yet, give me one in the header"), and always
        when there is no cookie.
        """
        return self.cookie_name is None or self.environ_key in environ

    def value(self, environ: WSGIEnvironment) -> str | None:
        """The session value the request sends in the header; ``None`` when empty."""
        value = environ.get(self.environ_key)
        return value if value and type(value) is str else None

    def ambiguous(self, environ: WSGIEnvironment) -> bool:
        """Whether the request sends both the header and a session cookie.

        Neither is trusted then: which of the two the client meant cannot be told,
        and a browser attaches the cookie to a request by itself.
        """
        if self.cookie_name is None or self.environ_key not in environ:
            return False
        return any(request_cookie_values(environ, self.cookie_name))
