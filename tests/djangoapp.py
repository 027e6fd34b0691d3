"""Real Django WSGI apps for tests: settings are configured once per process.

Django's settings can only be configured once, so every test module that needs a
Django app builds it here: ``django_app([path("", view)])`` gives a WSGI callable
with its own URL patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import django
from django.conf import settings

#: Unused: each app routes through its own patterns (see PerAppUrls).
urlpatterns: list[Any] = []


def configure() -> None:
    """Configure Django for the tests (no database, no CSRF middleware of Django's)."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only-" + "k" * 40,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.PerAppUrls"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


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


def django_app(patterns: Sequence[Any]) -> Callable[..., Any]:
    """A Django WSGI application serving *patterns* (``django.urls.path`` objects)."""
    configure()
    from django.core.wsgi import get_wsgi_application

    handler = get_wsgi_application()
    conf = _UrlConf(patterns)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["tests.django.urlconf"] = conf
        return handler(environ, start_response)

    return app
