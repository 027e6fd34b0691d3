"""Flask-Login's login and logout move the session to a new id and keep the device index.

Connected by :func:`wsgisession.contrib.flask.init_app` when Flask-Login is
installed: ``login_user()`` is then fixation-safe on every store, whatever else the
app does.

With device tracking on, a revocation (``revoke_all()``, ``logout_everywhere()``)
also defeats the remember-me cookies issued before it. Flask-Login's cookie is
``user_id|digest``: it carries no time, and is the same for every browser of a
user. So next to it goes ``<REMEMBER_COOKIE_NAME>_issued``, signed, with the same
attributes: the time from which the login it remembers is valid. A remember cookie
that would log a user in is refused (Flask-Login then deletes it) when a revocation
of that user came after that time, or when there is no such time and the user was
ever revoked.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.exceptions import Unauthorized

from ..access.devices import (
    ended_note,
    forget_device,
    login_valid_from,
    record_login,
    revoked_after,
)
from ..context import SESSION_KEY
from ..cookies import get_signed_cookie, set_signed_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask.wrappers import Response

    from ..sessions import Session

__all__ = ["_connect_flask_login", "_sync_remember_issued"]

log = logging.getLogger("wsgisession")

#: The environ key of a remember cookie vetted before Flask-Login read it: when it
#: was issued (``None``: unknown, no revocation of its user on record).
_ISSUED_KEY = "wsgisession.flask_login.remember_issued"


def _connect_flask_login(app: Flask, *, tracking: bool = False) -> None:
    try:
        from flask_login import signals
    except ImportError:
        return
    signals.user_logged_in.connect(_logged_in, app, weak=False)
    signals.user_loaded_from_cookie.connect(_loaded_from_cookie, app, weak=False)
    signals.user_logged_out.connect(_logged_out, app, weak=False)
    if tracking:
        # First of all: before any hook of the app's that could read current_user.
        app.before_request_funcs.setdefault(None, []).insert(0, _vet_remember_cookie)


def _request_session() -> Session | None:
    from flask import request

    session: Session | None = request.environ.get(SESSION_KEY)
    return session


def _logged_in(sender: Flask, **extra: Any) -> None:
    # A login changes privileges: the id the session had before (maybe planted by
    # an attacker) must not carry them.
    session = _request_session()
    if session is None:
        return
    session.regenerate()
    user = extra.get("user")
    user_id = user.get_id() if user is not None else None
    if user_id is not None:
        record_login(user_id, session.environ)  # does nothing unless tracking is on


def _loaded_from_cookie(sender: Flask, **extra: Any) -> None:
    from flask import current_app, request
    from flask import session as flask_session

    session = _request_session()
    if session is None:
        return
    user = extra.get("user")
    user_id = user.get_id() if user is not None else None
    environ = request.environ
    if _ISSUED_KEY in environ:
        issued = environ[_ISSUED_KEY]
    else:
        # Flask-Login read the cookie before _vet_remember_cookie ran (a hook that
        # used current_user earlier): the user is already set for this request, so
        # a revoked cookie can only be refused by ending the request.
        name = _cookie_name(current_app)
        issued = _issued(environ, name, request.cookies.get(name, ""))
        if user_id is not None and revoked_after(user_id, issued, environ):
            flask_session.pop("_user_id", None)
            flask_session.pop("_fresh", None)
            flask_session["_remember"] = "clear"
            raise Unauthorized(
                "This remember-me cookie was issued before the user's sessions were"
                " revoked (log out everywhere), so it no longer logs in: log in again."
            )
    session.regenerate()
    if user_id is not None:
        # Valid from when the remembered login was: a revocation after that ends it.
        record_login(user_id, environ, valid_from=0.0 if issued is None else issued)


def _logged_out(sender: Flask, **extra: Any) -> None:
    session = _request_session()
    if session is not None:
        forget_device(session)
        session.regenerate()


def _cookie_name(app: Flask) -> str:
    from flask_login.config import COOKIE_NAME

    return str(app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME))


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()[:32]


def _issued(environ: WSGIEnvironment, name: str, cookie: str) -> float | None:
    """When the remember cookie *cookie* was issued, from its companion; ``None``: unknown."""
    value = get_signed_cookie(environ, f"{name}_issued")
    if type(value) is not dict or value.get("r") != _digest(cookie):
        return None
    issued = value.get("t")
    return float(issued) if isinstance(issued, int | float) and type(issued) is not bool else None


def _vet_remember_cookie() -> None:
    """Before Flask-Login restores a login from its remember cookie: refuse a revoked one."""
    from flask import current_app, request, session
    from flask_login.utils import decode_cookie

    name = _cookie_name(current_app)
    cookie = request.cookies.get(name)
    if not cookie or "_user_id" in session or session.get("_remember") == "clear":
        return
    user_id = decode_cookie(cookie)
    if user_id is None:
        return  # not a valid cookie: Flask-Login ignores it too
    wsgi_session = _request_session()
    if wsgi_session is not None and ended_note(wsgi_session) is not None:
        # This browser's login was ended by the cap on sessions: its remember cookie
        # logging it back in would end another session in turn.
        session["_remember"] = "clear"
        log.info("refused the remember-me cookie of a session the cap on sessions ended")
        return
    environ = request.environ
    issued = _issued(environ, name, cookie)
    if revoked_after(user_id, issued, environ):
        # Flask-Login's own way to ignore the cookie, and delete it with the response.
        session["_remember"] = "clear"
        log.info(
            "refused a remember-me cookie issued before its user's sessions were revoked;"
            " the user must log in again"
        )
        return
    environ[_ISSUED_KEY] = issued


def _sync_remember_issued(app: Flask, session: Session, response: Response) -> None:
    """Keep the ``_issued`` companion next to Flask-Login's remember cookie.

    Set with the remember cookie, to the session's valid-from time (never "now": a
    request of a session revoked meanwhile cannot issue a fresh one), moved forward
    when that time is (``logout_everywhere()`` in this browser), deleted with it.
    """
    from flask import request
    from flask_login.utils import decode_cookie

    config = app.config
    name = _cookie_name(app)
    companion = f"{name}_issued"
    path = config.get("REMEMBER_COOKIE_PATH", "/")
    domain = config.get("REMEMBER_COOKIE_DOMAIN")
    sent = _set_cookie_value(response, name)
    if sent == "":
        response.delete_cookie(companion, path=path, domain=domain)
        return
    cookie = sent or request.cookies.get(name)
    if not cookie or not session.accessed:
        return
    user_id = decode_cookie(cookie)
    valid_from = None if user_id is None else login_valid_from(session, user_id)
    if valid_from is None:
        return
    environ = session.environ or {}
    if sent is None and (_issued(environ, name, cookie) or 0.0) >= valid_from:
        return
    duration = session.get("_remember_seconds") or config.get("REMEMBER_COOKIE_DURATION")
    if isinstance(duration, timedelta):
        duration = int(duration.total_seconds())
    set_signed_cookie(
        response.headers,
        companion,
        {"r": _digest(cookie), "t": valid_from},
        max_age=duration if isinstance(duration, int) else 365 * 86400,
        path=path,
        domain=domain,
        secure=True if config.get("REMEMBER_COOKIE_SECURE") else None,
        httponly=bool(config.get("REMEMBER_COOKIE_HTTPONLY", True)),
        samesite=config.get("REMEMBER_COOKIE_SAMESITE") or "Lax",
    )


def _set_cookie_value(response: Response, name: str) -> str | None:
    """The value *response* sets cookie *name* to (``""``: deletes it), ``None``: untouched."""
    for header in response.headers.getlist("Set-Cookie"):
        cookie, _, rest = header.partition("=")
        if cookie.strip() == name:
            return rest.partition(";")[0].strip().strip('"')
    return None
