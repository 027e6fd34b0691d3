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
revoked before it expires, and :func:`track_devices` refuses to start; an
in-process ``LRUStore`` is refused too (a revocation must reach every worker).

**Logins from before tracking was on** are revoked too: :func:`revoke_all` sets the
user's "not before" stamp on every store, and a logged-in session without a device
record is compared with it on its next request, then becomes a device. User ids
are compared by their string form: ``42`` and ``"42"`` are one user.

**A cap on sessions per user**: ``track_devices(sessions, max_per_user=3)``. At a
login beyond it, ``when_full="end_oldest"`` (the default) ends the user's least
recently seen sessions, each replaced by a note that :func:`ended_elsewhere` reads
on its owner's next request; ``when_full="refuse"`` refuses the login with
:class:`~wsgisession.errors.TooManySessions` (``409``). The count and the new
entry are one atomic step of the store
(:meth:`~wsgisession.stores.SessionIndex.index_admit`), so concurrent logins never
exceed the cap.

Framework logins feed the index by themselves once tracking is on:
``init_app(app, track_devices=True)`` connects Flask-Login's signals, and
``WSGISESSION = {..., "track_devices": True}`` Django's ``user_logged_in`` signal
and ``flush()``. Another framework's login calls :func:`record_login` right after
logging the user in, and its logout :func:`forget_device`.
"""

from __future__ import annotations

import difflib
import inspect
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..context import current_environ, get_session
from ..errors import ConfigurationError, TooManySessions
from ..events import AUTH_KEY, DEVICE_KEY, FRAMEWORK_LOGIN_KEYS, HOOKS_KEY, SessionHooks, login_of
from ..stores.base import ServerSessionStore, SessionIndex
from ._tracking import (
    ENDED_KEY,
    FRESH_KEY,
    RECHECK_KEY,
    REFUSED_KEY,
    Devices,
    SessionInfo,
    UserId,
    WhenFull,
    same_user,
    untracked_login,
    user_token,
)
from ._tracking import device_record as _device

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..middleware import SessionMiddleware
    from ..sessions import Session

#: Where a session records who is logged in: wsgisession's, Flask-Login's, Django's.
_LOGIN_KEYS = (AUTH_KEY, *FRAMEWORK_LOGIN_KEYS)

__all__ = [
    "Devices",
    "SessionInfo",
    "ended_elsewhere",
    "ended_note",
    "forget_device",
    "login_valid_from",
    "logout_everywhere",
    "record_login",
    "revoke",
    "revoke_all",
    "revoked_after",
    "sessions_of",
    "track_devices",
    "tracking_options",
]


def track_devices(
    middleware: SessionMiddleware,
    *,
    client_ip: Literal["full", "prefix", "none"] = "full",
    user_agent_length: int = 160,
    revocation_store: SessionIndex | None = None,
    max_per_user: int | None = None,
    when_full: WhenFull = "end_oldest",
) -> Devices:
    """Keep a per-user index of *middleware*'s logged-in sessions; see the module doc.

    :param middleware: The :class:`~wsgisession.SessionMiddleware` to track.
    :param client_ip: ``"full"``, ``"prefix"`` or ``"none"`` (see :class:`Devices`).
    :param user_agent_length: Keep at most this many characters of ``User-Agent``.
    :param revocation_store: For a cookie store: where "not before" stamps live.
    :param max_per_user: The most sessions one user may have at once (``None``, the
        default: no cap). Checked at each login, atomically per user on every store.
    :param when_full: What a login beyond *max_per_user* does: ``"end_oldest"``
        (default) ends the user's least recently seen sessions, so that
        *max_per_user* remain with the new one (their owners learn why from
        :func:`ended_elsewhere`); ``"refuse"`` refuses the login with
        :class:`~wsgisession.errors.TooManySessions` (``409``).
    :raises ConfigurationError: a server store without
        :class:`~wsgisession.stores.SessionIndex`, a cookie store without
        *revocation_store*, or an in-process one (``LRUStore``) as *revocation_store*;
        *max_per_user* on a cookie store (its sessions cannot be counted).
    """
    devices = Devices(
        middleware.store,
        client_ip=client_ip,
        user_agent_length=user_agent_length,
        revocation_store=revocation_store,
        max_per_user=max_per_user,
        when_full=when_full,
    )
    if devices.max_per_user is not None:
        # The store the middleware calls (the one given, or a view of it that seals
        # what it keeps, or an observer's wrapper): returning it leaves it in place.
        devices.records = middleware.wrap_store(_unchanged)
    devices.hooks = middleware.hooks
    devices.hooks.tracker = devices
    return devices


def _unchanged(store: ServerSessionStore) -> ServerSessionStore:
    return store


def tracking_options(setting: object) -> dict[str, Any] | None:
    """The keyword arguments of :func:`track_devices` that an integration's
    ``track_devices`` setting asks for, or ``None`` for no tracking.

    For ``init_app(app, track_devices=...)`` (Flask), ``WSGISESSION`` (Django) and
    :func:`~wsgisession.from_config` (a TOML table, JSON in
    ``WSGISESSION_TRACK_DEVICES``): ``True``, or a mapping of :func:`track_devices`
    options (``{"client_ip": "prefix", "max_per_user": 3}``); ``False`` or
    ``None``: off. The values are checked by :func:`track_devices`.

    :raises ConfigurationError: anything else, or an option :func:`track_devices`
        does not take.
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        return {}
    if not isinstance(setting, Mapping):
        raise ConfigurationError(
            f"track_devices must be True, False or a dict of track_devices() options"
            f' such as {{"client_ip": "prefix"}}, not {setting!r}'
        )
    known = list(inspect.signature(track_devices).parameters)[1:]
    for name in setting:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"unknown track_devices option {name!r}: {hint}track_devices() takes"
                f" {', '.join(sorted(known))}"
            )
    return dict(setting)


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


def record_login(
    user_id: UserId, environ: WSGIEnvironment | None = None, *, valid_from: float | None = None
) -> None:
    """Record a login on this request's session as a new device, if tracking is on.

    :func:`~wsgisession.login` calls it. A framework's own login calls it right
    after logging the user in (and after its ``cycle_key()``): Flask-Login's
    ``user_logged_in`` signal, Django's ``user_logged_in`` signal. Does nothing when
    :func:`track_devices` was not called.

    :param user_id: The user now logged in (compared by its string form: ``42`` and
        ``"42"`` are one user).
    :param environ: The request's WSGI environ (default: the current request).
    :param valid_from: For a login that restores an earlier one without a password
        (a remember-me cookie): when that credential was issued (Unix time). A
        :func:`revoke_all` after it ends the session, even one landing during this
        request. Default: now.
    :raises TooManySessions: with ``max_per_user`` and ``when_full="refuse"``, when
        the user has that many sessions already: the session is then logged out
        (ended, as by :func:`~wsgisession.logout`) and nothing is recorded. The
        session is stored by this call in that mode, so the verdict comes now.
    """
    environ = current_environ() if environ is None else environ
    devices = _devices(environ)
    if devices is None:
        return
    user_token(user_id)  # type check before anything is written
    session = get_session(environ)
    previous = _device({DEVICE_KEY: session.get(DEVICE_KEY)})
    if previous is not None and devices.index is not None:
        key = session.record.key
        if key is not None:
            devices.index.index_forget(user_token(previous["u"]), previous["h"], key)
    now = time.time()
    handle = secrets.token_urlsafe(16)
    session[DEVICE_KEY] = {
        "u": user_id,
        "h": handle,
        "c": int(now),
        "t": now if valid_from is None else valid_from,
    }
    environ[FRESH_KEY] = handle
    if valid_from is not None:
        environ[RECHECK_KEY] = handle
    # The index entry is written when the session's id is stored, moved or renewed:
    # a framework that moved the id and saved before calling this (Django's
    # cycle_key()) would otherwise leave the new device out of the index.
    session.reissue()
    if devices.max_per_user is not None and devices.when_full == "refuse":
        # Stored now, not with the response, so that the cap's verdict (taken with
        # the index entry, in one atomic step) comes before the view answers.
        session.commit(int(time.time()))
        if environ.get(REFUSED_KEY) == handle:
            del environ[REFUSED_KEY]
            session.invalidate()  # logged out: the record the commit wrote is gone
            raise TooManySessions(devices.max_per_user)


def ended_elsewhere(environ: WSGIEnvironment | None = None) -> str | None:
    """Why this browser's login was ended from elsewhere, said once; else ``None``.

    ``"session cap"``: a login of the same user on another device ended it
    (``track_devices(..., max_per_user=N)``). The session ended holds only that
    note, so its next request is anonymous; the first call that finds the note
    removes it and moves the session to a new id, so a flash message set now
    lands in a fresh session::

        if ended_elsewhere():
            flash("You were logged out because you logged in on another device.")

    Call it where the pages show flash messages (a ``before_request`` hook, the
    layout's view); it loads the session, and a request without a session cookie
    costs nothing. Works without device tracking too (it then finds nothing).

    :param environ: The request's WSGI environ (default: the current request).
    """
    session = get_session(current_environ() if environ is None else environ)
    reason = ended_note(session)
    if reason is None:
        return None
    del session[ENDED_KEY]
    if login_of({key: session.get(key) for key in _LOGIN_KEYS}) is not None:
        return None  # logged in again meanwhile, on this browser: nothing to say
    session.regenerate()
    return reason


def ended_note(session: Session) -> str | None:
    """The reason in *session*'s "ended elsewhere" note, left in place; ``None`` if none.

    For integrations that act on it before the app reads it with
    :func:`ended_elsewhere` (Flask-Login's remember cookie must not log such a
    browser back in).
    """
    note = session.get(ENDED_KEY)
    reason = note.get("r") if isinstance(note, dict) else None
    return reason if isinstance(reason, str) else None


def revoked_after(
    user_id: UserId, issued: float | None, environ: WSGIEnvironment | None = None
) -> bool:
    """Whether the sessions of *user_id* were revoked after *issued* (Unix time).

    For a credential that logs in without a password, such as a remember-me cookie:
    refuse it when this is ``True`` (:func:`revoke_all` or :func:`logout_everywhere`
    came after it was issued). One stamp lookup; ``False`` when tracking is off.

    :param issued: When the credential was issued; ``None`` (unknown): revoked if
        any revocation of the user is on record.
    :param environ: The request's WSGI environ (default: the current request).
    """
    devices = _devices(current_environ() if environ is None else environ)
    return devices is not None and devices._revoked(user_id, issued)


def login_valid_from(session: Session, user_id: UserId) -> float | None:
    """Since when *session* is a valid login of *user_id*, or ``None`` if it is not one.

    The device's login time, moved forward by :func:`logout_everywhere` for the
    session that called it: a credential issued for this browser (a remember-me
    cookie) may carry it. ``None`` also when tracking is off or the session is not
    tracked.
    """
    if _devices(session.environ or {}) is None:
        return None
    device = _device({DEVICE_KEY: session.get(DEVICE_KEY)})
    valid_from = device.get("t") if device is not None else None
    if device is None or not same_user(device["u"], user_id):
        return None
    return float(valid_from) if isinstance(valid_from, float | int) else None


def forget_device(session: Session) -> None:
    """Drop *session*'s device: its index entry and its device record (at logout).

    :func:`~wsgisession.logout` calls it before ending the session; so do the
    Flask-Login ``user_logged_out`` signal and Django's ``flush()`` when tracking is
    on. A session that lives on after a framework's logout is no device of anyone.
    Does nothing when :func:`track_devices` was not called.

    :param session: The request's session.
    """
    environ = session.environ or {}
    devices = _devices(environ)
    if devices is None:
        return
    device = _device({DEVICE_KEY: session.get(DEVICE_KEY)})
    if device is None:
        return
    key = session.record.key
    if devices.index is not None and key:
        devices.index.index_forget(user_token(device["u"]), device["h"], key)
    del session[DEVICE_KEY]


def _user_and_handle(user_id: UserId | None) -> tuple[Devices, UserId, str | None]:
    environ = current_environ()
    devices = _require(environ)
    session = get_session(environ)
    device = _device({DEVICE_KEY: session.get(DEVICE_KEY)})
    if user_id is None:
        login = untracked_login(dict(session))  # who is logged in, device or not
        if login is None and device is None:
            raise LookupError("nobody is logged in on this request: pass user_id")
        user_id = login[0] if login is not None else device["u"]  # type: ignore[index]
    handle = device["h"] if device is not None and same_user(device["u"], user_id) else None
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

    Every session of the user that logged in before now ends: the listed ones at
    once, and those the index cannot list (cookie sessions, sessions that logged in
    while tracking was off) at their next request, by a "not before" stamp.

    :param user_id: Compared by its string form: ``42`` and ``"42"`` are one user,
        so it does not matter whether a framework recorded the login as a ``str``.
    :param except_current: Keep the session of this request (when it is that user's).
    :returns: How many listed sessions were ended; the sessions the stamp ends are
        not counted. With a cookie store, which lists none, ``-1``: the stamp is
        set, and the count unknown.
    """
    devices, user_id, current = _user_and_handle(user_id)
    keep = current if except_current else None
    count = devices.revoke_all(user_id, keep=keep)
    session = get_session()
    if current is not None and keep is None:
        session.invalidate()
    elif keep is not None:
        # The stamp is "now": the kept session becomes valid from then on (a cookie
        # session is checked against it; a remember-me cookie may carry it).
        stamp = devices.stamps.get_not_before(user_token(user_id))
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
