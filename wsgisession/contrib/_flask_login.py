"""Flask-Login's login and logout move the session to a new id and keep the device index.

Connected by :func:`wsgisession.contrib.flask.init_app` when Flask-Login is
installed: ``login_user()`` is then fixation-safe on every store, whatever else the
app does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask

from ..access.devices import forget_device, record_login
from ..context import SESSION_KEY

if TYPE_CHECKING:
    from ..sessions import Session

__all__ = ["_connect_flask_login"]


def _connect_flask_login(app: Flask) -> None:
    try:
        from flask_login import signals
    except ImportError:
        return
    for signal in (signals.user_logged_in, signals.user_loaded_from_cookie):
        signal.connect(_logged_in, app, weak=False)
    signals.user_logged_out.connect(_logged_out, app, weak=False)


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


def _logged_out(sender: Flask, **extra: Any) -> None:
    session = _request_session()
    if session is not None:
        forget_device(session)
        session.regenerate()
