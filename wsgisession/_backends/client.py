"""ClientBackend: the whole session in the cookie (CookieStore)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, TypeAlias

from itsdangerous import BadData

from .. import serialization
from .._memo import Memo
from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..errors import SessionTooLarge
from ..events import DEVICE_KEY, Acceptance, EventName
from ..sessions import _NO_FIELDS, Loaded, Pending, Saved, Session, SessionState
from .base import (
    CookieContents,
    SessionTimes,
    _Base,
    _biggest_keys,
)

if TYPE_CHECKING:
    from ..stores.base import CookieCodec
    from .transport import SessionHeader


log = logging.getLogger("wsgisession")
_new_record = object.__new__


#: What the middleware knows of a cookie value, a list (the cheapest object to make
#: on every write): the record of a client holding it, and, for a payload read as
#: plain JSON (``known``), its data, decoded once and never changed, shared by the
#: requests that send the value (``Session`` copies a shared mutable value on its
#: first access: ``Loaded``), or ``None`` until a request decodes it.
_Seen: TypeAlias = "list[Any]"
_RECORD, _DATA = 0, 1


class ClientBackend(_Base):
    """Sessions kept whole in the cookie (:class:`~wsgisession.CookieStore`)."""

    def __init__(
        self,
        codec: CookieCodec,
        cookie: CookieOptions | None,
        times: SessionTimes,
        header: SessionHeader | None = None,
    ) -> None:
        super().__init__(cookie, times, header)
        self.codec = codec
        # Cookie values decoded before (wsgisession._memo): the browser sends the same
        # one until a response changes it. The codec remembers what it verified;
        # this also keeps the payload's shape checks and choice of JSON decoder, in
        # the record of what the client holds (a SessionState is never changed once
        # made, so every request that sends the value shares it), and the data of a
        # value that keeps coming back (a client that only reads its session).
        self._seen: Memo[_Seen] = Memo()

    def load_session(self, session: Session) -> Loaded:
        now = int(time.time())
        environ = session.environ or {}
        value = self._client_value(environ)
        if value is None:
            return self._fresh(environ, now)
        hooks = self.hooks
        try:
            # Hooks (device tracking) get the data to themselves: it is shared only
            # with the session, which copies what it hands out.
            record, data, shared = self._read(value, share=hooks is None)
        except (BadData, ValueError, TypeError, RecursionError) as exc:
            return self._refused(environ, now, exc)
        issued = record.issued
        assert issued is not None  # a cookie's record: when the cookie was signed
        reason = self.times.expired(issued, record.created, now, record.lifetime)
        if reason is not None:
            return self._expired(now, reason)
        if hooks is None:
            return data, record, False, (), shared
        verdict = hooks.accept(data, record, environ)
        if verdict is Acceptance.REFUSED:
            # Revoked (a "not before" stamp): the cookie is still signed and unexpired,
            # so it is refused here, and replaced by the next write.
            return {}, SessionState(now, had_cookie=True), True, (), False
        adopted = (DEVICE_KEY,) if verdict is Acceptance.ADOPTED else ()
        return data, record, False, adopted, False

    def read_cookie(self, value: str) -> CookieContents:
        """Verify and decode a cookie value; expiry is left to the caller.

        :raises itsdangerous.BadData: a bad signature or ciphertext.
        :raises ValueError: anything else wrong with the value or its payload.
        """
        try:
            record, data, _ = self._read(value, share=False)
        except (TypeError, RecursionError) as exc:
            raise ValueError(f"not a session payload: {exc}") from exc
        assert record.issued is not None  # a cookie's record: when the cookie was signed
        return CookieContents(
            record.created, record.issued, record.stale, data, None, record.lifetime
        )

    def _read(self, value: str, *, share: bool) -> tuple[SessionState, dict[str, Any], bool]:
        """The record of a client that holds the cookie *value*, the data in it, and
        whether that data is shared (only if *share*: see :data:`Loaded`)."""
        seen = self._seen.get(value)
        if seen is not None:
            # Decoded before: the shape checks and the choice of decoder are the
            # payload's, and stay. The data must be this request's (the caller may
            # change it): decoded again, or, for a payload read as plain JSON that
            # keeps coming back, decoded once and shared, its top level copied.
            record: SessionState = seen[_RECORD]
            shared = seen[_DATA]
            if shared is not None and share:
                return record, dict(shared), True
            data = serialization.loads_again(record.payload, record.known)[1]  # type: ignore[arg-type]
            if share and record.known:
                seen[_DATA] = data
                return record, dict(data), True
            return record, data, False
        unsigned = self.codec.decode(value)
        decoded, known = serialization.loads_known(unsigned.value)
        # [created, data] or, for a session with its own lifetime, [created, data, lifetime]
        if type(decoded) is not list or not 2 <= len(decoded) <= 3:
            raise ValueError("not a session payload")
        created, data, *rest = decoded
        lifetime = rest[0] if rest else None
        if (
            type(created) is not int
            or type(data) is not dict
            or (lifetime is not None and (type(lifetime) is not int or lifetime < 0))
        ):
            raise ValueError("not a session payload")
        record = _new_record(SessionState)  # slot by slot, as in _issue
        record.created = created
        record.issued = unsigned.timestamp
        record.lifetime = lifetime
        record.had_cookie = True
        record.stale = unsigned.stale_key
        record.sid = record.key = None
        record.raw = _NO_FIELDS
        record.payload = unsigned.value
        record.known = known
        if share and known:
            self._seen.put(value, [record, data])
            return record, dict(data), True
        self._seen.put(value, [record, None])
        return record, data, False

    def _payload(self, pending: Pending, created: int, known_base: bool) -> tuple[bytes, bool]:
        """The cookie payload of *pending* now, and whether it is known plain."""
        data = pending.data
        lifetime = pending.lifetime
        # Values unchanged since the load need no check when they are known plain:
        # on a write, checking the whole session cost four times its encoding.
        # Otherwise every value is checked, and a session found plain is known from
        # then on (the next write checks only what changed; a client that keeps
        # sending the cookie shares its decoded data). The payload is encoded in one
        # call, as the list it is.
        payload = serialization.dumps_known_list(
            [created, data] if lifetime is None else [created, data, lifetime],
            data,
            pending.dirty if known_base else data,
        )
        if payload is not None:
            return payload, True
        body = serialization.dumps(data, where="session").encode()
        if lifetime is None:
            return b"[%d,%s]" % (created, body), False
        return b"[%d,%s,%d]" % (created, body, lifetime), False

    def session_changed(self, pending: Pending) -> bool:
        record = pending.record
        if record.payload is None:
            return bool(pending.data)
        if not pending.dirty:
            return False
        return self._payload(pending, record.created, record.known)[0] != record.payload

    def invalidate_session(self, record: SessionState) -> SessionState:
        """Nothing to delete on the server; the save deletes the cookie."""
        return record

    # -- a save: plan, then act --------------------------------------------------

    def save(self, pending: Pending, now: int, late: bool) -> Saved:
        # The plan: from the session and its record alone, what the new cookie must
        # hold, if one is needed at all; _issue then makes it. One function rather
        # than a _plan() call: this runs on every request that used its session.
        record = pending.record
        if late:
            return self._late(pending)
        if not pending.data:
            return self._emptied(pending, record, now)
        lifetime, issued = pending.lifetime, record.issued
        if lifetime is None:  # most sessions: SessionTimes.refresh_due without the call
            every = self.times.default_refresh
            due = every is not None and issued is not None and now - issued >= every
        else:
            due = self.times.refresh_due(issued, now, lifetime)
        if not (
            due
            or pending.dirty
            or pending.fresh
            or pending.regenerate
            or pending.reissue
            or record.stale
            or lifetime != record.lifetime
        ):
            return None, None, "saved"  # most reads: the cookie stays as it is
        moved = pending.fresh or pending.regenerate
        created = now if pending.fresh else record.created
        loaded = None if pending.fresh else record.payload
        changed = moved or loaded is None or lifetime != record.lifetime
        payload, known = loaded, record.known
        if not changed and pending.dirty:
            payload, known = self._payload(pending, created, record.known)
            changed = payload != loaded
        elif changed:
            payload, known = self._payload(pending, created, record.known and loaded is not None)
        if not (changed or record.stale or pending.reissue or due):
            return None, None, "saved"
        assert payload is not None  # unchanged: the client's cookie has a payload
        event = None
        if moved and record.had_cookie:
            event = EventName.REGENERATED
        elif loaded is None:
            event = EventName.CREATED
        return self._issue(pending, payload, known, created, event, now)

    def _late(self, pending: Pending) -> Saved:
        """After the headers: the cookie is out already, so any change now is lost."""
        if pending.writes != pending.saved_writes or self.session_changed(pending):
            self._lost("the change")
            return None, None, "lost"
        return None, None, "saved"

    def _emptied(self, pending: Pending, record: SessionState, now: int) -> Saved:
        """An empty session: its cookie (or header value), if the client has one, is deleted."""
        cookie = (None, 0, self._delete_line(pending.environ)) if record.had_cookie else None
        if cookie is None and not pending.fresh:
            return None, None, "saved"
        created = now if pending.fresh else record.created
        emptied = SessionState(
            created, record.issued, record.lifetime, False, record.stale, known=record.known
        )
        return emptied, cookie, "saved"

    def _issue(
        self,
        pending: Pending,
        payload: bytes,
        known: bool,
        created: int,
        event: EventName | None,
        now: int,
    ) -> Saved:
        codec = self.codec
        remembers = codec.remembers_issued
        # A codec that takes the timestamp lets us know it without decoding the
        # value again (it used to: a memo lookup on every write).
        value = codec.encode_at(payload, now) if remembers else codec.encode(payload)
        max_age = self.times.cookie_max_age(created, now, pending.lifetime)
        carrier = self.header
        if carrier is not None and carrier.carries(pending.environ):
            header = value  # the session header's value: the cookie's, as it is
        else:
            header = self.cookie.set_header(  # type: ignore[union-attr]  # no header: a cookie
                value, pending.environ, max_age=max_age, plain=codec.plain_output
            )
        if len(header) > MAX_COOKIE_SIZE:
            # Carried in the header too: a session fits either way, and proxies cap
            # response header lines near 4 or 8 KB.
            raise SessionTooLarge(
                len(header), MAX_COOKIE_SIZE, _biggest_keys(pending.data), self.session_name
            )
        if self.hooks is not None and event is not None:
            self.hooks.emit(event, pending.data)
        # Built slot by slot: SessionState(...) costs three times as much here, on
        # every write; likewise on every load (benchmarks/instructions.py).
        record = _new_record(SessionState)
        record.created = created
        record.issued = now
        record.lifetime = pending.lifetime
        record.had_cookie = True
        record.stale = False
        record.sid = record.key = None
        record.raw = _NO_FIELDS
        record.payload = payload
        record.known = known
        if remembers:
            # The browser sends this value next: what it holds is this record, so
            # that request skips the payload's checks as for a value seen before.
            # A session loaded shared and found plain leaves its data shared too:
            # the values it never handed out are the shared ones, the others are
            # copied, and the request that sends the value back decodes nothing.
            shared = _shared_data(pending) if known and pending.shared else None
            self._seen.put(value, [record, shared])
        return record, (value, max_age, header), "saved"


def _shared_data(pending: Pending) -> dict[str, Any]:
    """The data of *pending* to share with the requests that send its new cookie back.

    The values under keys outside ``pending.dirty`` are shared already and never
    change; a mutable value under a dirty key was handed out or written in this
    request, which may still change it: the shared data gets a copy.
    """
    shared = dict(pending.data)
    for key in pending.dirty:
        value = shared.get(key)
        if type(value) is dict or type(value) is list:  # known: no other mutable type
            shared[key] = serialization.copy_known(value)
    return shared
