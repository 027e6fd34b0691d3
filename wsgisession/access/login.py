"""Login state in the session: :func:`login`, :func:`logout`, :func:`current_user`.

Logging in is where session fixation is won or lost: if the session id (or, with the
cookie store, the cookie) that existed before the login is still the logged-in one
afterwards, anyone who planted or saw it is now logged in too. So :func:`login`
moves the session to a new id, and also replaces the CSRF secret, so a token
obtained before the login is worthless.

:func:`logout` ends the session outright (:meth:`~wsgisession.Session.invalidate`):
the server record is deleted at once and the cookie is deleted with the attributes
it was set with. With the cookie store a copied cookie stays valid until it expires;
use a server-side store when logout must be final.

Where the login is kept in the session is private; read it with
:func:`current_user`, which treats anything it does not recognise as "not logged
in" rather than failing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeGuard
from uuid import UUID

from ..context import get_session
from ..errors import ConfigurationError
from ..events import AUTH_KEY as AUTH_KEY
from ..events import DEVICE_KEY, HOOKS_KEY, EventName, SessionHooks
from .csrf import rotate_csrf_secret
from .devices import forget_device, record_login

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["AuthInfo", "current_user", "login", "logout"]

#: How long a "remember me" session lasts when the middleware's max_age is None.
REMEMBER_MAX_AGE = 30 * 86400

UserId = str | int | UUID


def _is_user_id(value: object) -> TypeGuard[UserId]:
    return isinstance(value, (str, int, UUID)) and not isinstance(value, bool)


def role_set(
    roles: str | Iterable[str], what: str = "roles", *, configuring: bool = False
) -> frozenset[str]:
    """*roles* as a frozenset of names; a single ``str`` is one role.

    :param configuring: Whether this checks a guard's configuration (at start-up)
        rather than a call made while serving.
    :raises ConfigurationError: when *configuring*, a role that is not a non-empty
        ``str``.
    :raises TypeError: otherwise, the same.
    """
    if isinstance(roles, str):
        roles = [roles]
    try:
        result = frozenset(roles)
    except TypeError:
        result = frozenset({roles})  # type: ignore[arg-type]  # reported below
    for role in result:
        if not isinstance(role, str) or not role:
            message = f"each of {what} must be a non-empty str, not {role!r}"
            raise ConfigurationError(message) if configuring else TypeError(message)
    return result


@dataclass(frozen=True)
class AuthInfo:
    """Who is logged in, as :func:`login` recorded it.

    :param user_id: The id given to :func:`login`.
    :param roles: The roles given to :func:`login`.
    :param extra: The keyword arguments given to :func:`login` (read-only).
    :param logged_in_at: When :func:`login` was called (UTC).
    """

    user_id: UserId
    roles: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    logged_in_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        """Whether the user has *role*."""
        return role in self.roles

    def has_roles(self, roles: Iterable[str], *, require_all: bool = False) -> bool:
        """Whether the user has any of *roles* (all of them with *require_all*).

        An empty *roles* is always satisfied.
        """
        wanted = role_set(roles)
        if not wanted:
            return True
        return wanted <= self.roles if require_all else bool(wanted & self.roles)


def _emit(environ: WSGIEnvironment | None, name: EventName, user_id: UserId | None) -> None:
    hooks = environ.get(HOOKS_KEY) if environ is not None else None
    if isinstance(hooks, SessionHooks) and hooks.callbacks:
        session = get_session(environ)
        device = session.get(DEVICE_KEY) if session.loaded else None
        handle = device.get("h") if isinstance(device, dict) else None
        hooks.emit(name, user_id=user_id, handle=handle)


def login(
    user_id: UserId,
    *,
    roles: str | Iterable[str] = (),
    remember: bool | None = None,
    **extra: Any,
) -> AuthInfo:
    """Log *user_id* in on the current session, safely.

    - the session moves to a new id (a fresh cookie with the cookie store), so an id
      planted or seen before the login does not become a logged-in one; when
      another user was logged in, their session data is dropped first;
    - the user id, roles, *extra* and the time are stored in the session;
    - the CSRF secret is replaced: tokens issued before the login stop working;
    - with device tracking on (:func:`~wsgisession.track_devices`), the session is
      recorded as a new device of the user;
    - *remember* sets the cookie's lifetime: ``True`` a persistent cookie (the
      middleware's ``max_age``, or 30 days when that is ``None``), ``False`` a
      browser-session cookie ("remember me" unticked). ``None`` leaves it alone.

    Call it before ``start_response`` (in Flask or Django: anywhere in the view).

    ::

        if check_password(user, form["password"]):
            login(user.id, roles=user.roles, name=user.name)

    :param user_id: The user's id: ``str``, ``int`` or ``UUID``.
    :param roles: Role names for :class:`~wsgisession.Auth` and
        :func:`~wsgisession.login_required`; a single ``str`` is one role.
    :param remember: ``True``: a persistent cookie; ``False``: one that ends with
        the browser; ``None`` (default): unchanged.
    :param extra: Anything else to remember for the login (a display name, say);
        must be serializable in the session.
    :returns: What :func:`current_user` will return.
    :raises TypeError: a *user_id* or role of the wrong type.
    :raises RuntimeError: no :class:`~wsgisession.SessionMiddleware` around the app.
    """
    if not _is_user_id(user_id):
        raise TypeError(f"user_id must be a str, int or UUID, not {type(user_id).__name__}")
    role_names = role_set(roles)
    session = get_session()
    previous = current_user()
    if previous is not None and previous.user_id != user_id:
        session.clear()  # another user's data must not carry over; clear() also renews the id
    else:
        session.regenerate()
    now = datetime.fromtimestamp(time.time(), UTC)
    session[AUTH_KEY] = {
        "id": user_id,
        "roles": sorted(role_names),
        "at": now,
        "extra": dict(extra),
    }
    rotate_csrf_secret(session)
    if remember is False:
        session.max_age = None
    elif remember:
        session.reset_max_age()
        if session.max_age is None:
            session.max_age = REMEMBER_MAX_AGE
    record_login(user_id, session.environ)
    _emit(session.environ, EventName.LOGGED_IN, user_id)
    return AuthInfo(user_id, role_names, MappingProxyType(dict(extra)), now)


def logout() -> None:
    """End the current session: the user is logged out and every key is gone.

    The stored session is deleted now (requests in flight cannot bring it back) and
    the cookie is deleted. Data set afterwards ("you have been logged out") starts
    a new session.

    :raises RuntimeError: no :class:`~wsgisession.SessionMiddleware` around the app.
    """
    session = get_session()
    user = current_user(session.environ)
    _emit(session.environ, EventName.LOGGED_OUT, user.user_id if user is not None else None)
    forget_device(session)
    session.invalidate()


def current_user(environ: WSGIEnvironment | None = None) -> AuthInfo | None:
    """Who is logged in on this request's session, or ``None``.

    A login record of the wrong shape (written by an older version, or by hand)
    counts as "not logged in", never as an error.

    :param environ: The request's WSGI environ (default: the current request).
    :raises RuntimeError: no :class:`~wsgisession.SessionMiddleware` around the app.
    """
    record = get_session(environ).get(AUTH_KEY)
    if not isinstance(record, dict):
        return None
    user_id = record.get("id")
    roles = record.get("roles", [])
    extra = record.get("extra", {})
    at = record.get("at")
    if (
        not _is_user_id(user_id)
        or not isinstance(roles, list)
        or not all(isinstance(role, str) for role in roles)
        or not isinstance(extra, dict)
        or not (at is None or isinstance(at, datetime))
    ):
        return None
    return AuthInfo(user_id, frozenset(roles), MappingProxyType(dict(extra)), at)
