"""Reading the request's ``Cookie`` header: werkzeug's parse, and a proven fast path.

Re-exported by :mod:`wsgisession.cookies`, where the public names are documented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.datastructures import MultiDict
from werkzeug.http import parse_cookie

from ._memo import MEMO_SIZE, Memo

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["expect_cookie", "request_cookie_values", "request_cookies"]

# The bytes a plain Cookie header may hold for the fast path: printable ASCII
# (space to "~") but for the quote and backslash, which werkzeug's parser unquotes.
_PLAIN_COOKIE_BYTES = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")
_COOKIES_KEY = "wsgisession.cookies"


def request_cookies(environ: WSGIEnvironment) -> MultiDict[str, str]:
    """The request's cookies, parsed once per request by werkzeug and cached.

    A ``Cookie`` header that is not valid UTF-8 is decoded with replacement
    characters rather than failing: the damaged cookies then fail their signature
    checks, and the others are still read.
    """
    cookies: MultiDict[str, str] | None = environ.get(_COOKIES_KEY)
    if cookies is None:
        try:
            cookies = parse_cookie(environ)
        except UnicodeError:
            raw = environ.get("HTTP_COOKIE", "").encode("latin-1", "replace")
            fixed = raw.decode("utf-8", "replace").encode("utf-8").decode("latin-1")
            cookies = parse_cookie(fixed)
        environ[_COOKIES_KEY] = cookies
    return cookies


def request_cookie_values(environ: WSGIEnvironment, name: str) -> list[str]:
    """The values of the request's cookies named *name*: ``request_cookies(environ).getlist(name)``.

    Exactly what werkzeug's :func:`~werkzeug.http.parse_cookie` finds, but the common
    case, a plain ``Cookie`` header (printable ASCII, no quotes, no backslashes), is
    read without it: this runs on every session load, and werkzeug's parse (a regex
    match and a tuple per cookie, then a ``MultiDict``) was a fifth of a cookie
    session's cost. Anything else goes to werkzeug. ``tests/test_cookie_fast_path.py``
    checks both give the same answer on thousands of generated and hostile headers.
    The answers for recent headers are remembered (:mod:`wsgisession._memo`): a
    browser sends the same header until a response sets a cookie.
    """
    cached: MultiDict[str, str] | None = environ.get(_COOKIES_KEY)
    if cached is not None:
        return cached.getlist(name)
    header = environ.get("HTTP_COOKIE")
    if not header or type(header) is not str:
        return request_cookies(environ).getlist(name) if header else []
    sent = _SENT.get(name)
    if sent is not None:
        expected = sent.get(header[-_TAIL:])
        if expected is not None and expected[0] == header:
            return [expected[1]]
    memo = _PARSED.get(name)
    if memo is None:
        memo = _PARSED.setdefault(name, Memo())
    values = memo.get(header)
    if values is None:
        values = _cookie_values(environ, header, name)
        if len(header) <= _MEMO_HEADER_SIZE:
            memo.put(header, values)
    return list(values)


# Headers longer than this are parsed every time rather than kept.
_MEMO_HEADER_SIZE = 4096
_PARSED: dict[str, Memo[tuple[str, ...]]] = {}

# The headers "name=value" of the cookies recently set (expect_cookie), per name,
# each under its last _TAIL characters: a signed or encrypted value ends with its
# signature or tag, unique to it. Hashing those 43 characters rather than a
# ~650-character header, which arrives as a new string on every request, saves 2 k
# instructions a lookup; the whole header is kept and compared, so a key shared by
# two headers only ever costs a miss.
_TAIL = 43
_SENT: dict[str, dict[str, tuple[str, str]]] = {}


def expect_cookie(name: str, value: str) -> None:
    """Remember the answer for the ``Cookie`` header ``name=value`` before it is sent.

    Called when a response sets the cookie *name* to *value*: a client that holds no
    other cookie for the site sends exactly that header next, and the request finds
    the answer, ``[value]``, without parsing a header it has never seen (14 k
    instructions for a session cookie, a tenth of a cookie write). *name* must be a
    cookie name (an RFC 6265 token, as :class:`~wsgisession.cookies.CookieOptions`
    checks) and *value* plain (URL-safe base64 and dots): the header is then plain
    and :func:`_cookie_values` would answer ``(value,)``, which is what werkzeug
    finds (``tests/test_cookie_fast_path.py``). The last
    :data:`~wsgisession._memo.MEMO_SIZE` or fewer are kept.
    """
    header = f"{name}={value}"
    if len(header) > _MEMO_HEADER_SIZE:
        return
    sent = _SENT.get(name)
    if sent is None:
        sent = _SENT.setdefault(name, {})
    elif len(sent) >= MEMO_SIZE:
        sent.clear()  # the clients of the headers cleared parse theirs once
    sent[value[-_TAIL:]] = (header, value)


def _cookie_values(environ: WSGIEnvironment, header: str, name: str) -> tuple[str, ...]:
    if name not in header:
        return ()  # a cookie's name is part of the header, byte for byte
    if not header.isascii() or header.encode("ascii").translate(None, _PLAIN_COOKIE_BYTES):
        return tuple(request_cookies(environ).getlist(name))
    # werkzeug's grammar on such a header: each ";"-separated part is
    # ` *key( *= *token)? *`, with no space inside key or token; a part that is not
    # is skipped.
    values = []
    for part in header.split(";") if ";" in header else (header,):
        key, eq, value = part.strip(" ").partition("=")
        if eq:
            key = key.rstrip(" ")
            value = value.lstrip(" ")
            if key == name and " " not in value:
                values.append(value)
        elif key == name:
            values.append("")
    return tuple(values)
