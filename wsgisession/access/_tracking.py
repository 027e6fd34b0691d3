"""Device tracking's machinery: the :class:`Devices` tracker and what it lists.

Public through :mod:`wsgisession.access.devices`; kept apart so each module stays
one job: this one talks to the store's index, that one to the current request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from uuid import UUID

from .. import serialization
from .._options import count
from ..errors import ConfigurationError, StoreUnavailable
from ..events import (
    AUTH_KEY,
    DEVICE_KEY,
    Acceptance,
    EventName,
    SessionHooks,
    is_user_id,
    login_of,
)
from ..stores.base import IndexEntry, ServerSessionStore, SessionIndex

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..sessions import SessionState

log = logging.getLogger("wsgisession")

UserId = str | int | UUID
WhenFull = Literal["end_oldest", "refuse"]

#: The environ key naming the handle :func:`record_login` created in this request,
#: until its index entry is written.
FRESH_KEY = "wsgisession.devices.fresh"
#: The environ key naming a handle whose login restores an earlier one (a remember-me
#: cookie): once indexed, it is checked against the user's "not before" stamp.
RECHECK_KEY = "wsgisession.devices.recheck"
#: The environ key naming the handle of a login that the cap on sessions refused.
REFUSED_KEY = "wsgisession.devices.refused"
#: Browsers keep no cookie longer than 400 days: a stamp older than that stops nothing.
STAMP_TTL = 400 * 86400
#: The one field of the record a session ended by the cap leaves behind, so that its
#: owner's next request can be told why (:func:`~wsgisession.ended_elsewhere`):
#: ``{"r": reason, "t": when}``. Plain session data: a session holding only it is
#: anonymous.
ENDED_KEY = "_wsgisession.ended"
#: The reason the cap gives, in the note and in the ``revoked`` event.
CAP_REASON = "session cap"
#: How long the note lives when the ended session's lifetime is not on record (an
#: entry written before the index kept it): the server's limit for a browser session.
ENDED_TTL = 14 * 86400
# Each failed try means another login of the user got in meanwhile.
_ADMIT_TRIES = 50


def user_token(user_id: UserId) -> str:
    """The string a store indexes *user_id* under: its string form.

    ``42`` and ``"42"`` are one user (Flask-Login records ``get_id()``, a ``str``;
    Django the primary key, an ``int``), a ``UUID`` is its canonical ``str``.
    """
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int, UUID)):
        raise TypeError(f"user_id must be a str, int or UUID, not {type(user_id).__name__}")
    # "s:" is the prefix string ids had when ids were typed: their entries stay valid.
    return f"s:{user_id}"


def same_user(a: object, b: object) -> bool:
    """Whether *a* and *b* name the same user (by string form); ``False`` for a non-id."""
    try:
        return user_token(a) == user_token(b)  # type: ignore[arg-type]
    except TypeError:
        return False


def untracked_login(data: dict[str, Any]) -> tuple[UserId, float | None] | None:
    """Who a session without a device record is logged in as, and since when if known.

    Such a session logged in while tracking was off (or before this version).
    """
    user = login_of(data)
    if user is None:
        return None
    auth = data.get(AUTH_KEY)
    at = auth.get("at") if type(auth) is dict and auth.get("id") == user else None
    return user, at.timestamp() if isinstance(at, datetime) else None


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


def session_cap(max_per_user: object, when_full: object, index: SessionIndex | None) -> int | None:
    """*max_per_user* once checked against *when_full* and the store's *index*.

    :raises ConfigurationError: a bad value, a cookie store (no index: its sessions
        cannot be counted), or an index without :meth:`SessionIndex.index_admit`.
    """
    if when_full not in ("end_oldest", "refuse"):
        raise ConfigurationError(f'when_full must be "end_oldest" or "refuse", not {when_full!r}')
    limit = count("max_per_user", max_per_user, optional=True)
    if limit is None:
        return None
    if index is None:
        raise ConfigurationError(
            "max_per_user needs a server-side store: a cookie session lives in its"
            " browser alone, so the server can neither count a user's sessions nor end"
            " one to make room. Use SQLiteStore, RedisStore, PostgresStore or LRUStore"
        )
    if type(index).index_admit is SessionIndex.index_admit:
        raise ConfigurationError(
            f"max_per_user needs {type(index).__name__} to count and add a user's"
            " sessions in one atomic step: implement SessionIndex.index_admit on it,"
            " or use SQLiteStore, RedisStore, PostgresStore or LRUStore"
        )
    return limit


def least_recently_seen(entries: Iterable[IndexEntry]) -> list[IndexEntry]:
    """*entries* by their last-seen time, oldest first (an unreadable one first of all)."""

    def seen(entry: IndexEntry) -> tuple[float, float]:
        try:
            info = json.loads(entry.info)
            return float(info["s"]), float(info.get("l") or 0)
        except (ValueError, KeyError, TypeError):
            return 0.0, 0.0

    return sorted(entries, key=seen)


def ended_ttl(entry: IndexEntry) -> int:
    """How long the note left by ended session *entry* lives: the session's lifetime."""
    try:
        ttl = json.loads(entry.info).get("x")
    except (ValueError, AttributeError):
        ttl = None
    return ttl if type(ttl) is int and ttl > 0 else ENDED_TTL


def device_record(data: dict[str, Any] | None) -> dict[str, Any] | None:
    device = data.get(DEVICE_KEY) if data else None
    if (
        type(device) is not dict
        or not isinstance(device.get("h"), str)
        or not is_user_id(device.get("u"))
    ):
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
        before" stamp per user, shared by every worker process (not ``LRUStore``).
    :param max_per_user: The most sessions a user may have at once; ``None``: no cap.
    :param when_full: At a login beyond *max_per_user*: ``"end_oldest"`` ends the
        user's least recently seen sessions, ``"refuse"`` refuses the login.
    """

    def __init__(
        self,
        store: object,
        *,
        client_ip: Literal["full", "prefix", "none"] = "full",
        user_agent_length: int = 160,
        revocation_store: SessionIndex | None = None,
        max_per_user: int | None = None,
        when_full: WhenFull = "end_oldest",
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
                f" (SQLiteStore, RedisStore, PostgresStore), not {revocation_store!r}"
            )
        if getattr(revocation_store, "process_local", False):
            raise ConfigurationError(
                f"revocation_store={type(revocation_store).__name__}() keeps its stamps"
                " inside one process: under several worker processes a revocation would"
                " hold in one worker only. Use SQLiteStore(path) (one machine), RedisStore"
                " or PostgresStore (several)"
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
        self.max_per_user = session_cap(max_per_user, when_full, self.index)
        self.when_full: WhenFull = when_full
        #: Where the note of a session ended by the cap is written: the store the
        #: middleware calls (:func:`track_devices` sets it), which writes session
        #: records as the middleware does (a store with ``encrypt=True`` seals them).
        self.records: ServerSessionStore | None = (
            store if isinstance(store, ServerSessionStore) else None
        )
        self.client_ip = client_ip
        self.user_agent_length = user_agent_length
        self.revocation_store = revocation_store
        #: Where the per-user "not before" stamps live: the server store itself, or
        #: the revocation store of a cookie store.
        stamps = self.index if self.index is not None else revocation_store
        assert stamps is not None
        self.stamps: SessionIndex = stamps
        self.hooks: SessionHooks | None = None

    # -- what the backends call (wsgisession.events.SessionTracker) -----------

    def accept(
        self, data: dict[str, Any], record: SessionState, environ: WSGIEnvironment
    ) -> Acceptance:
        """Whether the session just loaded with *data* may be used, or is revoked.

        A cookie session logged in before its user's "not before" stamp is refused. A
        logged-in session without a device record (it logged in while tracking was
        off) is refused if its login predates the stamp, and otherwise becomes a
        device (:attr:`Acceptance.ADOPTED`): indexed now, listed and revocable from
        then on.
        """
        device = device_record(data)
        if device is None:
            login = untracked_login(data)
            if login is None:
                return Acceptance.KEEP
            return self._adopt(data, record, environ, *login)
        if self.index is not None:
            return Acceptance.KEEP  # a server session is revoked by deleting its record
        valid_from = device.get("t")
        if not isinstance(valid_from, float | int):
            valid_from = None
        if not self._revoked(device["u"], valid_from):
            return Acceptance.KEEP
        if self.hooks is not None:
            self.hooks.emit(EventName.REVOKED, data, "not before stamp")
        return Acceptance.REFUSED

    def _revoked(self, user_id: UserId, valid_from: float | None) -> bool:
        stamp = self.stamps.get_not_before(user_token(user_id))
        return stamp is not None and (valid_from is None or valid_from < stamp)

    def _adopt(
        self,
        data: dict[str, Any],
        record: SessionState,
        environ: WSGIEnvironment,
        user_id: UserId,
        logged_in: float | None,
    ) -> Acceptance:
        # The login time when recorded, else the session's creation: never later.
        valid_from = float(record.created) if logged_in is None else logged_in
        user, handle = user_token(user_id), secrets.token_urlsafe(16)
        key = record.key
        if self.index is not None and key is not None:
            # Indexed before the stamp is read: a revoke_all that sets its stamp after
            # this read lists the entry, so one of the two ends the session. STAMP_TTL
            # until this request's save renews the entry with the session's own TTL.
            info = self._info(environ, int(valid_from))
            self.index.index_put(user, handle, key, info, STAMP_TTL, expect=None)
        if self._revoked(user_id, valid_from):
            if self.index is not None and key is not None:
                self.index.index_forget(user, handle, key)
            if self.hooks is not None:
                self.hooks.emit(EventName.REVOKED, data, "not before stamp", user_id=user_id)
            return Acceptance.REFUSED
        # Saved with this response (the session marks it written and re-issues its
        # cookie), which renews its index entry.
        data[DEVICE_KEY] = {"u": user_id, "h": handle, "c": int(valid_from), "t": valid_from}
        return Acceptance.ADOPTED

    def stored(
        self,
        data: dict[str, Any],
        environ: WSGIEnvironment,
        old_key: str | None,
        key: str,
        ttl: int,
    ) -> bool:
        """Point the session's index entry at *key*, refreshing "last seen"."""
        device = device_record(data)
        if device is None or self.index is None:
            return True
        fresh = environ.get(FRESH_KEY) == device["h"]
        user = user_token(device["u"])
        info = self._info(environ, device.get("c"), ttl)
        # A save between refreshes extends the record by up to one ttl.
        if fresh and self.max_per_user is not None:
            written = self._admit(device, user, key, info, 2 * ttl, environ)
        else:
            expect = None if fresh else old_key
            written = self.index.index_put(user, device["h"], key, info, 2 * ttl, expect=expect)
        if written and fresh:
            # Written: a later save of this same request (Django's login() then
            # session.save() then set_expiry()) moves or renews the entry it wrote.
            del environ[FRESH_KEY]
            if environ.get(RECHECK_KEY) == device["h"]:
                del environ[RECHECK_KEY]
                if self._revoked(device["u"], device.get("t")):
                    self.index.index_forget(user, device["h"], key)
                    return False
        return written

    def _admit(
        self,
        device: dict[str, Any],
        user: str,
        key: str,
        info: bytes,
        ttl: int,
        environ: WSGIEnvironment,
    ) -> bool:
        """Index a new login under the cap: make room, or refuse it (``False``).

        The store counts, evicts and adds in one atomic step
        (:meth:`SessionIndex.index_admit`); the victims are chosen here, from a
        listing, so a login that got in meanwhile makes the step fail and this one
        count again.
        """
        index, limit, handle = self.index, self.max_per_user, device["h"]
        assert index is not None
        assert limit is not None
        for _ in range(_ADMIT_TRIES):
            others = [entry for entry in index.index_list(user) if entry.handle != handle]
            excess = len(others) + 1 - limit
            if excess > 0 and self.when_full == "refuse":
                break
            evict = [entry.handle for entry in least_recently_seen(others)[: max(excess, 0)]]
            ended = index.index_admit(user, handle, key, info, ttl, limit=limit, evict=evict)
            if ended is not None:
                self._end(device["u"], ended)
                return True
        else:
            log.warning(
                "a login could not be counted against max_per_user after %d tries (other"
                " logins of the user kept getting in first); it was not kept",
                _ADMIT_TRIES,
            )
        environ[REFUSED_KEY] = handle
        return False

    def _end(self, user_id: UserId, ended: list[IndexEntry]) -> None:
        """Leave a note in place of each session the cap ended, and tell the hooks."""
        note = serialization.dumps({"r": CAP_REASON, "t": int(time.time())}).encode()
        for entry in ended:
            if self.records is not None:
                try:
                    # Created afresh: the store deleted the record with the entry.
                    self.records.save(
                        entry.key, {ENDED_KEY: note}, (), ended_ttl(entry), create=True
                    )
                except StoreUnavailable as exc:
                    # The session is ended all the same; its owner is just not told why.
                    log.warning("could not leave the note of a session ended by the cap: %s", exc)
            if self.hooks is not None:
                self.hooks.emit(
                    EventName.REVOKED, reason=CAP_REASON, user_id=user_id, handle=entry.handle
                )

    def _info(self, environ: WSGIEnvironment, logged_in: object, ttl: int | None = None) -> bytes:
        info = {
            "l": logged_in,
            # To the millisecond: the cap ends the least recently seen of sessions
            # that may all have been seen within one second.
            "s": round(time.time(), 3),
            "ua": str(environ.get("HTTP_USER_AGENT", ""))[: self.user_agent_length],
            "ip": self._ip(environ),
        }
        if ttl is not None:
            info["x"] = ttl  # the session's lifetime: how long a note in its place lives
        return json.dumps(info, separators=(",", ":")).encode()

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

        First sets the user's "not before" stamp to now: it ends the sessions the
        index cannot list (cookie sessions; sessions that logged in while tracking
        was off) at their next request. The caller re-validates the kept session.

        :returns: How many listed sessions were ended; those ended by the stamp are
            not counted. ``-1`` with a cookie store: no session is listed, each is
            refused at its next request if it logged in before now.
        """
        user = user_token(user_id)
        self.stamps.set_not_before(user, time.time(), STAMP_TTL)
        if self.index is None:
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
