"""How SessionMiddleware loads and saves a session, for each family of store.

:class:`ClientBackend` serves client-side stores (the session is the cookie) and
:class:`ServerBackend` server-side ones (the cookie is a signed id). Both load on
the session's first access, decide at ``start_response`` what to write (comparing
content, never trusting a flag), and treat any unreadable cookie as "no session".
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData

from . import serialization
from .cookies import MAX_COOKIE_SIZE, CookieOptions, request_cookies
from .errors import SessionTooLarge, StoreUnavailable
from .sessions import _IMMUTABLE, Session

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .signing import PurposeSigner
    from .stores.base import CookieCodec, ServerSessionStore

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
    """The expiry settings of one middleware."""

    max_age: int | None
    absolute_max_age: int | None
    refresh_interval: int | None

    def expired(self, issued: int, created: int, now: int) -> str | None:
        """Why a session issued and created at these times is no longer valid, if it isn't."""
        if issued > now + CLOCK_SKEW or created > now + CLOCK_SKEW:
            return "its timestamp is in the future"
        if self.max_age is not None and now - issued > self.max_age:
            return "it was idle too long"
        if self.absolute_max_age is not None and now - created > self.absolute_max_age:
            return "it reached absolute_max_age"
        return None

    def refresh_due(self, issued: int | None, now: int) -> bool:
        """Whether a read-only session should have its idle timeout renewed now."""
        interval = self.refresh_interval
        return interval is not None and issued is not None and now - issued >= interval

    def cookie_max_age(self, created: int, now: int) -> int | None:
        """The cookie's Max-Age: the idle timeout, cut short by absolute expiry."""
        if self.max_age is None or self.absolute_max_age is None:
            return self.max_age
        return max(1, min(self.max_age, self.absolute_max_age - (now - created)))

    def ttl(self, created: int, now: int) -> int:
        """How long a server-side record may live unused."""
        ttl = self.max_age or self.absolute_max_age or BROWSER_SESSION_TTL
        if self.absolute_max_age is not None:
            ttl = min(ttl, self.absolute_max_age - (now - created))
        return max(1, ttl)


@dataclass(frozen=True, slots=True)
class CookieContents:
    """What a session cookie that verified says, before any expiry check.

    Made by :meth:`ClientBackend.read_cookie` and :meth:`ServerBackend.read_cookie`,
    which the middleware uses on every load and ``wsgisession inspect`` uses to
    explain a cookie, so the cookie formats are parsed in one place only.
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


def _log_outage(exc: StoreUnavailable) -> None:
    # Logged here, where the store is called, not where the 503 is rendered: a
    # framework (werkzeug's Request.application, Flask) renders a StoreUnavailable
    # raised inside a view itself, and the middleware never sees it.
    log.error("session store unavailable, answering 503: %s", exc)


def _add_vary_cookie(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if name.lower() == "vary":
            tokens = {token.strip().lower() for token in value.split(",")}
            if "cookie" in tokens or "*" in tokens:
                return
    headers.append(("Vary", "Cookie"))


def _biggest_keys(data: dict[str, Any]) -> list[tuple[str, int]]:
    sizes = [(key, len(serialization.dumps(value))) for key, value in data.items()]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:5]


def _keep_mutable(session: Session) -> None:
    # After a save only keys holding mutable values can still change unseen.
    data = session._data or {}
    session._dirty = {k for k in session._dirty if k in data and type(data[k]) not in _IMMUTABLE}


class _Base:
    def __init__(self, cookie: CookieOptions, times: SessionTimes) -> None:
        self.cookie = cookie
        self.times = times

    def _cookie_value(self, environ: WSGIEnvironment, state: Any) -> str | None:
        values = request_cookies(environ).getlist(self.cookie.name)
        if not values:
            return None
        state.had_cookie = True
        if len(values) > 1:
            log.warning(
                "the request carries %d cookies named %r (one set for another path or a"
                " parent domain?); trusting neither, starting a fresh session. A __Host-"
                " cookie name rules this out.",
                len(values),
                self.cookie.name,
            )
            return None
        return values[0] or None

    def response_headers(
        self, session: Session, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Save the session if needed and add ``Vary`` and ``Set-Cookie`` to *headers*."""
        _add_vary_cookie(headers)
        state = session.state
        header = self._save(session, int(time.time()), late=False)
        if header is not None:
            state.header = header
        if state.header is not None:
            headers.append(("Set-Cookie", state.header))
        return headers

    def save_late(self, session: Session, *, streamed: bool) -> None:
        """At ``close()``: save what changed after the headers, where possible."""
        if session.state is None:
            return
        if session._writes != session.state.writes or (streamed and session._dirty):
            self._save(session, int(time.time()), late=True)

    def _save(self, session: Session, now: int, *, late: bool) -> str | None:
        raise NotImplementedError

    def _lost(self, what: str) -> None:
        log.warning(
            "the session was changed after the response headers were sent, so %s was"
            " lost; change the session before calling start_response",
            what,
        )


class _ClientState:
    __slots__ = ("created", "had_cookie", "header", "issued", "loaded", "stale", "writes")

    def __init__(self, now: int) -> None:
        self.created = now
        self.issued: int | None = None
        self.loaded: bytes | None = None
        self.stale = False
        self.had_cookie = False
        self.header: str | None = None
        self.writes = 0


class ClientBackend(_Base):
    """Sessions kept whole in the cookie (:class:`~wsgisession.CookieStore`)."""

    def __init__(self, codec: CookieCodec, cookie: CookieOptions, times: SessionTimes) -> None:
        super().__init__(cookie, times)
        self.codec = codec

    def load_session(self, session: Session) -> dict[str, Any]:
        now = int(time.time())
        state = session.state = _ClientState(now)
        value = self._cookie_value(session.environ or {}, state)
        if value is None:
            return {}
        try:
            contents, payload = self._read(value)
        except (BadData, ValueError, TypeError, RecursionError) as exc:
            log.warning("ignored an invalid session cookie (%s); starting a fresh session", exc)
            return {}
        reason = self.times.expired(contents.issued, contents.created, now)
        if reason is not None:
            log.info("the session cookie expired (%s); starting a fresh session", reason)
            return {}
        state.created = contents.created
        state.issued = contents.issued
        state.loaded = payload
        state.stale = contents.stale_key
        session.new = False
        assert contents.data is not None
        return contents.data

    def read_cookie(self, value: str) -> CookieContents:
        """Verify and decode a cookie value; expiry is left to the caller.

        :raises itsdangerous.BadData: a bad signature or ciphertext.
        :raises ValueError: anything else wrong with the value or its payload.
        """
        try:
            return self._read(value)[0]
        except (TypeError, RecursionError) as exc:
            raise ValueError(f"not a session payload: {exc}") from exc

    def _read(self, value: str) -> tuple[CookieContents, bytes]:
        unsigned = self.codec.decode(value)
        created, data = serialization.loads(unsigned.value)
        if type(created) is not int or type(data) is not dict:
            raise ValueError("not a session payload")
        contents = CookieContents(created, unsigned.timestamp, unsigned.stale_key, data=data)
        return contents, unsigned.value

    def _payload(self, session: Session) -> bytes:
        body = serialization.dumps(session._data, where="session")
        return b"[%d,%s]" % (session.state.created, body.encode("ascii"))

    def session_changed(self, session: Session) -> bool:
        state: _ClientState = session.state
        if state.loaded is None:
            return bool(session._data)
        return bool(session._dirty) and self._payload(session) != state.loaded

    def invalidate_session(self, session: Session) -> None:
        """Nothing to delete on the server; the save deletes the cookie."""

    def _save(self, session: Session, now: int, *, late: bool) -> str | None:
        state: _ClientState = session.state
        data = session._data
        if late:
            if session._writes != state.writes or self.session_changed(session):
                self._lost("the change")
            return None
        if session._fresh:
            state.created = now
            state.loaded = None
        changed = session._fresh or session._regenerate or state.loaded is None
        session._fresh = session._regenerate = False
        state.writes = session._writes
        header = None
        if not data:
            if state.had_cookie:
                state.had_cookie = False
                state.loaded = None
                header = self.cookie.delete_header(session.environ or {})
            return header
        payload = None
        if not changed and session._dirty:
            payload = self._payload(session)
            changed = payload != state.loaded
        if changed or state.stale or self.times.refresh_due(state.issued, now):
            if payload is None:
                payload = state.loaded if not changed else self._payload(session)
            assert payload is not None
            header = self.cookie.set_header(
                self.codec.encode(payload),
                session.environ or {},
                max_age=self.times.cookie_max_age(state.created, now),
            )
            if len(header) > MAX_COOKIE_SIZE:
                raise SessionTooLarge(
                    len(header), MAX_COOKIE_SIZE, _biggest_keys(data), self.cookie.name
                )
            state.loaded = payload
            state.issued = now
            state.stale = False
            state.had_cookie = True
        _keep_mutable(session)
        return header


class _ServerState:
    __slots__ = (
        "created",
        "had_cookie",
        "header",
        "issued",
        "key",
        "raw",
        "sid",
        "stale",
        "writes",
    )

    def __init__(self, now: int) -> None:
        self.created = now
        self.issued: int | None = None
        self.sid: str | None = None
        self.key: str | None = None
        self.raw: dict[str, bytes] = {}
        self.stale = False
        self.had_cookie = False
        self.header: str | None = None
        self.writes = 0


class ServerBackend(_Base):
    """Sessions kept in a :class:`~wsgisession.ServerSessionStore`; the cookie is an id.

    The cookie is ``sign(id.created)``: the signature refuses a forged id before any
    store lookup, and the creation time for ``absolute_max_age`` cannot be altered.
    """

    def __init__(
        self,
        store: ServerSessionStore,
        signer: PurposeSigner,
        cookie: CookieOptions,
        times: SessionTimes,
    ) -> None:
        super().__init__(cookie, times)
        self.store = store
        self.signer = signer

    @staticmethod
    def store_key(sid: str) -> str:
        """The store key of session id *sid*: a dump of the store is not a set of ids."""
        return hashlib.sha256(sid.encode("ascii")).hexdigest()

    def load_session(self, session: Session) -> dict[str, Any]:
        now = int(time.time())
        state = session.state = _ServerState(now)
        value = self._cookie_value(session.environ or {}, state)
        if value is None:
            return {}
        try:
            contents = self.read_cookie(value)
        except (BadData, ValueError) as exc:
            log.warning("ignored an invalid session cookie (%s); starting a fresh session", exc)
            return {}
        reason = self.times.expired(contents.issued, contents.created, now)
        if reason is not None:
            log.info("the session cookie expired (%s); starting a fresh session", reason)
            return {}
        assert contents.sid is not None
        key = self.store_key(contents.sid)
        try:
            record = self.store.load(key)
        except StoreUnavailable as exc:
            _log_outage(exc)
            raise
        if not record:
            log.debug("no stored session for this id (expired or ended); issuing a new id")
            return {}
        try:
            data = self.decode_record(record)
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("deleted a corrupt session record (%s); starting a fresh session", exc)
            try:
                self.store.delete(key)
            except StoreUnavailable as exc:
                _log_outage(exc)
                raise
            return {}
        state.sid = contents.sid
        state.key = key
        state.raw = dict(record)
        state.created = contents.created
        state.issued = contents.issued
        state.stale = contents.stale_key
        session.new = False
        return data

    def read_cookie(self, value: str) -> CookieContents:
        """Verify a cookie value and return the session id and times it carries.

        :raises itsdangerous.BadData: a bad signature.
        :raises ValueError: the signed value is not a session id.
        """
        unsigned = self.signer.unsign(value)
        sid, _, created_bytes = unsigned.value.partition(b".")
        if not _SID.fullmatch(sid) or not created_bytes.isdigit() or len(created_bytes) > 12:
            raise ValueError("not a session id")
        return CookieContents(
            int(created_bytes), unsigned.timestamp, unsigned.stale_key, sid=sid.decode("ascii")
        )

    @staticmethod
    def decode_record(record: dict[str, bytes]) -> dict[str, Any]:
        """The session data in a stored record (one serialized value per field).

        :raises ValueError: a field is not valid tagged JSON.
        """
        return {field: serialization.loads(raw) for field, raw in record.items()}

    def _diff(self, session: Session) -> tuple[dict[str, bytes], list[str]]:
        raw: dict[str, bytes] = session.state.raw
        data = session._data or {}
        changed: dict[str, bytes] = {}
        removed: list[str] = []
        for key in session._dirty:
            if key in data:
                value = serialization.dumps(data[key], where=f"session[{key!r}]").encode("ascii")
                if raw.get(key) != value:
                    changed[key] = value
            elif key in raw:
                removed.append(key)
        return changed, removed

    def session_changed(self, session: Session) -> bool:
        changed, removed = self._diff(session)
        return bool(changed or removed) or (session.state.sid is None and bool(session._data))

    def invalidate_session(self, session: Session) -> None:
        state: _ServerState = session.state
        if state.key is not None:
            try:
                self.store.delete(state.key)
            except StoreUnavailable as exc:
                _log_outage(exc)
                raise
            state.sid = state.key = None
            state.raw = {}

    def _id_cookie(self, session: Session, now: int) -> str:
        state: _ServerState = session.state
        assert state.sid is not None
        signed = self.signer.sign(b"%s.%d" % (state.sid.encode("ascii"), state.created), now)
        state.issued = now
        state.stale = False
        state.had_cookie = True
        return self.cookie.set_header(
            signed.decode("ascii"),
            session.environ or {},
            max_age=self.times.cookie_max_age(state.created, now),
        )

    def _save(self, session: Session, now: int, *, late: bool) -> str | None:
        try:
            return self._save_to_store(session, now, late=late)
        except StoreUnavailable as exc:
            _log_outage(exc)
            raise

    def _save_to_store(self, session: Session, now: int, *, late: bool) -> str | None:
        state: _ServerState = session.state
        data = session._data or {}
        store = self.store
        old_key = None
        if session._fresh or session._regenerate:
            if late:
                self._lost("a new session id (after clear() or regenerate())")
                return None
            old_key = state.key
            if session._fresh:
                state.created = now
            state.sid = state.key = None
            state.raw = {}
            session._fresh = session._regenerate = False
        state.writes = session._writes
        header = None
        ttl = self.times.ttl(state.created, now)
        if not data:
            if state.key is not None:
                store.delete(state.key)
                state.sid = state.key = None
                state.raw = {}
            if state.had_cookie and not late:
                state.had_cookie = False
                header = self.cookie.delete_header(session.environ or {})
        elif state.sid is None:
            if late:
                self._lost("a new session")
                return None
            sid = secrets.token_urlsafe(32)
            key = self.store_key(sid)
            fields = {
                k: serialization.dumps(v, where=f"session[{k!r}]").encode("ascii")
                for k, v in data.items()
            }
            store.save(key, fields, (), ttl, create=True)
            state.sid, state.key, state.raw = sid, key, fields
            header = self._id_cookie(session, now)
        else:
            assert state.key is not None
            changed, removed = self._diff(session)
            refresh = not late and (state.stale or self.times.refresh_due(state.issued, now))
            if changed or removed:
                if store.save(state.key, changed, removed, ttl, create=False):
                    state.raw.update(changed)
                    for field in removed:
                        state.raw.pop(field, None)
                else:
                    log.info(
                        "the session was ended (logout?) by another request while this one"
                        " ran; its changes were dropped rather than bring it back"
                    )
                    state.sid = state.key = None
                    state.raw = {}
                    refresh = False
                    if not late and state.had_cookie:
                        state.had_cookie = False
                        header = self.cookie.delete_header(session.environ or {})
            elif refresh:
                store.touch(state.key, ttl)
            if refresh:
                header = self._id_cookie(session, now)
        if old_key is not None and old_key != state.key:
            store.delete(old_key)
        _keep_mutable(session)
        return header
