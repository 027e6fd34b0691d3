"""URL path prefixes for guards and CSRF exemptions, matched on segment boundaries.

``/admin`` covers ``/admin`` and ``/admin/users`` but not ``/administrator``. The
request path is also checked in a normalized form (repeated slashes collapsed, ``.``
and ``..`` resolved), because routers differ in what they normalize: a guard on
``/admin`` must not be skipped by ``//admin`` or ``/public/../admin``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["PathPrefixes"]

_SLASHES = re.compile(r"/{2,}")


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

        For guards: when in doubt, guard.
        """
        path = environ.get("PATH_INFO") or "/"
        return self._match(path) or self._match(_normalize(path))

    def covers_strictly(self, environ: WSGIEnvironment) -> bool:
        """Whether the request's path, as sent *and* normalized, is under a prefix.

        For exemptions: when in doubt, do not exempt.
        """
        path = environ.get("PATH_INFO") or "/"
        return self._match(path) and self._match(_normalize(path))
