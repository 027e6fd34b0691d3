"""Django settings as wsgisession options, and one session middleware per configuration.

Django's ``SESSION_*`` settings give the defaults; ``settings.WSGISESSION`` (and the
options of :func:`~wsgisession.contrib.django.wrap`) win over them. The middleware in
``MIDDLEWARE``, the session engine (``SESSION_ENGINE``) and ``wrap()`` all get their
sessions from :func:`core_middleware`, so they share one store: a session that the
test client's ``client.login()`` saved is the one the next request loads, also with
``memory://``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed

from ...config import from_config, store_from_url
from ._migration import engine_reader

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ...middleware import SessionMiddleware
    from ...stores.base import ClientSessionStore, ServerSessionStore

__all__ = [
    "HONOURED_SETTINGS",
    "build",
    "config",
    "cookie_age",
    "core_middleware",
    "resolved",
    "save_every_request",
]

#: The Django settings read, besides ``WSGISESSION``, ``SECRET_KEY`` and
#: ``SECRET_KEY_FALLBACKS``.
HONOURED_SETTINGS = (
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "SESSION_SAVE_EVERY_REQUEST",
)
_MIGRATE_FROM_ENV = "WSGISESSION_MIGRATE_FROM"
_WATCHED = frozenset({*HONOURED_SETTINGS, "WSGISESSION", "SECRET_KEY", "SECRET_KEY_FALLBACKS"})


def config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of :func:`~wsgisession.from_config` for the current Django settings.

    :param options: Settings that win over ``WSGISESSION`` (``wrap()``'s keywords).
    """
    result: dict[str, Any] = {
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "max_age": None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else cookie_age({}),
        "path": settings.SESSION_COOKIE_PATH,
        "domain": settings.SESSION_COOKIE_DOMAIN,
        # False is Django's default: "Secure exactly on HTTPS" is safer and still
        # never sets Secure on plain HTTP, where the browser would drop the cookie.
        "secure": True if settings.SESSION_COOKIE_SECURE else None,
        "httponly": bool(settings.SESSION_COOKIE_HTTPONLY),
        "samesite": settings.SESSION_COOKIE_SAMESITE or None,
    }
    result.update(getattr(settings, "WSGISESSION", None) or {})
    result.update(options)
    if not result.get("secret_key") and getattr(settings, "SECRET_KEY", None):
        result["secret_key"] = settings.SECRET_KEY
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", None)
    if "fallback_secret_keys" not in result and fallbacks:
        result["fallback_secret_keys"] = list(fallbacks)
    return result


def cookie_age(options: Mapping[str, Any]) -> int:
    """The session lifetime in seconds that ``get_session_cookie_age()`` reports.

    ``max_age`` of ``WSGISESSION`` when it sets one, else ``SESSION_COOKIE_AGE``.
    """
    explicit = {**(getattr(settings, "WSGISESSION", None) or {}), **options}.get("max_age")
    return int(explicit) if explicit is not None else int(settings.SESSION_COOKIE_AGE)


def save_every_request() -> bool:
    """``SESSION_SAVE_EVERY_REQUEST``: renew the cookie on every request with a session."""
    return bool(getattr(settings, "SESSION_SAVE_EVERY_REQUEST", False))


def _unused_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("the Django middleware runs sessions itself; nothing to call")


_stores: dict[str, ClientSessionStore | ServerSessionStore] = {}


def resolved(options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`config` with its store built, one store object per store URL, and a
    Django session engine's path in ``migrate_from`` made its reader.

    A ``memory://`` store is then the same object for the Django middleware, the
    session engine and ``wrap()``, and survives a test's ``override_settings`` of a
    cookie attribute.

    :raises ConfigurationError: an engine in ``migrate_from`` that Django cannot open.
    """
    wanted = config(options)
    spec = wanted.get("store")
    if isinstance(spec, str) and "://" in spec:
        store = _stores.get(spec)
        if store is None:
            store = _stores[spec] = store_from_url(spec)
        wanted["store"] = store
    reader = engine_reader(wanted.get("migrate_from"))
    if reader is not None:
        wanted["migrate_from"] = reader
    return wanted


def build(app: WSGIApplication, options: Mapping[str, Any]) -> SessionMiddleware:
    """A session middleware around *app* from the current settings and *options*.

    :func:`resolved` settings, read by :func:`~wsgisession.from_config`: every
    setting it takes (``error_page``, ``limits``, ``track_devices`` …) is a
    ``WSGISESSION`` key. ``WSGISESSION_MIGRATE_FROM`` may name an engine too.

    :raises ConfigurationError: a bad setting.
    """
    wanted = resolved(options)
    environ: Mapping[str, str] = os.environ
    reader = engine_reader(environ.get(_MIGRATE_FROM_ENV))
    if reader is not None:
        # The variable wins over WSGISESSION, as every WSGISESSION_* variable does.
        wanted["migrate_from"] = reader
        environ = {name: value for name, value in environ.items() if name != _MIGRATE_FROM_ENV}
    return from_config(app, wanted, environ=environ)


def core_middleware() -> SessionMiddleware:
    """The session middleware of the current settings, made once (again when they change).

    :raises ConfigurationError: a bad setting.
    """
    global _current
    if _current is None:
        _current = build(_unused_app, {})
    return _current


_current: SessionMiddleware | None = None


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting in _WATCHED:
        _current = None


setting_changed.connect(_forget, dispatch_uid="wsgisession.contrib.django")
