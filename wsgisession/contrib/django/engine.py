"""The session engine: ``SESSION_ENGINE = "wsgisession.contrib.django.engine"``.

Django's test client (``client.login()``, ``force_login()``, ``client.session``,
``logout()``), ``django.contrib.sessions``' ``clearsessions`` command and apps that
open a session by key (``SessionStore(session_key)``) use the engine named by
``SESSION_ENGINE``. This one opens the sessions of
:class:`~wsgisession.contrib.django.SessionMiddleware`: the same store, the same
keys, so what the test client saves is what the next request loads.
"""

from __future__ import annotations

from . import _config
from .session import DjangoSession, _open_session

__all__ = ["SessionStore"]


class SessionStore(DjangoSession):
    """The session that *session_key* names; a new one for ``None``.

    A key that does not verify, or whose session expired or ended, gives a new,
    empty session (its :attr:`session_key` is ``None`` until it is saved). On a
    server-side store the store decides whether the session still lives, however
    old the key: a key recorded at login keeps working while the session does.

    :param session_key: A :attr:`session_key`, or the session cookie's value.
    """

    def __init__(self, session_key: str | None = None) -> None:
        middleware = _config.core_middleware()
        super().__init__(_open_session(middleware, session_key), middleware)
