"""A user's sessions ("devices"), revocation and "log out everywhere".

Turn it on once, on the middleware::

    sessions = SessionMiddleware(app, secret_key=KEY, store=SQLiteStore("s.db"))
    track_devices(sessions)

From then on every :func:`~wsgisession.login` records the session in a per-user
index kept by the store, and a view can list and end them::

    for device in sessions_of():          # the logged-in user's sessions
        print(device.user_agent, device.ip, device.last_seen, device.current)
    revoke(handle)                         # end one (its next request is anonymous)
    logout_everywhere()                    # after a password change: all but this one

What the index keeps per session: when it logged in, when it was last seen
(renewed together with the session's idle timeout, at most once per
``refresh_interval``, so never an extra write per request), the user agent
(truncated) and the client address (``REMOTE_ADDR``: put werkzeug's ``ProxyFix``
outside when behind a proxy; ``client_ip="prefix"`` keeps only the network part,
``"none"`` nothing). A session is named by a *handle*: random, stable for the
session's life, and useless to an attacker (it is neither the session id nor its
store key, and nothing accepts it as a credential).

**Revocation is final**: the record is deleted, and a request of that session still
in flight cannot bring it back: its save finds the record gone, and moving or
refreshing it finds the index entry gone (a compare-and-set), so it ends the
session instead.

**Cookie sessions** (:class:`~wsgisession.CookieStore`) have no server record, so
they can only be revoked with ``revocation_store=``, a server store holding one
"not before" stamp per user: :func:`revoke_all` sets it, and each request of a
logged-in cookie session looks it up once. Without it a cookie session cannot be
revoked before it expires, and :func:`track_devices` refuses to start.

Framework logins (Flask-Login, Django's ``login()``) call :func:`record_login`
right after they log the user in.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from uuid import UUID

from ..context import current_environ, get_session
from ..errors import ConfigurationError
from ..events import DEVICE_KEY, HOOKS_KEY, EventName, SessionHooks
from ..stores.base import ServerSessionStore, SessionIndex

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..middleware import SessionMiddleware
    from ..sessions import Session

__all__ = [
    "Devices",
    "SessionInfo",
    "logout_everywhere",
    "record_login",
    "revoke",
    "revoke_all",
    "sessions_of",
    "track_devices",
]

UserId = str | int | UUID

#: The environ key naming the handle :func:`record_login` created in this request.
_FRESH_KEY = "wsgisession.devices.fresh"
#: Browsers keep no cookie longer than 400 days: a stamp older than that stops nothing.
_STAMP_TTL = 400 * 86400


def user_token(user_id: UserId) -> str:
    """The string a store indexes *user_id* under (typed: ``42`` and ``"42"`` differ)."""
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int, UUID)):
        raise TypeError(f"user_id must be a str, int or UUID, not {type(user_id).__name__}")
    kind = "i" if isinstance(user_id, int) else "u" if isinstance(user_id, UUID) else "s"
    return f"{kind}:{user_id}"


@dataclass(frozen=True)
class SessionInfo:
    """One of a user's sessions, as :func:`sessions_of` lists it.

    :param handle: Names the session for :func:`revoke`; not a credential.
    :param logged_in: When the session logged in (UTC).
    :param last_seen: When it was last seen, to within ``refresh_interval`` (UTC).
    :param user_agent: The browser's ``User-Agent``, truncated; ``""`` if none.
    :param ip: The client address (or its network prefix), ``None`` if not kept.
    :param current: Whether this is the session of the request asking.
    """

    handle: str
    logged_in: datetime
    last_seen: datetime
    user_agent: str
    ip: str | None
    current: bool


def _device(data: dict[str, Any] | None) -> dict[str, Any] | None:
    device = data.get(DEVICE_KEY) if data else None
    if type(device) is not dict or not isinstance(device.get("h"), str):
        return None
    return cast("dict[str, Any]", device)


class Devices:
    """Device tracking for one middleware; made by :func:`track_devices`.

    Its methods work outside a request too (an admin tool, a job): pass the user id.

    :param store: The middleware's store.
    :param client_ip: ``"full"`` (default), ``"prefix"`` (``/24`` for IPv4, ``/48``
        for IPv6) or ``"none"``.
    :param user_agent_length: Keep at most this many characters of ``User-Agent``.
    :param revocation_store: For cookie sessions: a server store keeping one "not
        before" stamp per user.
    """

    def __init__(
        self,
        store: object,
        *,
        client_ip: Literal["full", "prefix", "none"] = "full",
        user_agent_length: int = 160,
        revocation_store: SessionIndex | None = None,
    ) -> None:
        if client_ip not in ("full", "prefix", "none"):
            raise ConfigurationError(
                f'client_ip must be "full", "prefix" or "none", not {client_ip!r}'
            )
        if (
            isinstance(user_agent_length, bool)
            or not isinstance(user_agent_length, int)
            or (user_agent_length < 0)
        ):
            raise ConfigurationError(
                f"user_agent_length must be an int >= 0, not {user_agent_length!r}"
            )
        if revocation_store is not None and not isinstance(revocation_store, SessionIndex):
            raise ConfigurationError(
                f"revocation_store must be a server store with a per-user index"
                f" (SQLiteStore, RedisStore, LRUStore), not {revocation_store!r}"
            )
        self.index: SessionIndex | None = None
        if isinstance(store, ServerSessionStore):
            if not isinstance(store, SessionIndex):
                raise ConfigurationError(
                    f"device tracking needs a store with a per-user index, and"
                    f" {type(store).__name__} has none: implement"
                    " wsgisession.stores.SessionIndex on it, or use SQLiteStore,"
                    " RedisStore or LRUStore"
                )
            self.index = store
        elif revocation_store is None:
            raise ConfigurationError(
                "cookie sessions cannot be revoked before they expire: pass"
                " revocation_store=SQLiteStore(...) (or RedisStore) to track_devices,"
                " or use a server-side store"
            )
        self.client_ip = client_ip
        self.user_agent_length = user_agent_length
        self.revocation_store = revocation_store
        self.hooks: SessionHooks | None = None

    # -- what the backends call (wsgisession.events.SessionTracker) -----------

    def accept(self, session: Session, data: dict[str, Any]) -> bool:
        """A cookie session logged in before its user's "not before" stamp is refused."""
        device = _device(data)
        if device is None or self.revocation_store is None:
            return True
        stamp = self.revocation_store.get_not_before(user_token(device["u"]))
        valid_from = device.get("t")
        if stamp is None or (isinstance(valid_from, float | int) and valid_from >= stamp):
            return True
        if self.hooks is not None:
            self.hooks.emit(EventName.REVOKED, data, "not before stamp")
        return False

    def stored(self, session: Session, old_key: str | None, key: str, ttl: int) -> bool:
        """Point the session's index entry at *key*, refreshing "last seen"."""
        device = _device(session._data)
        if device is None or self.index is None:
            return True
        environ = session.environ or {}
        fresh = environ.get(_FRESH_KEY) == device["h"]
        info = {
            "l": device.get("c"),
            "s": int(time.time()),
            "ua": str(environ.get("HTTP_USER_AGENT", ""))[: self.user_agent_length],
            "ip": self._ip(environ),
        }
        return self.index.index_put(
            user_token(device["u"]),
            device["h"],
            key,
            json.dumps(info, separators=(",", ":")).encode(),
            2 * ttl,  # a save between refreshes extends the record by up to one ttl
            expect=None if fresh else old_key,
        )

    def _ip(self, environ: WSGIEnvironment) -> str | None:
        address = environ.get("REMOTE_ADDR")
        if self.client_ip == "none" or not address:
            return None
        if self.client_ip == "full":
            return str(address)[:64]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        bits = 24 if ip.version == 4 else 48
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))

    # -- the API, by user id ---------------------------------------------------

    def _need_index(self, what: str) -> SessionIndex:
        if self.index is None:
            raise ConfigurationError(
                f"{what} needs a server-side store: cookie sessions are not listed, and"
                " can only be revoked all at once (revoke_all, with revocation_store)"
            )
        return self.index

    def sessions_of(self, user_id: UserId, current: str | None = None) -> list[SessionInfo]:
        """The live sessions of *user_id*, most recently seen first.

        :param current: The handle to mark as :attr:`SessionInfo.current`.
        """
        result = []
        for entry in self._need_index("listing sessions").index_list(user_token(user_id)):
            try:
                info = json.loads(entry.info)
                logged_in = datetime.fromtimestamp(int(info.get("l") or info["s"]), UTC)
                seen = datetime.fromtimestamp(int(info["s"]), UTC)
            except (ValueError, KeyError, TypeError, OverflowError):
                continue  # an entry of another version: not shown, still revocable
            ip = info.get("ip")
            result.append(
                SessionInfo(
                    entry.handle,
                    logged_in,
                    seen,
                    str(info.get("ua") or ""),
                    ip if isinstance(ip, str) else None,
                    entry.handle == current,
                )
            )
        return sorted(result, key=lambda s: s.last_seen, reverse=True)

    def revoke(self, user_id: UserId, handle: str) -> bool:
        """End the session *handle* of *user_id*; ``False`` if it has no such session."""
        if not isinstance(handle, str):
            return False
        done = self._need_index("revoking one session").index_revoke(user_token(user_id), handle)
        if done and self.hooks is not None:
            self.hooks.emit(EventName.REVOKED, reason="revoke", user_id=user_id, handle=handle)
        return done

    def revoke_all(self, user_id: UserId, *, keep: str | None = None) -> int:
        """End every session of *user_id* except the one with handle *keep*.

        With a cookie store, sets the user's "not before" stamp to now (the caller
        re-validates the kept session); returns ``-1`` then, the count being unknown.
        """
        user = user_token(user_id)
        if self.index is None:
            assert self.revocation_store is not None
            self.revocation_store.set_not_before(user, time.time(), _STAMP_TTL)
            if self.hooks is not None:
                self.hooks.emit(EventName.REVOKED, reason="revoke_all", user_id=user_id)
            return -1
        count = 0
        for entry in self.index.index_list(user):
            if entry.handle != keep and self.index.index_revoke(user, entry.handle):
                count += 1
                if self.hooks is not None:
                    self.hooks.emit(
                        EventName.REVOKED, reason="revoke_all", user_id=user_id, handle=entry.handle
                    )
        return count


def track_devices(
    middleware: SessionMiddleware,
    *,
    client_ip: Literal["full", "prefix", "none"] = "full",
    user_agent_length: int = 160,
    revocation_store: SessionIndex | None = None,
) -> Devices:
    """Keep a per-user index of *middleware*'s logged-in sessions; see the module doc.

    :param middleware: The :class:`~wsgisession.SessionMiddleware` to track.
    :param client_ip: ``"full"``, ``"prefix"`` or ``"none"`` (see :class:`Devices`).
    :param user_agent_length: Keep at most this many characters of ``User-Agent``.
    :param revocation_store: For a cookie store: where "not before" stamps live.
    :raises ConfigurationError: a server store without
        :class:`~wsgisession.stores.SessionIndex`, or a cookie store without
        *revocation_store*.

    .. versionadded:: 0.2
    """
    devices = Devices(
        middleware.store,
        client_ip=client_ip,
        user_agent_length=user_agent_length,
        revocation_store=revocation_store,
    )
    devices.hooks = middleware.hooks
    devices.hooks.tracker = devices
    return devices


# -- in a request ----------------------------------------------------------------


def _devices(environ: WSGIEnvironment) -> Devices | None:
    hooks = environ.get(HOOKS_KEY)
    tracker = hooks.tracker if isinstance(hooks, SessionHooks) else None
    return tracker if isinstance(tracker, Devices) else None


def _require(environ: WSGIEnvironment) -> Devices:
    devices = _devices(environ)
    if devices is None:
        raise ConfigurationError(
            "device tracking is off: call wsgisession.track_devices(middleware) once at start-up"
        )
    return devices


def record_login(user_id: UserId, environ: WSGIEnvironment | None = None) -> None:
    """Record a login on this request's session as a new device, if tracking is on.

    :func:`~wsgisession.login` calls it. A framework's own login calls it right
    after logging the user in (and after its ``cycle_key()``): Flask-Login's
    ``user_logged_in`` signal, Django's ``user_logged_in`` signal. Does nothing when
    :func:`track_devices` was not called.

    :param user_id: The user now logged in.
    :param environ: The request's WSGI environ (default: the current request).
    """
    environ = current_environ() if environ is None else environ
    devices = _devices(environ)
    if devices is None:
        return
    user_token(user_id)  # type check before anything is written
    session = get_session(environ)
    previous = _device(session._data if session._data is not None else dict(session))
    if previous is not None and devices.index is not None:
        key = getattr(session.state, "key", None)
        if key is not None:
            devices.index.index_forget(user_token(previous["u"]), previous["h"], key)
    now = time.time()
    handle = secrets.token_urlsafe(16)
    session[DEVICE_KEY] = {"u": user_id, "h": handle, "c": int(now), "t": now}
    environ[_FRESH_KEY] = handle


def forget_device(session: Session) -> None:
    """Drop *session*'s index entry (at logout, before the record is deleted)."""
    environ = session.environ or {}
    devices = _devices(environ)
    device = _device(session._data)
    key = getattr(session.state, "key", None)
    if devices is not None and devices.index is not None and device is not None and key:
        devices.index.index_forget(user_token(device["u"]), device["h"], key)


def _user_and_handle(user_id: UserId | None) -> tuple[Devices, UserId, str | None]:
    from .login import current_user

    environ = current_environ()
    devices = _require(environ)
    device = _device({DEVICE_KEY: get_session(environ).get(DEVICE_KEY)})
    if user_id is None:
        user = current_user(environ)
        if user is None and device is None:
            raise LookupError("nobody is logged in on this request: pass user_id")
        user_id = user.user_id if user is not None else device["u"]  # type: ignore[index]
    handle = device["h"] if device is not None and device.get("u") == user_id else None
    return devices, user_id, handle


def sessions_of(user_id: UserId | None = None) -> list[SessionInfo]:
    """The sessions of *user_id* (default: the logged-in user), this one marked current.

    :raises ConfigurationError: tracking is off, or the store is a cookie store.
    :raises LookupError: no *user_id* and nobody logged in.
    """
    devices, user_id, handle = _user_and_handle(user_id)
    return devices.sessions_of(user_id, current=handle)


def revoke(handle: str, *, user_id: UserId | None = None) -> bool:
    """End the session *handle* of *user_id* (default: the logged-in user).

    Only that user's sessions can be named, so a user cannot end another's. Ending
    the current session logs this request out too.

    :returns: ``False`` when the user has no session *handle* (already ended).
    """
    devices, user_id, current = _user_and_handle(user_id)
    done = devices.revoke(user_id, handle)
    if done and handle == current:
        get_session().invalidate()
    return done


def revoke_all(user_id: UserId | None = None, *, except_current: bool = False) -> int:
    """End every session of *user_id* (default: the logged-in user).

    :param except_current: Keep the session of this request (when it is that user's).
    :returns: How many sessions were ended (``-1`` for cookie sessions: all of them,
        by a "not before" stamp).
    """
    devices, user_id, current = _user_and_handle(user_id)
    keep = current if except_current else None
    count = devices.revoke_all(user_id, keep=keep)
    session = get_session()
    if current is not None and keep is None:
        session.invalidate()
    elif keep is not None and devices.index is None:
        # The stamp is "now": the kept cookie session becomes valid from now on.
        stamp = devices.revocation_store.get_not_before(user_token(user_id))  # type: ignore[union-attr]
        session[DEVICE_KEY] = {**session[DEVICE_KEY], "t": stamp or time.time()}
    return count


def logout_everywhere() -> int:
    """End every other session of the logged-in user: the call for a password change.

    ::

        user.set_password(form["new_password"])
        logout_everywhere()   # this browser stays logged in

    :returns: As :func:`revoke_all`.
    """
    return revoke_all(except_current=True)
