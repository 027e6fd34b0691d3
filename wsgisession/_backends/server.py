"""ServerBackend: the cookie is a signed id, the data in a ServerSessionStore."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData

from .. import serialization
from .._memo import Memo
from ..cookies import CookieOptions
from ..errors import StoreUnavailable
from ..events import EventName
from ..sessions import ServerSessionState, Session
from .base import (
    _SID,
    CookieContents,
    SessionTimes,
    _Base,
    _keep_mutable,
    _log_outage,
)

if TYPE_CHECKING:
    from ..signing import PurposeSigner
    from ..stores.base import ServerSessionStore


log = logging.getLogger("wsgisession")

#: The field a session's old record keeps once the session moved to a new id:
#: ``b"-> <new store key> <deadline>"``, the other fields removed. No serialized
#: value starts with ``->`` (it is not JSON), so session data cannot pass for it.
MOVED = "_wsgisession.moved"
_MOVED_PREFIX = b"-> "


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
        #: Seconds an old id still leads to the session after a rotation without a
        #: privilege change (``regenerate(privilege_change=False)``); 0: never.
        self.rotation_grace = 0
        # The id cookie comes back unchanged on most requests (see wsgisession._memo).
        self._memo: Memo[CookieContents] = Memo()

    @staticmethod
    def store_key(sid: str) -> str:
        """The store key of session id *sid*: a dump of the store is not a set of ids."""
        return hashlib.sha256(sid.encode("ascii")).hexdigest()

    def load_session(self, session: Session) -> dict[str, Any]:
        now = int(time.time())
        state = ServerSessionState(now)
        session.state = state
        value = self._cookie_value(session.environ or {})
        if value is None:
            return {}
        try:
            contents = self.read_cookie(value)
        except (BadData, ValueError) as exc:
            log.warning("ignored an invalid session cookie (%s); starting a fresh session", exc)
            if self.hooks is not None:
                self.hooks.emit(EventName.TAMPERED, reason=type(exc).__name__)
            return {}
        reason = self.times.expired(contents.issued, contents.created, now, contents.lifetime)
        if reason is not None:
            log.info("the session cookie expired (%s); starting a fresh session", reason)
            if self.hooks is not None:
                self.hooks.emit(EventName.EXPIRED, reason=reason)
            return {}
        state.had_cookie = True
        assert contents.sid is not None
        key = self.store_key(contents.sid)
        try:
            record = self.store.load(key)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise
        forwarded = False
        if record and MOVED in record and record[MOVED].startswith(_MOVED_PREFIX):
            key, record = self._follow(record[MOVED], now)
            forwarded = True
        if not record:
            log.debug("no stored session for this id (expired or ended); issuing a new id")
            if self.hooks is not None:
                self.hooks.emit(EventName.EXPIRED, reason="no stored session")
            return {}
        try:
            data = self.decode_record(record)
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("deleted a corrupt session record (%s); starting a fresh session", exc)
            if self.hooks is not None:
                self.hooks.emit(EventName.TAMPERED, reason="corrupt record")
            try:
                self.store.delete(key)
            except StoreUnavailable as exc:
                self._outage(exc)
                raise
            return {}
        # A request that followed a rotation's forward reads and writes the new
        # record but never learns its id (the store holds only keys), so it cannot
        # and does not set the cookie: the rotating response sets the new one.
        state.sid = None if forwarded else contents.sid
        state.key = key
        state.lifetime = state.saved_lifetime = contents.lifetime
        state.raw = dict(record)
        state.created = contents.created
        state.issued = contents.issued
        state.stale = contents.stale_key
        session._new = False
        if self.hooks is not None and not self.hooks.accept(session, data):
            # Logged in while device tracking was off, before a revoke_all of its
            # user: ended now, as a revocation would have done had it been listed.
            try:
                self.store.delete(key)
            except StoreUnavailable as exc:
                self._outage(exc)
                raise
            state.sid = state.key = None
            state.raw = {}
            state.created = now
            state.lifetime = state.saved_lifetime = None
            session._new = True
            return {}
        return data

    def _follow(self, marker: bytes, now: int) -> tuple[str, dict[str, bytes] | None]:
        """The record an old id leads to after a rotation: one hop, within the grace."""
        parts = marker.decode("ascii", "replace").split(" ")
        if len(parts) != 3 or not self.rotation_grace or not parts[2].isdigit():
            return "", None
        key, deadline = parts[1], int(parts[2])
        if deadline < now:
            return key, None
        try:
            record = self.store.load(key)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise
        if record and MOVED in record and record[MOVED].startswith(_MOVED_PREFIX):
            return key, None  # moved again: one hop only
        return key, record

    def _retire(self, session: Session, old_key: str, fields: list[str], now: int) -> bool:
        """Mark the old record moved, if it still exists: ``False`` when it was gone.

        One ``save(create=False)``, so checking that the session was not ended
        meanwhile (a logout) and retiring its old record are one atomic step of the
        four-method store contract, in the round trip that deleted it before. The
        old record keeps only the marker: for ``rotation_grace`` seconds after a
        rotation without a privilege change, else for one second, leading nowhere.
        """
        state: ServerSessionState = session.state  # type: ignore[assignment]
        assert state.key is not None
        grace = self.rotation_grace if session._rotate else 0
        marker = b"-> %s %d" % (state.key.encode("ascii"), now + grace if grace else 0)
        removed = [field for field in fields if field != MOVED]
        return self.store.save(old_key, {MOVED: marker}, removed, grace + 1, create=False)

    def read_cookie(self, value: str) -> CookieContents:
        """Verify a cookie value and return the session id and times it carries.

        :raises itsdangerous.BadData: a bad signature.
        :raises ValueError: the signed value is not a session id.
        """
        return self._memo.answer(value, self._verify)

    def stable_key(self, session: Session) -> str | None:
        """A signed name of *session* that stays the same while it keeps its id.

        The cookie is re-signed at each renewal, so its value changes; this one is
        signed with the session's creation time as its timestamp, so it changes only
        with the id (``regenerate()``, ``clear()``). It is also a cookie value that
        :meth:`restamp` accepts. ``None`` while the session has no stored id.
        """
        state = session.state
        if not isinstance(state, ServerSessionState) or state.sid is None:
            return None
        value = b"%s.%d" % (state.sid.encode("ascii"), state.created)
        return self.signer.sign(value, state.created).decode("ascii")

    def restamp(self, value: str) -> str | None:
        """*value* (a cookie or :meth:`stable_key`) signed again now; ``None`` if not ours.

        For opening a session by a key recorded earlier: its signature proves the id
        is one this middleware issued, and the store, not the key's age, says whether
        the session is still alive. ``absolute_max_age`` still counts from creation.
        """
        try:
            contents = self.read_cookie(value)
        except (BadData, ValueError):
            return None
        assert contents.sid is not None
        payload = b"%s.%d" % (contents.sid.encode("ascii"), contents.created)
        if contents.lifetime is not None:
            payload += b".%d" % contents.lifetime
        return self.signer.sign(payload, int(time.time())).decode("ascii")

    def _verify(self, value: str) -> CookieContents:
        unsigned = self.signer.unsign(value)
        # "id.created", or "id.created.lifetime" for a session with its own lifetime
        sid, _, times = unsigned.value.partition(b".")
        created_bytes, _, lifetime_bytes = times.partition(b".")
        if (
            not _SID.fullmatch(sid)
            or not created_bytes.isdigit()
            or len(created_bytes) > 12
            or (lifetime_bytes and (not lifetime_bytes.isdigit() or len(lifetime_bytes) > 12))
        ):
            raise ValueError("not a session id")
        return CookieContents(
            int(created_bytes),
            unsigned.timestamp,
            unsigned.stale_key,
            sid=sid.decode("ascii"),
            lifetime=int(lifetime_bytes) if lifetime_bytes else None,
        )

    @staticmethod
    def decode_record(record: dict[str, bytes]) -> dict[str, Any]:
        """The session data in a stored record (one serialized value per field).

        :raises ValueError: a field is not exactly one valid tagged JSON value.
        """
        # One parse of all the fields as a JSON array, not one parse per field: the
        # per-call overhead was most of the cost of loading a session (10 -> 4.6 us
        # for nine fields). A field holding more or less than one value changes the
        # array's length, which the strict zip refuses with a ValueError.
        values = serialization.loads(b"[" + b",".join(record.values()) + b"]")
        return dict(zip(record, values, strict=True))

    def _diff(self, session: Session) -> tuple[dict[str, bytes], list[str]]:
        state: ServerSessionState = session.state  # type: ignore[assignment]
        raw = state.raw
        data = session._data or {}
        changed: dict[str, bytes] = {}
        removed: list[str] = []
        for key in session._dirty:
            if key in data:
                value = serialization.dumps(data[key], where=f"session[{key!r}]").encode()
                if raw.get(key) != value:
                    changed[key] = value
            elif key in raw:
                removed.append(key)
        return changed, removed

    def session_changed(self, session: Session) -> bool:
        changed, removed = self._diff(session)
        state: ServerSessionState = session.state  # type: ignore[assignment]
        return bool(changed or removed) or (state.key is None and bool(session._data))

    def invalidate_session(self, session: Session) -> None:
        state: ServerSessionState = session.state  # type: ignore[assignment]
        if state.key is not None:
            try:
                self.store.delete(state.key)
            except StoreUnavailable as exc:
                self._outage(exc)
                raise
            state.sid = state.key = None
            state.raw = {}

    def _id_cookie(self, session: Session, now: int) -> str:
        state: ServerSessionState = session.state  # type: ignore[assignment]
        assert state.sid is not None
        value = b"%s.%d" % (state.sid.encode("ascii"), state.created)
        if state.lifetime is not None:
            value += b".%d" % state.lifetime
        signed = self.signer.sign(value, now).decode("ascii")
        self._memo.put(
            signed,
            CookieContents(state.created, now, False, sid=state.sid, lifetime=state.lifetime),
        )
        state.saved_lifetime = state.lifetime
        state.issued = now
        state.stale = False
        state.had_cookie = True
        return self.cookie.set_header(
            signed,
            session.environ or {},
            max_age=self.times.cookie_max_age(state.created, now, state.lifetime),
            plain=True,
        )

    def _save(self, session: Session, now: int, *, late: bool) -> str | None:
        try:
            return self._save_to_store(session, now, late=late)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise

    def _outage(self, exc: StoreUnavailable) -> None:
        _log_outage(exc)
        if self.hooks is not None:
            self.hooks.emit(EventName.STORE_ERROR, reason=type(exc.__cause__ or exc).__name__)

    def _tracked(self, session: Session, old_key: str | None, ttl: int) -> bool:
        """Tell the hooks the record was created, moved or refreshed; ``False``: revoked."""
        hooks = self.hooks
        state: ServerSessionState = session.state  # type: ignore[assignment]
        assert hooks is not None
        assert state.key is not None
        if old_key != state.key:
            name = EventName.CREATED if old_key is None else EventName.REGENERATED
            hooks.emit(name, session._data)
        if hooks.stored(session, old_key, state.key, ttl):
            return True
        # Revoked while this request ran (its device entry is gone): the record this
        # request just wrote must not outlive the revocation.
        self.store.delete(state.key)
        state.sid = state.key = None
        state.raw = {}
        return False

    def _ended_cookie(self, session: Session, *, late: bool) -> str | None:
        state: ServerSessionState = session.state  # type: ignore[assignment]
        if late or not state.had_cookie:
            return None
        state.had_cookie = False
        return self.cookie.delete_header(session.environ or {})

    def _save_to_store(self, session: Session, now: int, *, late: bool) -> str | None:
        state: ServerSessionState = session.state  # type: ignore[assignment]
        data = session._data or {}
        store = self.store
        old_key = None
        old_fields: list[str] = []
        if session._fresh or session._regenerate:
            if late:
                self._lost("a new session id (after clear() or regenerate())")
                return None
            old_key = state.key
            old_fields = list(state.raw)
            if session._fresh:
                state.created = now
            state.sid = state.key = None
            state.raw = {}
            session._fresh = session._regenerate = False
        state.writes = session._writes
        header = None
        ttl = self.times.ttl(state.created, now, state.lifetime)
        if not data:
            if state.key is not None:
                store.delete(state.key)
                state.sid = state.key = None
                state.raw = {}
            if state.had_cookie and not late:
                state.had_cookie = False
                header = self.cookie.delete_header(session.environ or {})
        elif state.key is None:
            if late:
                self._lost("a new session")
                return None
            sid = secrets.token_urlsafe(32)
            key = self.store_key(sid)
            fields = {
                k: serialization.dumps(v, where=f"session[{k!r}]").encode() for k, v in data.items()
            }
            store.save(key, fields, (), ttl, create=True)
            state.sid, state.key, state.raw = sid, key, fields
            moved, old_key = old_key, None
            if moved is not None and not self._retire(session, moved, old_fields, now):
                # Ended (logout, revoke) between this request's load and its move to
                # a new id: the new record must not outlive it. Created first, then
                # checked, so a store outage between the two loses nothing.
                log.info(
                    "the session was ended (logout?) by another request while this one"
                    " moved it to a new id; the new id was dropped rather than bring it back"
                )
                store.delete(key)
                state.sid = state.key = None
                state.raw = {}
                header = self._ended_cookie(session, late=late)
            elif self.hooks is not None and not self._tracked(session, moved, ttl):
                header = self._ended_cookie(session, late=late)
            else:
                header = self._id_cookie(session, now)
        else:
            assert state.key is not None
            changed, removed = self._diff(session)
            refresh = (
                not late
                and state.sid is not None
                and (
                    state.stale
                    or state.lifetime != state.saved_lifetime
                    or self.times.refresh_due(state.issued, now, state.lifetime)
                )
            )
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
                if self.hooks is not None and not self._tracked(session, state.key, ttl):
                    header = self._ended_cookie(session, late=late)
                else:
                    header = self._id_cookie(session, now)
        if old_key is not None and old_key != state.key:
            store.delete(old_key)  # the session was emptied: nothing to forward to
        session._rotate = False
        _keep_mutable(session)
        return header
