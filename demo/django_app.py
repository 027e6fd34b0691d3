"""The demo site on Django: the views of :mod:`demo.wsgi`, routed by Django.

A one-file Django project: :data:`SETTINGS`, :data:`urlpatterns`, and
:func:`create_app`, which configures Django (unless something already did) and
wraps its WSGI handler in the guards, the CSRF check and the session with
:func:`wsgisession.contrib.django.wrap`. ``request.session`` in a Django view is
the same session. Run it with ``make demo-django``
(gunicorn ``'demo.django_app:create_app()'``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from demo.wsgi import ROUTES, protect, secret_key, session_options
from wsgisession.contrib.django import to_django_response, wrap

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The session cookie's name in every variant of the demo.
COOKIE_NAME = "session"

#: The Django middleware: the session (adopting wrap()'s) and nothing else.
MIDDLEWARE = ["wsgisession.contrib.django.SessionMiddleware"]


def settings() -> dict[str, Any]:
    """Django's settings for the demo (no database: the users are in demo.wsgi)."""
    return {
        "DEBUG": False,
        "SECRET_KEY": secret_key(),
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "ROOT_URLCONF": __name__,
        "MIDDLEWARE": MIDDLEWARE,
        "SESSION_ENGINE": "wsgisession.contrib.django.engine",
        "SESSION_COOKIE_NAME": COOKIE_NAME,
        "INSTALLED_APPS": [],
        "DATABASES": {},
        "USE_TZ": True,
    }


def _django_view(view: Callable[[Request], Response], methods: list[str]) -> Callable[..., Any]:
    from django.http import HttpResponseNotAllowed

    def handle(request: Any) -> Any:
        if request.method not in methods:
            return HttpResponseNotAllowed(methods)
        return to_django_response(view(Request(request.environ)))

    handle.__name__ = view.__name__
    return handle


def _urlpatterns() -> list[Any]:
    from django.urls import path

    methods: dict[str, list[str]] = {}
    views: dict[str, Callable[[Request], Response]] = {}
    for (method, route), view in ROUTES.items():
        methods.setdefault(route, []).append(method)
        views[route] = view
    return [path(route.lstrip("/"), _django_view(views[route], methods[route])) for route in views]


#: The shared routes as Django URL patterns.
urlpatterns = _urlpatterns()


def wrap_site(handler: WSGIApplication) -> WSGIApplication:
    """The guards, the CSRF check and the session around Django's WSGI *handler*.

    The session cookie is named as in the other variants ("session", not Django's
    "sessionid").
    """
    return wrap(protect(handler), cookie_name=COOKIE_NAME, **session_options())


def create_app() -> WSGIApplication:
    """Configure Django for the demo (if not configured yet) and build the site."""
    import django
    from django.conf import settings as django_settings
    from django.core.wsgi import get_wsgi_application

    if not django_settings.configured:
        django_settings.configure(**settings())
        django.setup()
    return wrap_site(get_wsgi_application())
