"""CsrfMiddleware: refuse state-changing requests that another site made.

A browser sends the session cookie with every request to your site, including a form
another site submits or a ``fetch`` it makes. Such a cross-site request forgery can
act as the logged-in user. :class:`CsrfMiddleware` refuses it before your
application runs:

- ``GET``, ``HEAD``, ``OPTIONS`` and ``TRACE`` pass (they must not change anything);
  every other method needs a valid token, sent in the form field ``csrf_token`` or
  the ``X-CSRF-Token`` header, else ``403`` with the reason (missing, invalid …);
- a request whose ``Origin`` is another site is refused even with a token; over
  HTTPS a request without ``Origin`` must carry a same-site ``Referer`` (as Django
  does), because a network attacker can plant cookies into an HTTPS site from plain
  HTTP and pair them with a token of their own;
- :func:`csrf_token` gives a token for the current session, masked afresh on each
  call so that a compressed HTTPS response never repeats it (BREACH); the session
  keeps one 32-byte secret, replaced at :func:`~wsgisession.login`;
- the form is read without taking the body away from the application (Flask's
  ``request.form`` and Django's ``request.POST`` still work), and only a form is
  ever read: a JSON or other body is left untouched, so send the header.

Put it *inside* :class:`~wsgisession.SessionMiddleware`::

    app = SessionMiddleware(CsrfMiddleware(app), secret_key=SECRET_KEY)

A session carried in the session header (``SessionMiddleware(header=...)``: API,
mobile and command-line clients) is not checked: a browser never sends that header
by itself, so another site cannot make it act for the user. The same app's
cookie-carried sessions are checked as ever, and a request that sends both the
header and the cookie never gets here (``SessionMiddleware`` answers it ``400``).

When *not* to use it: an API authenticated by a bearer token or an API key rather
than a cookie is not exposed to CSRF (another site cannot make the browser send the
header), so its paths can go in ``exempt_paths``. Behind a reverse proxy that
terminates TLS, put werkzeug's ``ProxyFix`` outside, or the request looks like HTTP
and every ``Origin`` like another site.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_host

from .._input import keep_body_readable
from .._refusals import ErrorPage, answer_refusal, check_error_page
from ..context import SESSION_KEY, get_session
from ..errors import ConfigurationError, CsrfError
from ..limits import RequestLimits, check_limits
from ..request._forms import form_data, is_form
from ..sessions import ID_BOUND_PREFIX
from ._paths import PathPrefixes

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..sessions import Session

__all__ = ["CsrfMiddleware", "csrf_token", "rotate_csrf_secret"]

log = logging.getLogger("wsgisession")

#: The session key of the per-session CSRF secret (private to wsgisession).
CSRF_KEY = ID_BOUND_PREFIX + "csrf"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_SECRET_BYTES = 32
# mask + (mask XOR secret), URL-safe base64 without padding.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{86}")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _no_secret() -> CsrfError:
    return CsrfError(
        "no_secret",
        "CSRF token invalid: this session has no token (it expired or you logged"
        " in or out); reload the page and try again.",
    )


def _session_secret(session: Session) -> bytes | None:
    secret = session.get(CSRF_KEY)
    if type(secret) is bytes and len(secret) == _SECRET_BYTES:
        return secret
    return None


def rotate_csrf_secret(session: Session) -> None:
    """Give *session* a new CSRF secret: every token issued before stops working.

    :func:`~wsgisession.login` calls it, so a token an attacker obtained before
    the login (for a session they planted, say) is useless afterwards.
    """
    session[CSRF_KEY] = secrets.token_bytes(_SECRET_BYTES)


def csrf_token(environ: WSGIEnvironment | None = None) -> str:
    """A CSRF token for the current session, to put in a form or a request header.

    Each call returns a different string (the session's secret XORed with a fresh
    random mask), all valid for the session until login, logout or its end; a
    session without a secret gets one. Call it before ``start_response`` with the
    cookie store: the secret must reach the cookie.

    ::

        <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">

    :param environ: The request's WSGI environ (default: the current request).
    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.
    """
    session = get_session(environ)
    secret = _session_secret(session)
    if secret is None:
        rotate_csrf_secret(session)
        secret = session[CSRF_KEY]
    mask = secrets.token_bytes(_SECRET_BYTES)
    masked = bytes(a ^ b for a, b in zip(mask, secret, strict=True))
    return base64.urlsafe_b64encode(mask + masked).rstrip(b"=").decode("ascii")


def _unmask(token: str) -> bytes | None:
    # The length and alphabet are checked first: a 1 MB or non-ASCII value is
    # refused without decoding it.
    if len(token) != 86 or not _TOKEN.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except (binascii.Error, ValueError):
        return None
    mask, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    return bytes(a ^ b for a, b in zip(mask, masked, strict=True))


def _origin(scheme: str, netloc: str) -> str:
    scheme, netloc = scheme.lower(), netloc.lower()
    host, sep, port = netloc.rpartition(":")
    if sep and port == _DEFAULT_PORTS.get(scheme):
        netloc = host
    return f"{scheme}://{netloc}"


def _url_origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    return _origin(parts.scheme, parts.netloc)


class CsrfMiddleware:
    """Refuse unsafe requests that lack a valid CSRF token or come from another origin.

    :param app: The WSGI application to protect; wrap the result in
        :class:`~wsgisession.SessionMiddleware`.
    :param field_name: The form field that carries the token.
    :param header_name: The request header that carries the token (for ``fetch``,
        JSON bodies and anything that is not a form).
    :param exempt_paths: URL path prefixes that are not checked (a webhook that
        authenticates by signature, an API that uses bearer tokens). Matched on
        segment boundaries: ``/hooks`` exempts ``/hooks/github``, not ``/hooksy``.
    :param trusted_origins: Other origins (``"https://app.example.com"``) allowed to
        send unsafe requests, for a front end served from another host.
    :param limits: How much of a form body is parsed to find the token: a
        :class:`~wsgisession.RequestLimits`. ``None`` (default): those given to
        :class:`~wsgisession.SessionMiddleware`, else the defaults.
    :param error_page: ``error_page(refusal, environ)`` returns the WSGI application
        (a werkzeug ``Response``, say) that answers a refused request (the refusal is
        a :class:`~wsgisession.errors.CsrfError`; its ``reason`` says why) for a
        client that does not prefer JSON: a page saying the form was out of date,
        with a link back. ``None`` (default): one line of plain text.
    :raises ConfigurationError: an empty field or header name, a path not starting
        with ``/``, a trusted origin that is not ``scheme://host[:port]``,
        *limits* that is not a ``RequestLimits``, or *error_page* not callable.

    The check, for a method other than ``GET``, ``HEAD``, ``OPTIONS``, ``TRACE``, on
    a session carried in the cookie (:attr:`Session.transport
    <wsgisession.Session.transport>`; one carried in the session header is no ambient
    credential, and passes):

    1. ``Origin``, if sent, must be this site's own origin or a trusted one; over
       HTTPS without ``Origin``, ``Referer`` must be present and same-origin;
    2. a token must be in the header, or else in the form field of a form body; the
       form is only parsed for a session that has a CSRF secret, and within
       *limits* (a ``413`` beyond them);
    3. it must unmask to the secret of this request's session.

    A failure answers ``403`` (:class:`~wsgisession.errors.CsrfError`) in plain text
    (or *error_page*), or JSON for a client that asks for it, and is logged as a
    warning.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
        exempt_paths: str | Iterable[str] = (),
        trusted_origins: Iterable[str] = (),
        limits: RequestLimits | None = None,
        error_page: ErrorPage | None = None,
    ) -> None:
        if not isinstance(field_name, str) or not field_name:
            raise ConfigurationError(f"field_name must be a non-empty str, not {field_name!r}")
        if not isinstance(header_name, str) or not re.fullmatch(r"[A-Za-z0-9-]+", header_name):
            raise ConfigurationError(
                f"header_name must be an HTTP header name such as 'X-CSRF-Token',"
                f" not {header_name!r}"
            )
        self.app = app
        self.field_name = field_name
        self.header_name = header_name
        self._environ_header = "HTTP_" + header_name.upper().replace("-", "_")
        self.exempt_paths = PathPrefixes(exempt_paths, "exempt_paths")
        if isinstance(trusted_origins, str):
            trusted_origins = [trusted_origins]
        self.trusted_origins = frozenset(self._trusted(o) for o in trusted_origins)
        self.limits = check_limits(limits)
        self.error_page = check_error_page(error_page)

    @staticmethod
    def _trusted(value: str) -> str:
        origin = _url_origin(value) if isinstance(value, str) else None
        if origin is None or urlsplit(value).path not in ("", "/"):
            raise ConfigurationError(
                f"each of trusted_origins must be an origin such as"
                f" 'https://app.example.com', not {value!r}"
            )
        return origin

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session: Session | None = environ.get(SESSION_KEY)
        if session is None:
            raise RuntimeError(
                "CsrfMiddleware found no session: it keeps its secret in the session, so"
                " it must be inside SessionMiddleware, as in"
                " SessionMiddleware(CsrfMiddleware(app), secret_key=...)"
            )
        if self.limits is not None:
            keep_body_readable(environ, self.limits)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if (
            method in SAFE_METHODS
            or self.exempt_paths.covers_strictly(environ)
            # Sent in the session header: no browser sends it unasked, so no other
            # site can (SessionMiddleware refuses a request that sends the cookie too).
            or session.transport == "header"
        ):
            return self.app(environ, start_response)
        try:
            self.check(environ)
        except CsrfError as exc:
            log.warning(
                "refused %s %s (Origin %r, Referer %r): %s",
                method,
                environ.get("PATH_INFO", "/"),
                environ.get("HTTP_ORIGIN"),
                environ.get("HTTP_REFERER"),
                exc.description,
            )
            return answer_refusal(exc, environ, start_response, self.error_page)
        except HTTPException as exc:  # an unreadable or too large form body
            return exc(environ, start_response)
        return self.app(environ, start_response)

    def own_origin(self, environ: WSGIEnvironment) -> str:
        """This request's own origin, ``scheme://host[:port]`` (default port left out)."""
        return _origin(environ.get("wsgi.url_scheme", "http"), get_host(environ))

    def check(self, environ: WSGIEnvironment) -> None:
        """Run the origin and token checks on an unsafe request.

        :raises CsrfError: the request must be refused; ``reason`` says why.
        :raises werkzeug.exceptions.HTTPException: the form body is malformed (400)
            or too large (413).
        """
        own = self.own_origin(environ)
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None:
            if origin != own and _url_origin(origin) not in self.trusted_origins | {own}:
                raise CsrfError(
                    "origin", "CSRF check failed: the request came from another site (Origin)."
                )
        elif environ.get("wsgi.url_scheme") == "https":
            referer = environ.get("HTTP_REFERER")
            if not referer:
                raise CsrfError(
                    "origin",
                    "CSRF check failed: an HTTPS request with neither Origin nor Referer"
                    " (a Referrer-Policy of 'no-referrer' causes this; use 'same-origin').",
                )
            if _url_origin(referer) not in self.trusted_origins | {own}:
                raise CsrfError(
                    "origin",
                    "CSRF check failed: the Referer is another site or not HTTPS.",
                )
        token = environ.get(self._environ_header)
        secret = _session_secret(get_session(environ))
        if not token and is_form(environ):
            # No token can be valid without a secret: an anonymous client's form
            # is never parsed, so its size and shape cost nothing.
            if secret is None:
                raise _no_secret()
            token = form_data(environ)[0].get(self.field_name)
        if not token:
            raise CsrfError(
                "missing",
                f"CSRF token missing: send it in the {self.field_name!r} form field or"
                f" the {self.header_name} header.",
            )
        if secret is None:
            raise _no_secret()
        unmasked = _unmask(token)
        if unmasked is None or not hmac.compare_digest(unmasked, secret):
            raise CsrfError(
                "invalid",
                "CSRF token invalid: it is malformed, out of date or from another session;"
                " reload the page and try again.",
            )
