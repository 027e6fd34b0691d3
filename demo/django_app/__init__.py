"""The demo site as a Django project (``make demo-django``).

Django's own idioms: views and URL patterns, the shared templates through Django's
Jinja2 backend, ``request.session``, ``django.contrib.auth`` (a real ``User`` model in
SQLite, created by ``migrate``), ``django.contrib.messages``, Django's CSRF check
and the admin at ``/admin/``. wsgisession is the session engine
(``wsgisession.contrib.django``) and :func:`~wsgisession.contrib.django.wrap`
around the WSGI handler. :func:`create_app` migrates the database (in
``WSGISESSION_DEMO_VAR``, default the system's temporary directory) and creates
alice (a superuser) and bob.

``WSGISESSION_DEMO_SESSIONS=django`` serves the site on Django's own sessions, as
before the switch to wsgisession; ``WSGISESSION_DEMO_MIGRATE_FROM=django`` on
wsgisession, carrying those sessions over (see :mod:`demo.django_app.settings`).
"""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

from demo.common import (
    ACCOUNTS,
    COOKIE_NAME,
    MIGRATE_VARIABLE,
    SESSIONS_VARIABLE,
    TOKEN_HEADER,
    log,
    outage_page,
    secret_key,
    session_store,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["create_app"]


def _migrate_and_seed() -> None:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command

    # Several gunicorn workers start at once: one migrates, the others wait for it.
    with open(f"{settings.DATABASES['default']['NAME']}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        call_command("migrate", verbosity=0, interactive=False)
        for name, (password, admin) in ACCOUNTS.items():
            if not User.objects.filter(username=name).exists():
                User.objects.create_user(
                    name,
                    password=password,
                    is_staff=admin,
                    is_superuser=admin,
                    first_name=name.title(),
                )


def create_app() -> WSGIApplication:
    """Set Django up with :mod:`demo.django_app.settings`, migrate, seed, wrap."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.django_app.settings")
    import django
    from django.core.wsgi import get_wsgi_application

    from wsgisession import track_devices
    from wsgisession.contrib.django import wrap
    from wsgisession.stores import ServerSessionStore

    django.setup()
    _migrate_and_seed()
    from django.conf import settings

    if settings.SWITCH_STAGE == "own":
        from wsgisession import RequestScope

        log.info("%s=django: Django's own sessions, as before the switch", SESSIONS_VARIABLE)
        # Bound for body() in the cart's API; no session of ours.
        return RequestScope(get_wsgi_application())
    if settings.SWITCH_STAGE == "migrating":
        log.info("%s=django: carrying the sessions of Django's db engine over", MIGRATE_VARIABLE)
    middleware = wrap(
        get_wsgi_application(),
        cookie_name=COOKIE_NAME,
        secret_key=secret_key(),
        store=session_store(),
        error_page=outage_page("Django", "/admin/"),
        header=TOKEN_HEADER,  # API clients' tokens; browsers keep the cookie
    )
    if isinstance(middleware.store, ServerSessionStore):
        track_devices(middleware)
    else:
        log.info("device tracking is off: the cookie store keeps no record to list or end")
    return middleware
