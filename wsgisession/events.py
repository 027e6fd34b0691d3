"""Session events: observe what happens to sessions without touching the request path.

Register a callback on a middleware and it is called for each event of its
sessions::

    sessions = SessionMiddleware(app, secret_key=KEY, store=SQLiteStore())

    @sessions.on_event
    def audit(event: SessionEvent) -> None:
        log.info("%s user=%s device=%s (%s)", event.name, event.user_id, event.handle, event.reason)

An event says *what* happened (:class:`EventName`), to *whom* (the user id, if the
session was logged in), on *which device* (the opaque handle of
:mod:`wsgisession.access.devices`, if tracked) and *why* (a short reason). It never
carries the session id, its store key or its data: an event log is not a way in.

A callback runs in the request's thread, after the event; an exception it raises is
logged and swallowed, so auditing can never break a login. Keep callbacks fast (a
counter, a log line, a queue put).

No cost when unused: until the first :meth:`~wsgisession.SessionMiddleware.on_event`
(or device tracking) the middleware holds no hooks at all and each place that could
emit an event costs one ``is None`` test (``make bench`` measures it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeGuard
from uuid import UUID

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .sessions import SessionState

__all__ = ["Acceptance", "EventName", "SessionEvent", "SessionHooks", "SessionTracker"]

log = logging.getLogger("wsgisession")

#: The session key of :func:`~wsgisession.login`'s record.
AUTH_KEY = "_wsgisession.auth"
#: The session key of a tracked device: ``{"u": user id, "h": handle, "c": created, "t": valid
#: from}`` (see :mod:`wsgisession.access.devices`). Not under ``ID_BOUND_PREFIX``: it
#: survives :meth:`~wsgisession.Session.regenerate`, so the handle is stable.
DEVICE_KEY = "_wsgisession.device"
#: The environ key of the middleware's :class:`SessionHooks`, set only when it has some.
HOOKS_KEY = "wsgisession.hooks"


class EventName(StrEnum):
    """What happened to a session."""

    #: A new session was stored for the first time (its first cookie was issued).
    CREATED = "created"
    #: The session moved to a new id (``regenerate()``, ``clear()`` with new data).
    REGENERATED = "regenerated"
    #: :func:`~wsgisession.login` (or a framework login that called ``record_login``).
    LOGGED_IN = "logged_in"
    #: :func:`~wsgisession.logout`.
    LOGGED_OUT = "logged_out"
    #: Ended from elsewhere: ``revoke()``, ``revoke_all()``, a "not before" stamp,
    #: a login beyond ``max_per_user`` (the reason ``"session cap"``).
    REVOKED = "revoked"
    #: A cookie too old for its idle or absolute lifetime, or a session whose stored
    #: record is gone (expired, or ended while a request was in flight).
    EXPIRED = "expired"
    #: A cookie that failed verification (tampered, another key, garbage) was refused.
    TAMPERED = "tampered"
    #: The store failed; the client got a ``503``.
    STORE_ERROR = "store_error"
    #: A session of the system being replaced was carried over
    #: (:mod:`wsgisession.migration`); a carried-over login also gives
    #: :attr:`LOGGED_IN` with the reason ``"migrated"``.
    MIGRATED = "migrated"


class SessionEvent(NamedTuple):
    """One event: never the session id, its store key or its data."""

    #: What happened.
    name: EventName
    #: The logged-in user's id, if the session was logged in.
    user_id: str | int | UUID | None = None
    #: The device handle (:mod:`wsgisession.access.devices`), if the session is tracked.
    handle: str | None = None
    #: Why, in a few words (``"idle too long"``, ``"revoke_all"``, an error class).
    reason: str | None = None


#: Where Flask-Login and Django keep the logged-in user's id in the session.
FRAMEWORK_LOGIN_KEYS = ("_user_id", "_auth_user_id")


def login_of(data: dict[str, Any]) -> str | int | UUID | None:
    """Who session *data* is logged in as, whoever logged it in, or ``None``.

    :func:`~wsgisession.login`'s record first, then Flask-Login's and Django's keys.
    """
    auth = data.get(AUTH_KEY)
    if type(auth) is dict and is_user_id(auth.get("id")):
        return auth["id"]  # type: ignore[no-any-return]
    for key in FRAMEWORK_LOGIN_KEYS:
        value = data.get(key)
        if is_user_id(value):
            return value
    return None


def is_user_id(value: object) -> TypeGuard[str | int | UUID]:
    """Whether *value* can be a user id: a ``str``, ``int`` (not ``bool``) or ``UUID``."""
    return isinstance(value, (str, int, UUID)) and not isinstance(value, bool)


def identity(data: dict[str, Any] | None) -> tuple[str | int | UUID | None, str | None]:
    """The user id and device handle recorded in session *data*, if any."""
    if not data:
        return None, None
    device = data.get(DEVICE_KEY)
    if type(device) is dict:
        return device.get("u"), device.get("h")
    auth = data.get(AUTH_KEY)
    if type(auth) is dict:
        return auth.get("id"), None
    return None, None


class Acceptance(StrEnum):
    """What device tracking says of a session just loaded."""

    #: Use it as it is.
    KEEP = "keep"
    #: Use it: a login made while tracking was off became a device, so the
    #: session's :data:`DEVICE_KEY` was set and must be saved with this response.
    ADOPTED = "adopted"
    #: Refuse it: revoked.
    REFUSED = "refused"


class SessionTracker(Protocol):
    """What device tracking (:mod:`wsgisession.access.devices`) asks of the backends."""

    def accept(
        self, data: dict[str, Any], record: SessionState, environ: WSGIEnvironment
    ) -> Acceptance:
        """At load: whether loaded *data* may be used; may adopt it as a device."""

    def stored(
        self,
        data: dict[str, Any],
        environ: WSGIEnvironment,
        old_key: str | None,
        key: str,
        ttl: int,
    ) -> bool:
        """After a save that created, moved (*old_key* → *key*) or refreshed the record.

        :returns: ``False`` when the session was revoked meanwhile: the backend then
            deletes *key* and ends the session.
        """


class SessionHooks:
    """A middleware's observers: event callbacks and device tracking.

    Created on the first :meth:`~wsgisession.SessionMiddleware.on_event` (or
    :func:`~wsgisession.access.devices.track_devices`); the backends test for
    ``None`` and do nothing more when there is none.
    """

    __slots__ = ("callbacks", "tracker")

    def __init__(self) -> None:
        #: Called with each :class:`SessionEvent`.
        self.callbacks: list[Callable[[SessionEvent], object]] = []
        #: Device tracking, if enabled.
        self.tracker: SessionTracker | None = None

    def emit(
        self,
        name: EventName,
        data: dict[str, Any] | None = None,
        reason: str | None = None,
        *,
        user_id: str | int | UUID | None = None,
        handle: str | None = None,
    ) -> None:
        """Call every callback with an event about the session holding *data*."""
        if not self.callbacks:
            return
        if user_id is None and handle is None:
            user_id, handle = identity(data)
        event = SessionEvent(name, user_id, handle, reason)
        for callback in self.callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("a session event callback failed on %s; ignored", name.value)

    def accept(
        self, data: dict[str, Any], record: SessionState, environ: WSGIEnvironment
    ) -> Acceptance:
        """Whether loaded *data* may be used; see :class:`SessionTracker`."""
        tracker = self.tracker
        return Acceptance.KEEP if tracker is None else tracker.accept(data, record, environ)

    def stored(
        self,
        data: dict[str, Any],
        environ: WSGIEnvironment,
        old_key: str | None,
        key: str,
        ttl: int,
    ) -> bool:
        """After a save that created, moved or refreshed a record; see :class:`SessionTracker`."""
        tracker = self.tracker
        return tracker is None or tracker.stored(data, environ, old_key, key, ttl)
