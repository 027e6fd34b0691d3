"""Cookie options, cookie headers and single signed cookies.

:class:`CookieOptions` validates a cookie's attributes once, at start-up, and writes
``Set-Cookie`` headers with werkzeug's :func:`~werkzeug.http.dump_cookie`; parsing
is werkzeug's :func:`~werkzeug.http.parse_cookie` (:func:`request_cookies`, and
:func:`request_cookie_values`, whose fast path is proven equal to it). Nothing here
formats or parses HTTP by hand.

:func:`get_signed_cookie` and :func:`set_signed_cookie` keep one value in its own
signed cookie: the client can read it but not
change it. Use them for small values that must outlive the session, such as a
"remember my theme" choice. They sign with the keys of the enclosing
:class:`~wsgisession.SessionMiddleware` under their own purpose, so a signed cookie
is never accepted as a session cookie, nor one signed cookie as another.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from itsdangerous import BadSignature
from itsdangerous.encoding import base64_decode, base64_encode
from werkzeug.http import dump_cookie

from . import serialization
from ._cookie_header import expect_cookie, request_cookie_values, request_cookies
from ._options import check_bool, count
from .context import current_environ
from .errors import ConfigurationError, SessionTooLarge
from .signing import Keyring, PurposeSigner

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "MAX_COOKIE_AGE",
    "CookieOptions",
    "get_signed_cookie",
    "request_cookie_values",
    "request_cookies",
    "set_signed_cookie",
]

log = logging.getLogger("wsgisession")

# RFC 6265 section 4.1.1: a cookie name is an RFC 2616 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# RFC 6265 section 4.1.1: a host name (RFC 1034 labels) with an optional leading
# dot, which browsers ignore; anything else could smuggle attributes (a domain of
# "example.com; SameSite=None") into Set-Cookie, as werkzeug writes it unquoted.
_COOKIE_DOMAIN = re.compile(
    r"\.?(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# RFC 6265 path-value: anything but controls and ";" (werkzeug percent-encodes the
# rest); whitespace is refused too.
_COOKIE_PATH = re.compile(r"[^\s;]*")

#: Browsers drop a ``Set-Cookie`` value longer than this (name, value and attributes).
MAX_COOKIE_SIZE = 4093

#: The longest lifetime a cookie, and so a session, can have: 400 days, in seconds.
#: Browsers cap ``Max-Age`` and ``Expires`` there (RFC 6265bis, section 5.5), so a
#: longer ``max_age`` is clamped to it rather than sent, and no session outlives it
#: unused in a server-side store either.
MAX_COOKIE_AGE = 400 * 86400

# Values werkzeug's dump_cookie writes unquoted and unchanged: base64url and dots.
# The bytes of a cookie value dump_cookie writes unquoted: base64url and ".". Checked
# by deleting them (bytes.translate, a quarter of the cost of a regex fullmatch on a
# 600-character value); anything left over goes through dump_cookie itself.
_COOKIE_SAFE_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_PLACEHOLDER = "wsgisession-value-placeholder"

KEYRING_KEY = "wsgisession.keyring"


@dataclass(frozen=True)
class CookieOptions:
    """The name and attributes of a cookie, validated when created.

    :param name: The cookie name: an RFC 6265 token. A ``__Host-`` name forces
        ``Secure``, ``Path=/`` and no ``Domain``; a ``__Secure-`` name forces ``Secure``
        (browsers ignore such cookies otherwise).
    :param max_age: Lifetime in seconds, or ``None`` for a cookie that ends with the
        browser session. A cookie is sent with at most :data:`MAX_COOKIE_AGE` (400
        days), the most browsers keep one.
    :param path: The ``Path`` attribute.
    :param domain: The ``Domain`` attribute; ``None`` keeps the cookie to this host.
        A host name only (``example.com``): no port, no ``;`` or space.
    :param secure: ``True`` or ``False``, or ``None`` for "Secure exactly when the
        request came over HTTPS".
    :param httponly: Hide the cookie from JavaScript.
    :param samesite: ``"Lax"``, ``"Strict"``, ``"None"`` (needs Secure) or ``None``.
    :param partitioned: Add ``Partitioned`` (CHIPS: a third-party cookie kept per
        top-level site); forces ``Secure``, as browsers require.
    :raises ConfigurationError: an invalid name, domain or path, or a contradictory
        combination.
    """

    name: str = "session"
    max_age: int | None = 1209600
    path: str = "/"
    domain: str | None = None
    secure: bool | None = None
    httponly: bool = True
    samesite: str | None = "Lax"
    partitioned: bool = False

    _template: tuple[tuple[int | None, bool, int], str, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(
                f"cookie name {name!r} is not valid: use only letters, digits and"
                " !#$%&'*+-.^_`|~ (no ';', '=', whitespace or control characters)"
            )
        count("max_age", self.max_age, unit="seconds", optional=True)
        check_bool("httponly", self.httponly)
        check_bool("partitioned", self.partitioned)
        check_bool("secure", self.secure, optional=True)
        self._check_path_and_domain()
        samesite = self.samesite
        if samesite is not None:
            if not isinstance(samesite, str) or samesite.lower() not in _SAMESITE:
                raise ConfigurationError(
                    f"samesite must be 'Lax', 'Strict', 'None' or None, not {samesite!r}"
                )
            samesite = _SAMESITE[samesite.lower()]
            object.__setattr__(self, "samesite", samesite)
        self._force_secure(name, samesite)

    def _check_path_and_domain(self) -> None:
        if (
            not isinstance(self.path, str)
            or not self.path.startswith("/")
            or not self.path.isprintable()
            or not _COOKIE_PATH.fullmatch(self.path)
        ):
            raise ConfigurationError(
                f"cookie path must start with '/' and hold no ';', space or control"
                f" character, not {self.path!r}"
            )
        if self.domain is not None and (
            not isinstance(self.domain, str) or not _COOKIE_DOMAIN.fullmatch(self.domain)
        ):
            raise ConfigurationError(
                f"cookie domain must be a host name such as 'example.com' (letters,"
                f" digits, '-' and '.'; an international name in its xn-- form; no port),"
                f" not {self.domain!r}"
            )

    def _force_secure(self, name: str, samesite: str | None) -> None:
        # __Host-, __Secure-, SameSite=None and Partitioned cookies are only kept
        # by browsers when Secure.
        secure = self.secure
        lowered = name.lower()
        needs_secure = None
        if lowered.startswith("__host-"):
            needs_secure = f"a cookie named {name!r} (__Host- prefix)"
            if self.domain is not None:
                raise ConfigurationError(
                    f"a cookie named {name!r} cannot have a Domain: browsers reject __Host-"
                    " cookies with one; remove domain= or rename the cookie"
                )
            if self.path != "/":
                raise ConfigurationError(
                    f"a cookie named {name!r} must have path='/': browsers reject __Host-"
                    " cookies with any other Path"
                )
        elif lowered.startswith("__secure-"):
            needs_secure = f"a cookie named {name!r} (__Secure- prefix)"
        elif samesite == "None":
            needs_secure = "samesite='None'"
        elif self.partitioned:
            needs_secure = "a Partitioned cookie"
        if needs_secure is not None:
            if secure is False:
                raise ConfigurationError(
                    f"{needs_secure} must be Secure, but secure=False was given;"
                    " leave secure unset or set it to True"
                )
            object.__setattr__(self, "secure", True)

    def is_secure(self, environ: WSGIEnvironment) -> bool:
        """Whether the cookie gets the ``Secure`` attribute for this request."""
        if self.secure is None:
            return bool(environ.get("wsgi.url_scheme") == "https")
        return self.secure

    def set_header(
        self,
        value: str,
        environ: WSGIEnvironment,
        *,
        max_age: int | None = -1,
        plain: bool = False,
    ) -> str:
        """The ``Set-Cookie`` value that stores *value* (werkzeug's ``dump_cookie``).

        :param max_age: Override :attr:`max_age` for this cookie (``-1``: don't).
        :param plain: The caller guarantees *value* holds only URL-safe base64
            characters and dots (a signed or encrypted value): it is not checked.
            Such a value (a session cookie's) is also remembered as the answer for
            the ``Cookie`` header a client sends back with it alone
            (:func:`~wsgisession._cookie_header.expect_cookie`).
        """
        if max_age == -1:
            max_age = self.max_age
        secure = self.secure  # is_secure(), inlined: this runs on every cookie write
        if secure is None:
            secure = environ.get("wsgi.url_scheme") == "https"
        if plain:
            expect_cookie(self.name, value)
        elif not value.isascii() or value.encode("ascii").translate(None, _COOKIE_SAFE_BYTES):
            return self._dump(value, max_age, secure)
        # dump_cookie costs as much as signing the session; its output only changes
        # with the value, so reuse this second's output for the other attributes
        # (tests/test_cookies.py checks it against dump_cookie's for every kind of
        # attribute).
        key = (max_age, secure, int(time.time()))
        cached = self._template
        if cached is None or cached[0] != key:
            prefix, _, suffix = self._dump(_PLACEHOLDER, max_age, secure).partition(_PLACEHOLDER)
            cached = (key, prefix, suffix)
            object.__setattr__(self, "_template", cached)
        return f"{cached[1]}{value}{cached[2]}"  # one copy, where + makes two

    def _dump(self, value: str, max_age: int | None, secure: bool) -> str:
        if max_age is not None and max_age > MAX_COOKIE_AGE:
            # Browsers would cap it anyway, and Expires beyond year 9999 is an error.
            max_age = MAX_COOKIE_AGE
        return dump_cookie(
            self.name,
            value,
            max_age=max_age,
            path=self.path,
            domain=self.domain,
            secure=secure,
            httponly=self.httponly,
            samesite=self.samesite,
            partitioned=self.partitioned,
            max_size=0,  # callers check the size themselves and raise SessionTooLarge
        )

    def delete_header(self, environ: WSGIEnvironment) -> str:
        """The ``Set-Cookie`` value that deletes the cookie.

        It carries the same Path, Domain, Secure and SameSite the cookie was set
        with: a browser only replaces a cookie whose attributes match.
        """
        return dump_cookie(
            self.name,
            "",
            max_age=0,
            expires=0,
            path=self.path,
            domain=self.domain,
            secure=self.is_secure(environ),
            httponly=self.httponly,
            samesite=self.samesite,
            partitioned=self.partitioned,
        )


class _HeaderList(Protocol):
    def append(self, item: tuple[str, str], /) -> None: ...


class _Headers(Protocol):
    def add(self, key: str, value: Any, /, **kwargs: Any) -> None: ...


def _purpose(name: str) -> str:
    return f"wsgisession.cookie:{name}"


def _keyring_for(secret_key: str | bytes | None, environ: WSGIEnvironment | None) -> Keyring:
    if secret_key is not None:
        return Keyring(secret_key)
    keyring = environ.get(KEYRING_KEY) if environ is not None else None
    if keyring is None:
        raise RuntimeError(
            "signed cookies need a key: call this inside an app wrapped in"
            " SessionMiddleware, or pass secret_key="
        )
    assert isinstance(keyring, Keyring)
    return keyring


def _optional_environ() -> WSGIEnvironment | None:
    try:
        return current_environ()
    except RuntimeError:
        return None


def get_signed_cookie(
    environ: WSGIEnvironment,
    name: str,
    *,
    max_age: int | None = None,
    secret_key: str | bytes | None = None,
    default: Any = None,
) -> Any:
    """Read a cookie written by :func:`set_signed_cookie`.

    :param environ: The WSGI environ of the current request.
    :param name: The cookie name.
    :param max_age: Refuse a cookie signed more than this many seconds ago.
    :param secret_key: Verify with this key instead of the enclosing
        :class:`~wsgisession.SessionMiddleware`'s keys.
    :param default: Returned when the cookie is missing, tampered with or expired,
        or when the request carries two cookies of that name (which one was set by
        this site cannot be told, so neither is trusted).
    :returns: The value that was set, with its type (tagged JSON).
    """
    values = request_cookies(environ).getlist(name)
    if len(values) > 1:
        # Cookie tossing: a sibling subdomain (or a page over plain HTTP) can set a
        # cookie of the same name for a parent domain or another path, and the
        # browser sends both in an order the server cannot rely on.
        log.warning(
            "ignored the %r cookie: the request carries %d cookies of that name (one"
            " set for another path or a parent domain?); a __Host- name rules this out",
            name,
            len(values),
        )
        return default
    value = values[0] if values else None
    if not value:
        return default
    signer = _keyring_for(secret_key, environ).signer(_purpose(name))
    try:
        unsigned = signer.unsign(value)
        if max_age is not None and time.time() - unsigned.timestamp > max_age:
            return default
        return serialization.loads(base64_decode(unsigned.value))
    except (BadSignature, ValueError, RecursionError):
        log.warning("ignored the %r cookie: its signature or content is invalid", name)
        return default


def set_signed_cookie(
    headers: _HeaderList | _Headers,
    name: str,
    value: Any,
    *,
    secret_key: str | bytes | None = None,
    max_age: int | None = None,
    path: str = "/",
    domain: str | None = None,
    secure: bool | None = None,
    httponly: bool = True,
    samesite: str | None = "Lax",
) -> None:
    """Add a ``Set-Cookie`` header that stores *value*, signed, in cookie *name*.

    :param headers: The header list passed to ``start_response``, or a werkzeug
        :class:`~werkzeug.datastructures.Headers` (``response.headers``).
    :param name: The cookie name.
    :param value: Any value the session can hold (see :mod:`wsgisession.serialization`).
    :param secret_key: Sign with this key instead of the enclosing
        :class:`~wsgisession.SessionMiddleware`'s current key.
    :param max_age: Cookie lifetime in seconds, at most :data:`MAX_COOKIE_AGE` (400
        days) however long; ``None`` ends with the browser session.
    :param secure: ``None`` means Secure exactly when the current request is HTTPS.
    :param path: See :class:`CookieOptions`; so are *domain*, *httponly*, *samesite*.
    :raises SessionTooLarge: the cookie would be over the 4093 bytes browsers keep.
    """
    environ = _optional_environ()
    options = CookieOptions(
        name=name,
        max_age=max_age,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
    )
    signer: PurposeSigner = _keyring_for(secret_key, environ).signer(_purpose(name))
    payload = base64_encode(serialization.dumps(value))
    header = options.set_header(signer.sign(payload).decode("ascii"), environ or {})
    if len(header) > MAX_COOKIE_SIZE:
        raise SessionTooLarge(len(header), MAX_COOKIE_SIZE, [(name, len(payload))], cookie=name)
    if hasattr(headers, "add"):
        headers.add("Set-Cookie", header)
    else:
        headers.append(("Set-Cookie", header))
