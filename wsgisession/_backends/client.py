"""ClientBackend: the whole session in the cookie (CookieStore)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData

from .. import serialization
from .._memo import Memo
from ..cookies import MAX_COOKIE_SIZE, CookieOptions
from ..errors import SessionTooLarge
from ..events import EventName
from ..sessions import Session, SessionState
from .base import (
    CookieContents,
    SessionTimes,
    _Base,
    _biggest_keys,
    _keep_mutable,
)

if TYPE_CHECKING:
    from ..stores.base import CookieCodec


log = logging.getLogger("wsgisession")


class _ClientState(SessionState):
    __slots__ = ("known", "loaded")

    def __init__(self, now: int) -> None:
        super().__init__(now)
        #: The payload of the client's cookie (or of the last one sent).
        self.loaded: bytes | None = None
        #: Whether serialization.dumps_known may rely on :attr:`loaded`: orjson
        #: read it (serialization.loads_known) or dumps_known wrote it; see _payload.
        self.known = False


class ClientBackend(_Base):
    """Sessions kept whole in the cookie (:class:`~wsgisession.CookieStore`)."""

    def __init__(self, codec: CookieCodec, cookie: CookieOptions, times: SessionTimes) -> None:
        super().__init__(cookie, times)
        self.codec = codec
        # Cookie values decoded before (wsgisession._memo): the browser sends the same
        # one until a response changes it. The codec remembers what it verified;
        # this also keeps the payload's shape checks and choice of JSON decoder.
        self._seen: Memo[tuple[CookieContents, bytes, bool]] = Memo()

    def load_session(self, session: Session) -> dict[str, Any]:
        now = int(time.time())
        state = session.state = _ClientState(now)
        value = self._cookie_value(session.environ or {})
        if value is None:
            return {}
        try:
            contents, data, payload, known = self._read(value)
        except (BadData, ValueError, TypeError, RecursionError) as exc:
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
        state.created = contents.created  # the login time of a login made untracked
        if self.hooks is not None and not self.hooks.accept(session, data):
            # Revoked (a "not before" stamp): the cookie is still signed and unexpired,
            # so it is refused here, and replaced by the next write.
            state.created = now
            return {}
        state.lifetime = state.saved_lifetime = contents.lifetime
        state.created = contents.created
        state.issued = contents.issued
        state.loaded = payload
        state.known = known
        state.stale = contents.stale_key
        session._new = False
        return data

    def read_cookie(self, value: str) -> CookieContents:
        """Verify and decode a cookie value; expiry is left to the caller.

        :raises itsdangerous.BadData: a bad signature or ciphertext.
        :raises ValueError: anything else wrong with the value or its payload.
        """
        try:
            contents, data, _, _ = self._read(value)
            return contents._replace(data=data)
        except (TypeError, RecursionError) as exc:
            raise ValueError(f"not a session payload: {exc}") from exc

    def _read(self, value: str) -> tuple[CookieContents, dict[str, Any], bytes, bool]:
        """The cookie's contents (without data), its data, its payload, whether known plain."""
        seen = self._seen.get(value)
        if seen is not None:
            # Decoded before: only the data must be new (the caller may change it);
            # the shape checks and the choice of decoder are the payload's, and stay.
            contents, payload, known = seen
            return contents, serialization.loads_again(payload, known)[1], payload, known
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
        contents = CookieContents(
            created, unsigned.timestamp, unsigned.stale_key, None, None, lifetime
        )
        self._seen.put(value, (contents, unsigned.value, known))
        return contents, data, unsigned.value, known

    def _payload(self, session: Session) -> tuple[bytes, bool]:
        """The cookie payload of *session* now, and whether it is known plain."""
        state: _ClientState = session.state  # type: ignore[assignment]
        data = session._data
        assert data is not None
        # Values unchanged since the load need no check when they are known plain:
        # on a write, checking the whole session cost four times its encoding.
        text = None
        if state.known and state.loaded is not None:
            text = serialization.dumps_known(data, session._dirty)
        known = text is not None
        if text is None:
            text = serialization.dumps(data, where="session")
        body = text.encode()
        if state.lifetime is None:
            return b"[%d,%s]" % (state.created, body), known
        return b"[%d,%s,%d]" % (state.created, body, state.lifetime), known

    def session_changed(self, session: Session) -> bool:
        state: _ClientState = session.state  # type: ignore[assignment]
        if state.loaded is None:
            return bool(session._data)
        return bool(session._dirty) and self._payload(session)[0] != state.loaded

    def invalidate_session(self, session: Session) -> None:
        """Nothing to delete on the server; the save deletes the cookie."""

    def _save(self, session: Session, now: int, *, late: bool) -> str | None:
        state: _ClientState = session.state  # type: ignore[assignment]
        data = session._data
        if late:
            if session._writes != state.writes or self.session_changed(session):
                self._lost("the change")
            return None
        if session._fresh:
            state.created = now
            state.loaded = None
        changed = (
            session._fresh
            or session._regenerate
            or state.loaded is None
            or state.lifetime != state.saved_lifetime
        )
        moved = (session._fresh or session._regenerate) and state.had_cookie
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
        known = state.known
        if not changed and session._dirty:
            payload, known = self._payload(session)
            changed = payload != state.loaded
        if changed or state.stale or self.times.refresh_due(state.issued, now, state.lifetime):
            if payload is None:
                if changed:
                    payload, known = self._payload(session)
                else:
                    payload = state.loaded
            assert payload is not None
            value = self.codec.encode(payload)
            header = self.cookie.set_header(
                value,
                session.environ or {},
                max_age=self.times.cookie_max_age(state.created, now, state.lifetime),
                plain=self.codec.plain_output,
            )
            if len(header) > MAX_COOKIE_SIZE:
                raise SessionTooLarge(
                    len(header), MAX_COOKIE_SIZE, _biggest_keys(data), self.cookie.name
                )
            if self.hooks is not None and (moved or state.loaded is None):
                self.hooks.emit(EventName.REGENERATED if moved else EventName.CREATED, data)
            state.loaded = payload
            state.known = known
            state.saved_lifetime = state.lifetime
            state.issued = now
            if self.codec.remembers_issued:
                # The browser sends this value next: what it holds is known already
                # (only the signature's timestamp is the codec's), so that request
                # skips the payload's checks as it would for a value seen before.
                contents = CookieContents(
                    state.created,
                    self.codec.decode(value).timestamp,
                    False,
                    None,
                    None,
                    state.lifetime,
                )
                self._seen.put(value, (contents, payload, known))
            state.stale = False
            state.had_cookie = True
        _keep_mutable(session)
        return header
