"""ServerBackend: the cookie is a signed id, the data in a ServerSessionStore."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from itsdangerous import BadData

from .. import serialization
from .._memo import Memo
from ..cookies import CookieOptions
from ..errors import StoreUnavailable
from ..events import DEVICE_KEY, Acceptance, EventName
from ..sessions import (
    Loaded,
    Pending,
    Saved,
    SaveOutcome,
    Session,
    SessionState,
)
from .base import (
    _SID,
    CookieContents,
    SessionTimes,
    _Base,
    _log_outage,
)

if TYPE_CHECKING:
    from ..signing import PurposeSigner
    from ..stores.base import ServerSessionStore
    from .transport import SessionHeader


log = logging.getLogger("wsgisession")

#: The field a session's old record keeps once the session moved to a new id:
#: ``b"-> <new store key> <deadline>"``, the other fields removed. No serialized
#: value starts with ``->`` (it is not JSON), so session data cannot pass for it.
MOVED = "_wsgisession.moved"
_MOVED_PREFIX = b"-> "
#: The first byte of a value a store with ``encrypt=True`` sealed
#: (``stores/_sealed.py``); no serialized value starts with it.
SEALED = b"\x01"
_new_record = object.__new__


class ServerBackend(_Base):
    """Sessions kept in a :class:`~wsgisession.ServerSessionStore`; the cookie is an id.

    The cookie is ``sign(id.created)``: the signature refuses a forged id before any
    store lookup, and the creation time for ``absolute_max_age`` cannot be altered.
    """

    def __init__(
        self,
        store: ServerSessionStore,
        signer: PurposeSigner,
        cookie: CookieOptions | None,
        times: SessionTimes,
        header: SessionHeader | None = None,
    ) -> None:
        super().__init__(cookie, times, header)
        # A store with encrypt=True hands back a view that seals each value under keys
        # derived from these; any other store is itself, at no cost per request.
        self.store = store.bind(signer.keys)
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

    def load_session(self, session: Session) -> Loaded:
        now = int(time.time())
        environ = session.environ or {}
        value = self._client_value(environ)
        if value is None:
            return self._fresh(environ, now)
        try:
            contents = self.read_cookie(value)
        except (BadData, ValueError) as exc:
            return self._refused(environ, now, exc)
        reason = self.times.expired(contents.issued, contents.created, now, contents.lifetime)
        if reason is not None:
            return self._expired(now, reason)
        assert contents.sid is not None
        key = self.store_key(contents.sid)
        key, record, forwarded = self._stored(key, now)
        if not record:
            log.debug("no stored session for this id (expired or ended); issuing a new id")
            if self.hooks is not None:
                self.hooks.emit(EventName.EXPIRED, reason="no stored session")
            return {}, SessionState(now, had_cookie=True), True, (), False
        data = self._decoded(key, record)
        if data is None:
            return {}, SessionState(now, had_cookie=True), True, (), False
        # A request that followed a rotation's forward reads and writes the new
        # record but never learns its id (the store holds only keys), so it cannot
        # and does not set the cookie: the rotating response sets the new one.
        loaded = _new_record(SessionState)  # slot by slot, as in _issued
        loaded.created = contents.created
        loaded.issued = contents.issued
        loaded.lifetime = contents.lifetime
        loaded.had_cookie = True
        loaded.stale = contents.stale_key
        loaded.sid = None if forwarded else contents.sid
        loaded.key = key
        loaded.raw = dict(record)
        loaded.payload = None
        loaded.known = False
        if self.hooks is None:
            return data, loaded, False, (), False
        verdict = self.hooks.accept(data, loaded, environ)
        if verdict is Acceptance.REFUSED:
            # Logged in while device tracking was off, before a revoke_all of its
            # user: ended now, as a revocation would have done had it been listed.
            self._deleted(key)
            return {}, SessionState(now, had_cookie=True), True, (), False
        adopted = (DEVICE_KEY,) if verdict is Acceptance.ADOPTED else ()
        return data, loaded, False, adopted, False

    def _stored(self, key: str, now: int) -> tuple[str, dict[str, bytes] | None, bool]:
        """The key and record of *key*, following a rotation's forward; whether it did."""
        try:
            record = self.store.load(key)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise
        if record and MOVED in record and record[MOVED].startswith(_MOVED_PREFIX):
            return (*self._follow(record[MOVED], now), True)
        return key, record, False

    def _decoded(self, key: str, record: dict[str, bytes]) -> dict[str, Any] | None:
        """The data of a stored record; a corrupt one is deleted (``None``)."""
        try:
            return self.decode_record(record)
        except (ValueError, TypeError, RecursionError) as exc:
            if any(value[:1] == SEALED for value in record.values()):
                # Sealed by a process with encrypt=True (a rolling deploy that turns
                # encryption on): not corrupt, and not ours to delete.
                log.warning(
                    "a session record is sealed (encrypt=True elsewhere) but this store"
                    " does not encrypt; starting a fresh session, the record is kept"
                )
                return None
            log.warning("deleted a corrupt session record (%s); starting a fresh session", exc)
            if self.hooks is not None:
                self.hooks.emit(EventName.TAMPERED, reason="corrupt record")
            self._deleted(key)
            return None

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

    def read_cookie(self, value: str) -> CookieContents:
        """Verify a cookie value and return the session id and times it carries.

        :raises itsdangerous.BadData: a bad signature.
        :raises ValueError: the signed value is not a session id.
        """
        return self._memo.answer(value, self._verify)

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

    def stable_key(self, record: SessionState) -> str | None:
        """A signed name of the session *record* describes, the same while its id is.

        The cookie is re-signed at each renewal, so its value changes; this one is
        signed with the session's creation time as its timestamp, so it changes only
        with the id (``regenerate()``, ``clear()``). It is also a cookie value that
        :meth:`restamp` accepts. ``None`` while the session has no stored id.
        """
        if record.sid is None:
            return None
        value = b"%s.%d" % (record.sid.encode("ascii"), record.created)
        return self.signer.sign(value, record.created).decode("ascii")

    def _outage(self, exc: StoreUnavailable) -> None:
        """Log a store outage and tell the hooks; the caller raises it on."""
        _log_outage(exc)
        if self.hooks is not None:
            self.hooks.emit(EventName.STORE_ERROR, reason=type(exc.__cause__ or exc).__name__)

    def _diff(self, pending: Pending) -> tuple[dict[str, bytes], list[str]]:
        raw = pending.record.raw
        data = pending.data
        changed: dict[str, bytes] = {}
        removed: list[str] = []
        dumps = serialization.dumps
        for key in pending.dirty:
            if key in data:
                try:
                    value = dumps(data[key]).encode()
                except (TypeError, ValueError):
                    # Again, to name the key in the error: formatting its name for
                    # every value saved cost more than the rest of the loop.
                    value = dumps(data[key], where=f"session[{key!r}]").encode()
                if raw.get(key) != value:
                    changed[key] = value
            elif key in raw:
                removed.append(key)
        return changed, removed

    def session_changed(self, pending: Pending) -> bool:
        changed, removed = self._diff(pending)
        return bool(changed or removed) or (pending.record.key is None and bool(pending.data))

    def invalidate_session(self, record: SessionState) -> SessionState:
        if record.key is None:
            return record
        self._deleted(record.key)
        return SessionState(
            record.created, record.issued, record.lifetime, record.had_cookie, record.stale
        )

    # -- a save: plan, then act --------------------------------------------------
    # _plan decides from the session and its record alone; the _act_* steps make the
    # store calls, in an order that keeps every guarantee (a logout is never undone,
    # an outage loses nothing saved before), and return the new record as a value.

    def save(self, pending: Pending, now: int, late: bool) -> Saved:
        record = pending.record
        try:
            if (
                record.key is not None
                and pending.data
                and not (pending.fresh or pending.regenerate)
            ):
                return self._act_update(pending, record, now, late)  # most saves
            plan = self._plan(pending, record, now, late=late)
            if plan is None:
                return None, None, "lost"
            if not pending.data:
                return self._act_empty(pending, plan, late=late)
            return self._act_create(pending, plan, now)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise

    def _deleted(self, key: str) -> None:
        """Delete a record outside a save (a load, ``invalidate()``); outages logged."""
        try:
            self.store.delete(key)
        except StoreUnavailable as exc:
            self._outage(exc)
            raise

    def _plan(
        self, pending: Pending, record: SessionState, now: int, *, late: bool
    ) -> _StorePlan | None:
        """A new id, or none left: which record to start from; ``None``: lost."""
        old_key = None
        old_fields: list[str] = []
        if pending.fresh or pending.regenerate:
            if late:
                self._lost("a new session id (after clear() or regenerate())")
                return None
            old_key, old_fields = record.key, list(record.raw)
            created = now if pending.fresh else record.created
            record = _without_id(record, created)
        elif pending.data and late:
            self._lost("a new session")
            return None
        ttl = self.times.ttl(record.created, now, pending.lifetime)
        return _StorePlan(record, ttl, old_key, old_fields, pending.rotate)

    def _act_empty(self, pending: Pending, plan: _StorePlan, *, late: bool) -> Saved:
        record = plan.record
        if record.key is not None:
            self.store.delete(record.key)
            record = _without_id(record, record.created)
        if plan.old_key is not None:
            self.store.delete(plan.old_key)  # emptied: nothing to forward to
        return self._ended(pending, record, "saved", late=late)

    def _act_create(self, pending: Pending, plan: _StorePlan, now: int) -> Saved:
        sid = secrets.token_urlsafe(32)
        key = self.store_key(sid)
        fields = {
            k: serialization.dumps(v, where=f"session[{k!r}]").encode()
            for k, v in pending.data.items()
        }
        self.store.save(key, fields, (), plan.ttl, create=True)
        old = plan.record
        record = SessionState(
            old.created, old.issued, old.lifetime, old.had_cookie, old.stale, sid, key, fields
        )
        moved = plan.old_key
        if moved is not None and not self._retire(moved, key, plan, now):
            # Ended (logout, revoke) between this request's load and its move to
            # a new id: the new record must not outlive it. Created first, then
            # checked, so a store outage between the two loses nothing.
            log.info(
                "the session was ended (logout?) by another request while this one"
                " moved it to a new id; the new id was dropped rather than bring it back"
            )
            self.store.delete(key)
            return self._ended(pending, old, "gone")
        if self.hooks is not None and not self._tracked(pending, moved, key, plan.ttl):
            return self._ended(pending, old, "revoked")
        return self._issued(pending, record, now)

    def _act_update(self, pending: Pending, record: SessionState, now: int, late: bool) -> Saved:
        """Write what changed in a stored session, and renew it when due."""
        key = record.key
        assert key is not None
        lifetime, issued = pending.lifetime, record.issued
        ttl = self.times.ttl(record.created, now, lifetime)
        if lifetime is None:  # most sessions: SessionTimes.refresh_due without the call
            every = self.times.default_refresh
            due = every is not None and issued is not None and now - issued >= every
        else:
            due = self.times.refresh_due(issued, now, lifetime)
        refresh = (
            not late
            and record.sid is not None
            and (due or record.stale or pending.reissue or lifetime != record.lifetime)
        )
        changed, removed = self._diff(pending)
        saved: SessionState | None = None
        if changed or removed:
            if not self.store.save(key, changed, removed, ttl, create=False):
                log.info(
                    "the session was ended (logout?) by another request while this one"
                    " ran; its changes were dropped rather than bring it back"
                )
                return self._ended(pending, _without_id(record, record.created), "gone", late=late)
            raw = {**record.raw, **changed}
            for field in removed:
                raw.pop(field, None)
            saved = _new_record(SessionState)  # slot by slot, as in _issued
            saved.created = record.created
            saved.issued = record.issued
            saved.lifetime = record.lifetime
            saved.had_cookie = record.had_cookie
            saved.stale = record.stale
            saved.sid = record.sid
            saved.key = key
            saved.raw = raw
            saved.payload = None
            saved.known = False
            record = saved
        elif refresh:
            self.store.touch(key, ttl)
        if not refresh:
            return saved, None, "saved"
        if self.hooks is not None and not self._tracked(pending, key, key, ttl):
            return self._ended(pending, _without_id(record, record.created), "revoked", late=late)
        return self._issued(pending, record, now)

    def _retire(self, old_key: str, key: str, plan: _StorePlan, now: int) -> bool:
        """Mark the old record moved, if it still exists: ``False`` when it was gone.

        One ``save(create=False)``, so checking that the session was not ended
        meanwhile (a logout) and retiring its old record are one atomic step of the
        four-method store contract, in the round trip that deleted it before. The
        old record keeps only the marker: for ``rotation_grace`` seconds after a
        rotation without a privilege change, else for one second, leading nowhere.
        """
        grace = self.rotation_grace if plan.rotate else 0
        marker = b"-> %s %d" % (key.encode("ascii"), now + grace if grace else 0)
        removed = [field for field in plan.old_fields if field != MOVED]
        return bool(self.store.save(old_key, {MOVED: marker}, removed, grace + 1, create=False))

    def _tracked(self, pending: Pending, old_key: str | None, key: str, ttl: int) -> bool:
        """Tell the hooks the record was created, moved or refreshed; ``False``: revoked."""
        hooks = self.hooks
        assert hooks is not None
        if old_key != key:
            hooks.emit(
                EventName.CREATED if old_key is None else EventName.REGENERATED, pending.data
            )
        if hooks.stored(pending.data, pending.environ, old_key, key, ttl):
            return True
        # Revoked while this request ran (its device entry is gone): the record this
        # request just wrote must not outlive the revocation.
        self.store.delete(key)
        return False

    def _issued(self, pending: Pending, record: SessionState, now: int) -> Saved:
        """A new id cookie for *record*, signed now."""
        assert record.sid is not None
        lifetime = pending.lifetime
        value = b"%s.%d" % (record.sid.encode("ascii"), record.created)
        if lifetime is not None:
            value += b".%d" % lifetime
        signed = self.signer.sign(value, now).decode("ascii")
        self._memo.put(
            signed, CookieContents(record.created, now, False, sid=record.sid, lifetime=lifetime)
        )
        max_age = self.times.cookie_max_age(record.created, now, lifetime)
        carrier = self.header
        if carrier is not None and carrier.carries(pending.environ):
            header = signed  # the session header's value: the cookie's, as it is
        else:  # no header: a cookie
            header = self.cookie.set_header(  # type: ignore[union-attr]
                signed, pending.environ, max_age=max_age, plain=True
            )
        # Built slot by slot: SessionState(...) costs three times as much here, on
        # every renewal; likewise on every load (benchmarks/instructions.py).
        issued = _new_record(SessionState)
        issued.created = record.created
        issued.issued = now
        issued.lifetime = lifetime
        issued.had_cookie = True
        issued.stale = False
        issued.sid = record.sid
        issued.key = record.key
        issued.raw = record.raw
        issued.payload = None
        issued.known = False
        return issued, (signed, max_age, header), "saved"

    def _ended(
        self, pending: Pending, record: SessionState, outcome: SaveOutcome, *, late: bool = False
    ) -> Saved:
        """The session has no stored record: delete the client's cookie (or header value)."""
        keep = late or not record.had_cookie
        ended = SessionState(
            record.created, record.issued, record.lifetime, record.had_cookie and keep, record.stale
        )
        if keep:
            return ended, None, outcome
        return ended, (None, 0, self._delete_line(pending.environ)), outcome


class _StorePlan(NamedTuple):
    """What a save that moves to a new id (or empties the session) starts from."""

    #: The record to start from: without its id when the session moves to a new one.
    record: SessionState
    ttl: int
    #: The record the session moves away from, and its fields.
    old_key: str | None
    old_fields: list[str]
    #: A rotation without a privilege change: the old id may forward for a while.
    rotate: bool


def _without_id(record: SessionState, created: int) -> SessionState:
    """*record* once its stored session is gone (or left behind): no id, key or fields."""
    return SessionState(created, record.issued, record.lifetime, record.had_cookie, record.stale)
