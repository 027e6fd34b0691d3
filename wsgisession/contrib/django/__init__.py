"""Django integration: ``request.session`` backed by wsgisession, as a drop-in.

Replace Django's session middleware and engine with ours; ``settings.WSGISESSION``
holds the settings of :func:`~wsgisession.from_config` (the store above all), and
Django's ``SESSION_*`` settings are honoured (``WSGISESSION`` wins)::

    MIDDLEWARE = [
        "wsgisession.contrib.django.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        ...
    ]
    SESSION_ENGINE = "wsgisession.contrib.django.engine"
    WSGISESSION = {"store": "redis://localhost:6379/0"}

``request.session`` is then a :class:`DjangoSession`: Django's session API
(``set_expiry``, ``cycle_key``, ``session_key``, the ``a*`` async methods …) over a
:class:`~wsgisession.Session`. The engine makes Django's test client
(``client.login()``, ``client.session``) and ``clearsessions`` use the same sessions.
``SECRET_KEY`` is the default secret key. Werkzeug errors raised in a view
(``BadParam``, ``NotLoggedIn`` …) become Django responses rather than 500s.

On its own the middleware runs the session for Django's views. WSGI middlewares
that need the session (:class:`~wsgisession.CsrfMiddleware`, guards), form
parameters read with :func:`~wsgisession.param`, and changes made while a streamed
response is produced need the session at the WSGI layer: use :func:`wrap` as well,
which the middleware then simply adopts.

Switching from one of Django's engines logs nobody out with
``WSGISESSION["migrate_from"]`` set to that engine's path: its sessions are carried
over by a :class:`DjangoEngineReader` (see :mod:`wsgisession.migration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import core_middleware
from ._migration import DjangoEngineReader
from .middleware import SessionMiddleware, to_django_response, wrap
from .session import DjangoSession

if TYPE_CHECKING:
    from ...middleware import SessionMiddleware as CoreMiddleware

__all__ = [
    "DjangoEngineReader",
    "DjangoSession",
    "SessionMiddleware",
    "session_middleware",
    "to_django_response",
    "wrap",
]


def session_middleware() -> CoreMiddleware:
    """The wsgisession middleware behind the current settings (``WSGISESSION``).

    For tools outside a request: ``wsgisession migration-status`` asks it for its
    migration reader. Django must be set up (``django.setup()``, as
    ``get_wsgi_application()`` does).

    :raises ConfigurationError: a bad setting.
    """
    return core_middleware()
