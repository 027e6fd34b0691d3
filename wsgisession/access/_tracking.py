"""Device tracking's machinery: the :class:`Devices` tracker and what it lists.

Public through :mod:`wsgisession.access.devices`; kept apart so each module stays
one job: this one talks to the store's index, that one to the current request.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from uuid import UUID

from ..errors import ConfigurationError
from ..events import DEVICE_KEY, EventName, SessionHooks
from ..stores.base import ServerSessionStore, SessionIndex

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..sessions import Session

UserId = str | int | UUID

#: The environ key naming the handle :func:`record_login` created in this request.
FRESH_KEY = "wsgisession.devices.fresh"
#: Browsers keep no cookie longer than 400 days: a stamp older than that stops nothing.
STAMP_TTL = 400 * 86400


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


def device_record(data: dict[str, Any] | None) -> dict[str, Any] | None:
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
                f" (SQLiteStore, RedisStore, PostgresStore, LRUStore), not {revocation_store!r}"
            )
        self.index: SessionIndex | None = None
        if isinstance(store, ServerSessionStore):
            if not isinstance(store, SessionIndex):
                raise ConfigurationError(
                    f"device tracking needs a store with a per-user index, and"
                    f" {type(store).__name__} has none: implement"
                    " wsgisession.stores.SessionIndex on it, or use SQLiteStore,"
                    " RedisStore, PostgresStore or LRUStore"
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
        device = device_record(data)
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
        device = device_record(session._data)
        if device is None or self.index is None:
            return True
        environ = session.environ or {}
        fresh = environ.get(FRESH_KEY) == device["h"]
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
            self.revocation_store.set_not_before(user, time.time(), STAMP_TTL)
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
