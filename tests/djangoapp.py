"""Real Django WSGI apps for tests: settings are configured once per process.

Django's settings can only be configured once, so every test module that needs a
Django app builds it here: ``django_app([path("", view)])`` gives a WSGI callable
with its own URL patterns, and ``middleware=`` and setting overrides of its own
(read when the app is built). ``django.contrib.auth`` is installed over an in-memory
SQLite database that :func:`migrate` creates on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import django
from django.conf import settings

#: Unused: each app routes through its own patterns (see PerAppUrls).
urlpatterns: list[Any] = []


def configure() -> None:
    """Configure Django for the tests: auth, admin and messages, our session engine."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only-" + "k" * 40,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.PerAppUrls"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.messages",
        ],
        SESSION_ENGINE="wsgisession.contrib.django.engine",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        # Fast hashing: these tests check sessions, not password storage.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        LOGGING_CONFIG=None,
        STATIC_URL="/static/",
    )
    django.setup()


@functools.cache
def migrate() -> None:
    """Create the auth tables in the in-memory database (once per process)."""
    configure()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


class _UrlConf:
    def __init__(self, patterns: Sequence[Any]) -> None:
        self.urlpatterns = list(patterns)


class PerAppUrls:
    """Django middleware: route with the patterns of the app that got the request."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        request.urlconf = request.environ["tests.django.urlconf"]
        return self.get_response(request)


def django_app(
    patterns: Sequence[Any], middleware: Sequence[str] = (), **overrides: Any
) -> Callable[..., Any]:
    """A Django WSGI application serving *patterns* (``django.urls.path`` objects).

    :param middleware: Django middleware paths, after the per-app URL routing.
    :param overrides: Settings in force while the app is built (``WSGISESSION``).
    """
    configure()
    from django.core.wsgi import get_wsgi_application
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=[f"{__name__}.PerAppUrls", *middleware], **overrides):
        handler = get_wsgi_application()
    conf = _UrlConf(patterns)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["tests.django.urlconf"] = conf
        return handler(environ, start_response)

    return app
