"""URL paths: prefixes for guards and CSRF exemptions, and safe redirect targets.

``/admin`` covers ``/admin`` and ``/admin/users`` but not ``/administrator``. The
request path is also checked in a normalized form (repeated slashes collapsed, ``.``
and ``..`` resolved), because routers differ in what they normalize: a guard on
``/admin`` must not be skipped by ``//admin`` or ``/public/../admin``.

Prefixes are text (``/café``), while PEP 3333 gives ``PATH_INFO`` as the raw bytes
decoded as latin-1 (``/caf\xc3\xa9``). werkzeug, Flask and Django route on the path
decoded as UTF-8, so that is the path compared; a path that is not UTF-8 is
guarded by every guard with paths and exempted by nothing.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["PathPrefixes", "request_path", "request_target", "safe_next"]

_SLASHES = re.compile(r"/{2,}")

# Characters left as they are when the original URL is put into ``next=``.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"
_MAX_NEXT = 2048


def _normalize(path: str) -> str:
    normalized = posixpath.normpath(_SLASHES.sub("/", path or "/"))
    return normalized if normalized.startswith("/") else "/" + normalized


class PathPrefixes:
    """A set of path prefixes, validated once.

    :param paths: Prefixes such as ``"/admin"``; a single string is one prefix.
    :param what: The option's name, for error messages.
    :raises ConfigurationError: a prefix that is not a string starting with ``/``.
    """

    __slots__ = ("prefixes",)

    def __init__(self, paths: str | Iterable[str], what: str) -> None:
        if isinstance(paths, str):
            paths = [paths]
        prefixes = []
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigurationError(
                    f"each of {what} must be a URL path starting with '/', not {path!r}"
                )
            prefixes.append(_normalize(path))
        self.prefixes = tuple(prefixes)

    def _match(self, path: str) -> bool:
        for prefix in self.prefixes:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return True
        return False

    def covers(self, environ: WSGIEnvironment) -> bool:
        """Whether the request's path, as sent *or* normalized, is under a prefix.

        For guards: when in doubt, guard; a path that is not UTF-8 is covered.
        """
        path = request_path(environ)
        if path is None:
            return True
        return self._match(path) or self._match(_normalize(path))

    def covers_strictly(self, environ: WSGIEnvironment) -> bool:
        """Whether the request's path, as sent *and* normalized, is under a prefix.

        For exemptions: when in doubt, do not exempt; a path that is not UTF-8 is not.
        """
        path = request_path(environ)
        if path is None:
            return False
        return self._match(path) and self._match(_normalize(path))


def request_path(environ: WSGIEnvironment) -> str | None:
    """``PATH_INFO`` as the frameworks route on it (UTF-8), or ``None`` if it is not UTF-8."""
    path = environ.get("PATH_INFO") or "/"
    if path.isascii():
        return path
    try:
        return _wsgi_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def safe_next(value: object, default: str = "/") -> str:
    """*value* if it is a same-site path to redirect to, else *default*.

    Use it on the ``next`` parameter of a login page before redirecting there:
    only a path such as ``/account?tab=1`` passes. ``https://evil.example``,
    ``//evil.example``, ``/\\\\evil.example``, anything with a backslash or a control
    character (browsers drop tabs and newlines, so ``/\\t/evil.example`` would
    become ``//evil.example``), or over 2048 characters gives *default*.

    :param value: The candidate, typically ``request.args.get("next")``.
    :param default: Where to go instead.
    """
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.startswith("//")
        or len(value) > _MAX_NEXT
        or "\\" in value
        or not value.isprintable()
    ):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _wsgi_bytes(value: str) -> bytes:
    # PEP 3333 strings carry the raw bytes as latin-1; a server that broke the rule
    # and passed real text is handled as UTF-8.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def request_target(environ: WSGIEnvironment) -> str:
    """The path and query the request asked for, re-encoded, as a safe ``next``."""
    path = environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/")
    target = quote(_wsgi_bytes(path), safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    if query:
        target += "?" + quote(_wsgi_bytes(query), safe=_QUERY_SAFE)
    return safe_next(target)
