"""Build stores and a configured SessionMiddleware from URLs, dicts, TOML and env vars.

Deployment settings belong outside the code: a store URL in an environment
variable, the secret key in a secrets manager, cookie options in a TOML file.

- :func:`store_from_url` turns ``"redis://host:6379/0?prefix=app:"``,
  ``"postgresql://app@db/app?table=sessions"``,
  ``"sqlite:////var/lib/app/sessions.sqlite3"``, ``"memory://?max_entries=10000"`` or
  ``"cookie://"`` into a store;
- :func:`from_config` wraps an app in :class:`~wsgisession.SessionMiddleware` from a
  dict or a TOML file, with ``WSGISESSION_*`` environment variables overriding both.

Every mistake (an unknown scheme, setting or option, a store class that cannot be
imported, a missing secret key) is a :class:`~wsgisession.errors.ConfigurationError`
at start-up that names the setting and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .access.devices import track_devices, tracking_options
from .errors import ConfigurationError
from .limits import RequestLimits
from .middleware import SessionMiddleware
from .migration import MigrationReader
from .stores.base import ClientSessionStore, ServerSessionStore
from .stores.cookie import CookieStore
from .stores.memory import LRUStore
from .stores.postgres import PostgresStore, split_url
from .stores.redis import RedisStore
from .stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from ._refusals import ErrorPage

__all__ = ["from_config", "middleware_options", "store_from_url"]

Store = ClientSessionStore | ServerSessionStore

_ENV_PREFIX = "WSGISESSION_"


# -- reading one setting's value ------------------------------------------------
# Values come native from TOML files and dicts, and as strings from environment
# variables and URL queries: each reader accepts both, and names the setting when
# it refuses one.

_NONE = frozenset({"", "none", "null"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _fail(setting: str, value: Any, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{setting} must be {expected}, not {value!r}")


def _str(setting: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(setting, value, "a string")
    return value


def _secret(setting: str, value: Any) -> str | bytes:
    # A framework's own key may be bytes (Flask's app.secret_key often is).
    return value if isinstance(value, bytes) else _str(setting, value)


def _secret_list(setting: str, value: Any) -> list[str | bytes]:
    if isinstance(value, list | tuple) and all(isinstance(item, str | bytes) for item in value):
        return list(value)
    return list(_str_list(setting, value))


def _optional_str(setting: str, value: Any) -> str | None:
    if value is None or value is False or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _str(setting, value)


def _str_list(setting: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise _fail(setting, value, "a list of strings (in an env var: comma-separated)")


def _int(setting: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(setting, value, "a whole number")
    return value


def _float(setting: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise _fail(setting, value, "a number") from None


def _float_or_none(setting: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _float(setting, value)


def _seconds(setting: str, value: Any) -> int | None:
    if value is None or value is False or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _int(setting, value)


def _bool(setting: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _fail(setting, value, "true or false")


def _samesite(setting: str, value: Any) -> str | None:
    # "None" is a SameSite value (cross-site allowed); no attribute at all is false.
    if value is None or value is False:
        return None
    value = _str(setting, value)
    return None if value.lower() in _FALSE | {""} else value


def _secure(setting: str, value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE | {"auto"}):
        return None
    return _bool(setting, value)


def _optional_bool(setting: str, value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _bool(setting, value)


def _json(setting: str, value: str, expected: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting} must be {expected} (in an env var: JSON): {exc}"
        ) from exc


def _limits(setting: str, value: Any) -> RequestLimits | None:
    if value is None or isinstance(value, RequestLimits):
        return value
    if isinstance(value, str):
        if value.lower() in _NONE:
            return None
        value = _json(setting, value, "a table of RequestLimits fields")
    if not isinstance(value, Mapping):
        raise _fail(setting, value, "a table of RequestLimits fields, e.g. {max_form_parts = 5000}")
    fields = [field.name for field in dataclasses.fields(RequestLimits)]
    for name in value:
        if name not in fields:
            raise _unknown("limit", name, fields, f"{setting} takes")
    return RequestLimits(**{name: _int(f"{setting}.{name}", item) for name, item in value.items()})


def _error_page(setting: str, value: Any) -> ErrorPage | None:
    fix = (
        "give a callable taking (refusal, environ) and returning a WSGI application, or"
        " its dotted path, e.g. 'myapp.pages:session_outage'"
    )
    if isinstance(value, str) and value.lower() not in _NONE:
        value = _import(value, setting, fix)
    elif value is None or isinstance(value, str):
        return None
    if not callable(value):
        raise ConfigurationError(f"{setting} is {value!r}, not callable: {fix}")
    return cast("ErrorPage", value)


def _migrate_from(setting: str, value: Any) -> MigrationReader | None:
    fix = (
        "give a migration reader (see wsgisession.migration) or its dotted path, e.g."
        " 'myapp.legacy:reader'"
    )
    if isinstance(value, str):
        if value.lower() in _NONE:
            return None
        value = _import(value, setting, fix)
    if value is None:
        return None
    if not isinstance(value, MigrationReader):
        raise ConfigurationError(f"{setting} is {value!r}, not a migration reader: {fix}")
    return value


def _migrate_until(setting: str, value: Any) -> datetime | None:
    if isinstance(value, str):
        if value.lower() in _NONE:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise _fail(setting, value, _UNTIL) from None
    if value is not None and not isinstance(value, datetime):
        raise _fail(setting, value, _UNTIL)
    return value


_UNTIL = "a date and time with its UTC offset, e.g. 2027-01-31T00:00:00+00:00"


def _track_devices(setting: str, value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = _json(setting, value, "true, false or a table of track_devices() options")
    return tracking_options(value)


#: How to read each keyword argument of SessionMiddleware but ``app`` and ``store``
#: (``tests/test_settings.py`` checks this is all of them). Every surface reads the
#: settings through this table: from_config (dicts, TOML, env vars), the CLI,
#: Flask's init_app and Django's WSGISESSION.
_MIDDLEWARE_SETTINGS: dict[str, Callable[[str, Any], Any]] = {
    "secret_key": _secret,
    "fallback_secret_keys": _secret_list,
    "cookie_name": _optional_str,
    "max_age": _seconds,
    "absolute_max_age": _seconds,
    "refresh_interval": _seconds,
    "path": _str,
    "domain": _optional_str,
    "secure": _secure,
    "httponly": _bool,
    "samesite": _samesite,
    "partitioned": _bool,
    "no_store": _bool,
    "rotation_grace": _int,
    "limits": _limits,
    "error_page": _error_page,
    "check_store": _optional_bool,
    "migrate_from": _migrate_from,
    "migrate_until": _migrate_until,
    "header": _optional_str,
}
#: Besides those: the store (a URL, a class path with ``store_options``, or a store)
#: and device tracking (:func:`~wsgisession.track_devices`'s options, or ``True``).
_SETTINGS = (*_MIDDLEWARE_SETTINGS, "store", "store_options", "track_devices")


def _unknown(kind: str, name: str, known: Any, fix: str) -> ConfigurationError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigurationError(f"unknown {kind} {name!r}: {hint}{fix}: {', '.join(sorted(known))}")


# -- stores from URLs --------------------------------------------------------


def _url_options(
    url: str, query: str, converters: Mapping[str, Callable[[str, Any], Any]]
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in converters:
            raise _unknown("option", name, converters, f"in the store URL {url!r}, use one of")
        options[name] = converters[name](f"{name} in the store URL {url!r}", value)
    return options


def store_from_url(url: str) -> Store:
    """Build a store from a URL.

    - ``redis://host:6379/0?prefix=app:``: ``RedisStore`` (``rediss://`` for TLS,
      ``unix:///path.sock``; ``?encrypt=true``; other query options go to redis-py);
    - ``redis+sentinel://h1:26379,h2:26379/mymaster/0``: ``RedisStore`` on the
      master the sentinels name (``?prefix=``, ``?socket_timeout=``, ``?encrypt=``);
    - ``postgresql://user@host:5432/db``: ``PostgresStore`` (``postgres://`` too;
      ``?schema=&table=&timeout=&max_size=&gc_interval=&create_table=&encrypt=``;
      other query options go to libpq);
    - ``sqlite:///sessions.sqlite3``: ``SQLiteStore`` at a path relative to the
      working directory; ``sqlite:////var/lib/app/sessions.sqlite3`` (four slashes)
      at an absolute path, as SQLAlchemy reads them
      (``?busy_timeout=5&gc_interval=60&encrypt=true``);
    - ``memory://?max_entries=10000``: ``LRUStore``;
    - ``cookie://``: ``CookieStore`` (``?compress_min_size=512``, ``?encrypt=true``).

    :param url: The store URL.
    :raises ConfigurationError: an unknown scheme or option, or a malformed URL.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"store URL {url!r} has no scheme: use redis://, rediss://, redis+sentinel://,"
            " postgresql://, sqlite://, memory:// or cookie://"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        libpq_url, own = split_url(url)
        converters = {
            "schema": _str,
            "table": _str,
            "timeout": _float,
            "max_size": _int,
            "gc_interval": _float_or_none,
            "create_table": _bool,
            "encrypt": _bool,
        }
        return PostgresStore(libpq_url, **_url_options(url, urlencode(own), converters))
    if scheme in ("redis", "rediss", "unix", "redis+sentinel"):
        return _redis_store(url, parts.query)
    if scheme == "sqlite":
        converters = {"busy_timeout": _float, "gc_interval": _float, "encrypt": _bool}
        options = _url_options(url, parts.query, converters)
        return SQLiteStore(_sqlite_path(url, parts.netloc, parts.path), **options)
    if scheme in ("memory", "cookie"):
        if parts.netloc or parts.path.strip("/"):
            raise ConfigurationError(
                f"store URL {url!r}: {scheme}:// takes no host or path, only query options"
            )
        if scheme == "memory":
            return LRUStore(**_url_options(url, parts.query, {"max_entries": _int}))
        options = {"compress_min_size": _int, "encrypt": _bool}
        return CookieStore(**_url_options(url, parts.query, options))
    raise ConfigurationError(
        f"unknown store URL scheme {parts.scheme!r} in {url!r}: use redis://, rediss://,"
        " redis+sentinel://, postgresql://, sqlite://, memory:// or cookie://, or a dotted"
        " class path"
    )


def _redis_store(url: str, query: str) -> RedisStore:
    # The store's own options come out of the query; the rest goes to redis-py.
    own = {"prefix": _str, "encrypt": _bool}
    pairs = parse_qsl(query, keep_blank_values=True)
    options = _url_options(url, urlencode([p for p in pairs if p[0] in own]), own)
    if not options:
        return RedisStore(url)
    # Rebuilt by hand: urlunsplit would turn unix:///path into unix:/path.
    rest = urlencode([(name, value) for name, value in pairs if name not in own])
    return RedisStore(url.partition("?")[0] + (f"?{rest}" if rest else ""), **options)


def _sqlite_path(url: str, netloc: str, path: str) -> str:
    # As SQLAlchemy and dj-database-url read it: sqlite:///relative.db is relative to
    # the working directory, sqlite:////abs/path.db is absolute.
    fix = (
        "write sqlite:///relative/path.sqlite3 for a path in the working directory, or"
        " sqlite:////absolute/path.sqlite3 (four slashes) for an absolute one"
    )
    if netloc:
        raise ConfigurationError(f"store URL {url!r} has a host part ({netloc!r}): {fix}")
    relative = unquote(path)[1:]
    if not relative:
        return "wsgisession.sqlite3"
    if not relative.startswith("/"):
        folder = os.path.dirname(relative)
        if folder and not os.path.isdir(folder) and os.path.isdir("/" + folder):
            # Before 0.1 three slashes meant an absolute path: say so rather than
            # fail later on a directory that does not exist here.
            raise ConfigurationError(
                f"store URL {url!r} names {relative!r} in the working directory"
                f" ({os.getcwd()}), which has no folder {folder!r}, while /{folder} exists:"
                f" for the absolute path write sqlite:////{relative} (four slashes)"
            )
    return relative


# -- stores from class paths -------------------------------------------------


def _import(path: str, what: str, fix: str) -> Any:
    """The object a dotted path (``pkg.module.name`` or ``pkg.module:name``) names."""
    module_name, sep, name = path.replace(":", ".").rpartition(".")
    if not sep or not module_name or not name:
        raise ConfigurationError(f"{what} {path!r} could not be imported: {fix}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{what} {path!r} could not be imported ({exc}); check the module path and"
            f" that the package is installed: {fix}"
        ) from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigurationError(
            f"{what} {path!r}: module {module_name!r} has no {name!r}: {fix}"
        ) from None


def _store_from_class(path: str, options: Mapping[str, Any]) -> Store:
    cls = _import(
        path,
        "store",
        "a store is a URL or a dotted class path such as 'myapp.stores.MemcachedStore'",
    )
    if not (isinstance(cls, type) and issubclass(cls, ClientSessionStore | ServerSessionStore)):
        raise ConfigurationError(
            f"store {path!r} is not a ClientSessionStore or ServerSessionStore subclass"
        )
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name in options:
        if not takes_any and name not in params:
            raise _unknown(
                "store option", name, params, f"{path} accepts (set them in store_options)"
            )
    try:
        store: Store = cls(**options)
    except TypeError as exc:
        raise ConfigurationError(f"store {path!r} refused store_options: {exc}") from exc
    return store


def _build_store(store: Any, options: Any) -> Store:
    if options is not None and not isinstance(options, Mapping):
        raise _fail("store_options", options, "a table of option = value")
    if isinstance(store, ClientSessionStore | ServerSessionStore):
        if options:
            raise ConfigurationError("store_options cannot apply to a store instance")
        return store
    if isinstance(store, Mapping):  # {"my.Store": {option = value}}
        if len(store) != 1 or options:
            raise ConfigurationError(
                "store as a table must hold exactly one class path with its options,"
                ' e.g. [store."myapp.stores.MemcachedStore"], and no separate store_options'
            )
        ((path, options),) = store.items()
        if not isinstance(options, Mapping):
            raise _fail(f"the options of store {path!r}", options, "a table")
        return _store_from_class(_str("store", path), options)
    store = _str("store", store)
    if "://" in store:
        if options:
            raise ConfigurationError(
                f"store_options apply to a store class path, not to the URL {store!r};"
                " put the options in the URL's query string"
            )
        return store_from_url(store)
    return _store_from_class(store, options or {})


# -- from_config ---------------------------------------------------------------


def _read(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    path = os.fspath(config)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the config file {path!r}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the config file {path!r} is not valid TOML: {exc}") from exc
    table = data.get("wsgisession", data)
    if not isinstance(table, dict):
        raise ConfigurationError(f"[wsgisession] in {path!r} must be a table")
    return table


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in _SETTINGS:
        value = environ.get(_ENV_PREFIX + name.upper())
        if value is None:
            continue
        if name == "store_options":
            try:
                settings[name] = json.loads(value)
            except ValueError as exc:
                raise ConfigurationError(
                    f"{_ENV_PREFIX}STORE_OPTIONS must be a JSON object: {exc}"
                ) from exc
        else:
            settings[name] = value
    if "store" in settings and "store_options" not in settings:
        # Options written for the config file's store do not fit another one.
        settings["store_options"] = None
    return settings


def from_config(
    app: WSGIApplication,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> SessionMiddleware:
    """Wrap *app* in a :class:`~wsgisession.SessionMiddleware` configured from data.

    *config* is a mapping or the path of a TOML file (its ``[wsgisession]`` table if
    it has one, else the whole file) with any of these settings:

    - ``secret_key`` (required) and ``fallback_secret_keys`` (a list);
    - ``store``: a store URL (see :func:`store_from_url`), a dotted class path with
      ``store_options``, or a one-entry table ``{"myapp.Store": {option = value}}``;
    - ``cookie_name``, ``max_age``, ``absolute_max_age``, ``refresh_interval``,
      ``path``, ``domain``, ``secure``, ``httponly``, ``samesite``, ``partitioned``,
      ``no_store``, ``rotation_grace``, as for the middleware. ``"none"`` stands for
      ``None`` (TOML has no null), and ``secure = "auto"`` for "Secure exactly on
      HTTPS"; ``cookie_name = false`` (or ``"none"``) sets no cookie;
    - ``header``: the request and response header that carries sessions for API
      clients (``"X-Auth-Token"``);
    - ``limits``: a table of :class:`~wsgisession.RequestLimits` fields
      (``{max_form_parts = 5000}``) or a ``RequestLimits``;
    - ``error_page``: the callable that answers a store outage, or its dotted path
      (``"myapp.pages:session_outage"``);
    - ``track_devices``: ``true``, or a table of :func:`~wsgisession.track_devices`
      options, to turn device tracking on;
    - ``check_store``: check at start-up that a server store works (default: only
      SQLite, which is local and cheap; ``true`` also for Redis or PostgreSQL), so a
      bad one fails now with the message a request would log, not with ``503`` later.

    Environment variables ``WSGISESSION_<SETTING>`` override the file
    (``WSGISESSION_SECRET_KEY``, ``WSGISESSION_STORE``, ``WSGISESSION_MAX_AGE`` …);
    ``WSGISESSION_FALLBACK_SECRET_KEYS`` is comma-separated, and
    ``WSGISESSION_STORE_OPTIONS``, ``WSGISESSION_LIMITS`` and
    ``WSGISESSION_TRACK_DEVICES`` are JSON. Every keyword argument of the middleware
    is a setting, with the same name, here, in Flask's ``init_app`` and Django's
    ``WSGISESSION``. ::

        app = from_config(app, "/etc/myapp/sessions.toml")

    :param app: The WSGI application to wrap.
    :param config: A mapping, a TOML file path, or ``None`` for env vars only.
    :param environ: Where to read ``WSGISESSION_*`` variables; default ``os.environ``.
    :raises ConfigurationError: a missing secret key, an unknown setting, an
        unreadable file, or a bad store or option.
    """
    options = middleware_options(config, environ=environ)
    if not options.get("secret_key"):
        raise ConfigurationError(
            "secret_key is not set: add secret_key to the config or set"
            f" {_ENV_PREFIX}SECRET_KEY (python -c 'import secrets;"
            " print(secrets.token_urlsafe(32))' makes one)"
        )
    devices = options.pop("track_devices", None)
    middleware = SessionMiddleware(app, **options)
    if devices is not None:
        track_devices(middleware, **devices)
    return middleware


def middleware_options(
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of :class:`~wsgisession.SessionMiddleware` that *config*
    and the ``WSGISESSION_*`` variables set, checked and converted, the store built.

    What :func:`from_config` passes to the middleware, for integrations that fill in
    what is missing (a framework's own secret key) themselves; settings that are
    not given are left out, and a missing ``secret_key`` is not an error here.
    ``track_devices``, when set, is in the result too, as the keyword arguments of
    :func:`~wsgisession.track_devices` (or ``None`` for off): the caller applies it.

    :raises ConfigurationError: an unknown setting, an unreadable file, or a bad
        store or option.
    """
    settings = _read(config)
    for name in settings:
        if name not in _SETTINGS:
            raise _unknown("setting", name, _SETTINGS, "wsgisession settings are")
    settings.update(_from_env(os.environ if environ is None else environ))
    options = {
        name: read(name, settings[name])
        for name, read in _MIDDLEWARE_SETTINGS.items()
        if name in settings
    }
    if "track_devices" in settings:
        options["track_devices"] = _track_devices("track_devices", settings["track_devices"])
    store = settings.get("store")
    if store is not None:
        options["store"] = _build_store(store, settings.get("store_options"))
    elif settings.get("store_options"):
        raise ConfigurationError("store_options is set but store is not; name the store class")
    return options
