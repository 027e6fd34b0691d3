"""How SessionMiddleware loads and saves a session, for each family of store.

:class:`ClientBackend` serves client-side stores (the session is the cookie) and
:class:`ServerBackend` server-side ones (the cookie is a signed id). Both load on
the session's first access, decide at ``start_response`` what to write (comparing
content, never trusting a flag), and treat any unreadable cookie as "no session".
The value travels in the cookie or, with ``SessionMiddleware(header=...)``, in a
request header (:mod:`.transport`); both backends read and write either.
"""

from .base import BROWSER_SESSION_TTL, CLOCK_SKEW, CookieContents, SessionTimes
from .client import ClientBackend
from .server import ServerBackend
from .transport import SessionHeader, Transport

__all__ = [
    "BROWSER_SESSION_TTL",
    "CLOCK_SKEW",
    "ClientBackend",
    "CookieContents",
    "ServerBackend",
    "SessionHeader",
    "SessionTimes",
    "Transport",
]
