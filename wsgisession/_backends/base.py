"""What both backends share: expiry rules, reading the value sent, the save at header time."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import serialization
from ..cookies import MAX_COOKIE_AGE, CookieOptions, request_cookie_values
from ..errors import StoreUnavailable
from ..events import Acceptance, EventName, login_of
from ..sessions import Loaded, Pending, Saved, SessionState

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..events import SessionHooks
    from ..migration import Migration
    from .transport import SessionHeader, Transport


log = logging.getLogger("wsgisession")

#: Timestamps this far in the future are still accepted: machines behind one load
#: balancer disagree on the time by a few seconds, and refusing a cookie another
#: machine issued a moment "later" would log users out at random.
CLOCK_SKEW = 300

#: TTL of a server-side session whose cookie ends with the browser (``max_age=None``)
#: and that has no ``absolute_max_age``: the server must forget it some time.
BROWSER_SESSION_TTL = 1209600

_SID = re.compile(rb"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """The expiry settings of one middleware.

    Methods take the session's own *lifetime* (:attr:`SessionState.lifetime`):
    ``None`` for the middleware's ``max_age``, ``0`` for a browser-session cookie, or
    an idle timeout in seconds. No idle timeout, cookie ``Max-Age`` or store TTL they
    give is over :data:`~wsgisession.cookies.MAX_COOKIE_AGE` (400 days).
    """

    max_age: int | None
    absolute_max_age: int | None
    #: As configured; ``None`` derives it per session from the idle timeout.
    refresh_interval: int | None = None
    # idle_limit() and the renewal interval of a session without its own lifetime
    # (most sessions), worked out once: both are asked on every load.
    _default_idle: int | None = field(default=None, init=False, repr=False, compare=False)
    #: How often a session without its own lifetime is renewed (see refresh_due);
    #: worked out once, as the backends read it on every save.
    default_refresh: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_default_idle", self._idle_limit(None))
        object.__setattr__(self, "default_refresh", self._refresh_interval(None))

    def idle_limit(self, lifetime: int | None) -> int | None:
        """How long the session may go unused before the server refuses it.

        A browser-session cookie has no ``Max-Age``, but the server still forgets it
        after :data:`BROWSER_SESSION_TTL` unused unless ``absolute_max_age`` caps it,
        so a cookie copied years ago never logs in.
        """
        return self._default_idle if lifetime is None else self._idle_limit(lifetime)

    def _idle_limit(self, lifetime: int | None) -> int | None:
        max_age = self.max_age if lifetime is None else (lifetime or None)
        if max_age is None:
            if self.absolute_max_age is None:
                return BROWSER_SESSION_TTL
            if self.absolute_max_age <= MAX_COOKIE_AGE:
                return None
        # Nothing outlives MAX_COOKIE_AGE unused: a lifetime from an older cookie may
        # be longer, and a store's TTL must stay in range (PostgreSQL's integer).
        return MAX_COOKIE_AGE if max_age is None else min(max_age, MAX_COOKIE_AGE)

    def expired(
        self, issued: int, created: int, now: int, lifetime: int | None = None
    ) -> str | None:
        """Why a session issued and created at these times is no longer valid, if it isn't."""
        if issued > now + CLOCK_SKEW or created > now + CLOCK_SKEW:
            return "its timestamp is in the future"
        idle = self._default_idle if lifetime is None else self._idle_limit(lifetime)
        if idle is not None and now - issued > idle:
            return "it was idle too long"
        if self.absolute_max_age is not None and now - created > self.absolute_max_age:
            return "it reached absolute_max_age"
        return None

    def refresh_due(self, issued: int | None, now: int, lifetime: int | None = None) -> bool:
        """Whether a read-only session should have its idle timeout renewed now."""
        if issued is None:
            return False
        interval = self.default_refresh if lifetime is None else self._refresh_interval(lifetime)
        return interval is not None and now - issued >= interval

    def _refresh_interval(self, lifetime: int | None) -> int | None:
        interval = self.refresh_interval
        if interval is None or (self.max_age if lifetime is None else lifetime) in (None, 0):
            # A browser-session cookie has no Max-Age to renew, only the server's bound
            # on it: a tenth of that is often enough, whatever refresh_interval says
            # (Flask's SESSION_REFRESH_EACH_REQUEST renews permanent sessions only).
            idle = self._idle_limit(lifetime)
            if idle is None:
                return None
            interval = max(1, idle // 10)
        return interval

    def cookie_max_age(self, created: int, now: int, lifetime: int | None = None) -> int | None:
        """The cookie's Max-Age: the idle timeout, cut short by absolute expiry."""
        max_age = self.max_age if lifetime is None else (lifetime or None)
        if max_age is None:
            return None
        if max_age > MAX_COOKIE_AGE:  # not min(): this runs on every cookie write
            max_age = MAX_COOKIE_AGE
        if self.absolute_max_age is None:
            return max_age
        return max(1, min(max_age, self.absolute_max_age - (now - created)))

    def ttl(self, created: int, now: int, lifetime: int | None = None) -> int:
        """How long a server-side record may live unused: never over :data:`MAX_COOKIE_AGE`."""
        ttl = self.idle_limit(lifetime) or self.absolute_max_age or BROWSER_SESSION_TTL
        if self.absolute_max_age is not None:
            ttl = min(ttl, self.absolute_max_age - (now - created))
        return max(1, ttl)


class CookieContents(NamedTuple):
    """What a session cookie that verified says, before any expiry check.

    Made by :meth:`ClientBackend.read_cookie` and :meth:`ServerBackend.read_cookie`,
    which the middleware uses on every load and ``wsgisession inspect`` uses to
    explain a cookie, so the cookie formats are parsed in one place only. A
    ``NamedTuple``: it is built on every session load, where a frozen dataclass
    costs a microsecond.
    """

    #: When the session was created (Unix seconds, signed into the cookie).
    created: int
    #: When the cookie was last issued: the idle clock.
    issued: int
    #: ``True`` when it verified under a fallback key.
    stale_key: bool
    #: The session data of a client-side cookie; ``None`` for a server-side id.
    data: dict[str, Any] | None = None
    #: The session id of a server-side cookie; ``None`` for a client-side one.
    sid: str | None = None
    #: The session's own lifetime (:attr:`SessionState.lifetime`); ``None``: the default.
    lifetime: int | None = None


def _log_outage(exc: StoreUnavailable) -> None:
    # Logged here, where the store is called, not where the 503 is rendered: a
    # framework (werkzeug's Request.application, Flask) renders a StoreUnavailable
    # raised inside a view itself, and the middleware never sees it.
    log.error("session store unavailable, answering 503: %s", exc)


def _biggest_keys(data: dict[str, Any]) -> list[tuple[str, int]]:
    sizes = [(key, len(serialization.dumps(value))) for key, value in data.items()]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:5]


class _Base:
    def __init__(
        self,
        cookie: CookieOptions | None,
        times: SessionTimes,
        header: SessionHeader | None = None,
    ) -> None:
        #: The session cookie; ``None`` when sessions travel in the header only.
        self.cookie = cookie
        #: The session header; ``None`` (most apps): sessions travel in the cookie.
        self.header = header
        named = cookie if cookie is not None else header
        assert named is not None, "a session travels in a cookie, a header or both"
        #: The session's name, for messages: its cookie's, else its header's.
        self.session_name = named.name
        self.times = times
        self.default_max_age = times.max_age
        #: Event callbacks and device tracking; ``None`` (nothing to call) until used.
        self.hooks: SessionHooks | None = None
        #: The reader of the old system's sessions, while a migration runs.
        self.migration: Migration | None = None

    def _fresh(self, environ: WSGIEnvironment, now: int) -> Loaded:
        """A new session for a request without a session cookie of ours.

        While a migration runs, the old system's session, if the request has one.
        """
        if self.migration is not None:
            carried = self._carried_over(self.migration, environ, now)
            if carried is not None:
                return carried
        return {}, SessionState(now), True, (), False

    def _refused(self, environ: WSGIEnvironment, now: int, exc: Exception) -> Loaded:
        """A new session for a session cookie that failed verification.

        While a migration runs, it may be the old system's cookie of the same name.
        """
        if self.migration is not None:
            carried = self._carried_over(self.migration, environ, now)
            if carried is not None:
                return carried
        log.warning("ignored an invalid session cookie (%s); starting a fresh session", exc)
        if self.hooks is not None:
            self.hooks.emit(EventName.TAMPERED, reason=type(exc).__name__)
        return {}, SessionState(now), True, (), False

    def _expired(self, now: int, reason: str) -> Loaded:
        """A new session for a session cookie too old for its lifetime."""
        log.info("the session cookie expired (%s); starting a fresh session", reason)
        if self.hooks is not None:
            self.hooks.emit(EventName.EXPIRED, reason=reason)
        return {}, SessionState(now), True, (), False

    def _carried_over(
        self, migration: Migration, environ: WSGIEnvironment, now: int
    ) -> Loaded | None:
        data = migration.carry_over(environ)
        if not data:
            return None
        record = SessionState(now)
        if self.hooks is not None:
            # Device tracking adopts a carried-over login as it adopts any login it
            # has not seen: a device from now on, ended by revoke_all.
            if self.hooks.accept(data, record, environ) is Acceptance.REFUSED:
                return {}, SessionState(now), True, (), False
            self.hooks.emit(EventName.MIGRATED, data, "migrated")
            user = login_of(data)
            if user is not None:
                self.hooks.emit(EventName.LOGGED_IN, data, "migrated", user_id=user)
        # Every key counts as written: the session is saved under a new id.
        return data, record, True, tuple(data), False

    def transport(self, environ: WSGIEnvironment) -> Transport:
        """How the session of the request *environ* travels: ``"cookie"`` or ``"header"``."""
        header = self.header
        return "header" if header is not None and header.carries(environ) else "cookie"

    def _client_value(self, environ: WSGIEnvironment) -> str | None:
        """The session value the request sends: its session header's, else its cookie's."""
        header = self.header
        if header is not None and header.carries(environ):
            if header.ambiguous(environ):
                # SessionMiddleware answers such a request 400 before the app runs;
                # a session opened outside it (a test helper) trusts neither.
                log.warning(
                    "the request sends both the %s header and a session cookie; trusting"
                    " neither, starting a fresh session",
                    header.name,
                )
                return None
            return header.value(environ)
        # A cookie that turns out invalid is ignored, never deleted: during a rolling
        # key rotation another worker may already sign with a key this one lacks, and
        # deleting would log the user out. A request that writes replaces it.
        name = self.cookie.name  # type: ignore[union-attr]  # no header: a cookie
        values = request_cookie_values(environ, name)
        if not values:
            return None
        if len(values) > 1:
            log.warning(
                "the request carries %d cookies named %r (one set for another path or a"
                " parent domain?); trusting neither, starting a fresh session. A __Host-"
                " cookie name rules this out.",
                len(values),
                name,
            )
            return None
        return values[0] or None

    def _issue_line(
        self, value: str, environ: WSGIEnvironment, max_age: int | None, *, plain: bool
    ) -> str:
        """What the response carries to give the client *value*: a ``Set-Cookie`` value,
        or for a session that travels in the header, *value* itself."""
        header = self.header
        if header is not None and header.carries(environ):
            return value
        cookie = self.cookie
        assert cookie is not None  # no cookie: every session travels in the header
        return cookie.set_header(value, environ, max_age=max_age, plain=plain)

    def _delete_line(self, environ: WSGIEnvironment) -> str:
        """What the response carries to end the client's session: a ``Set-Cookie``
        that deletes the cookie, or for a session that travels in the header, ``""``."""
        header = self.header
        if header is not None and header.carries(environ):
            return ""
        cookie = self.cookie
        assert cookie is not None  # no cookie: every session travels in the header
        return cookie.delete_header(environ)

    def save(self, pending: Pending, now: int, late: bool) -> Saved:
        """Plan what *pending* needs written, write it, and say how it went."""
        raise NotImplementedError

    def _lost(self, what: str) -> None:
        log.warning(
            "the session was changed after the response headers were sent, so %s was"
            " lost; change the session before calling start_response",
            what,
        )
