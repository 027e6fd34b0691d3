"""Carrying the sessions of a Django session engine over, so switching logs nobody out.

``WSGISESSION = {"migrate_from": "django.contrib.sessions.backends.db"}`` (the
``SESSION_ENGINE`` being replaced: ``db``, ``cache``, ``cached_db``, ``file``,
``signed_cookies``, or any engine's module path) makes a :class:`DjangoEngineReader`
of that engine. A request whose session cookie names a live session of the old
engine then gets that session's data, its login included, in a new session of ours,
once: :mod:`wsgisession.migration` does the carrying. ``django.contrib.auth`` checks
the carried login as it checked the old one, so a password changed before the switch
still ends it.

When *not* to use it: once no old session is left (``wsgisession migration-status``)
or, for ``signed_cookies``, after ``migrate_until``. Remove ``migrate_from`` then, and
Django's engine is no longer read.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends import cache, cached_db, db, file, signed_cookies
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, SessionBase
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signing import JSONSerializer, b62_decode
from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string

from ...errors import ConfigurationError, StoreUnavailable
from ...migration import OldCookie

if TYPE_CHECKING:
    from .session import DjangoSession

__all__ = ["DjangoEngineReader", "adopt_lifetime", "engine_reader"]

log = logging.getLogger("wsgisession")

#: The engines whose records are deleted by a call that says whether it removed one.
_SERVER_ENGINES = (db.SessionStore, cache.SessionStore, file.SessionStore)
_KEY_CHARS = frozenset(VALID_KEY_CHARS)
#: Django's own data about the session, not the app's: the lifetime set_expiry() set
#: (``0``: until the browser closes; seconds of inactivity; a date, as an ISO string).
_EXPIRY = "_session_expiry"


class DjangoEngineReader:
    """The migration reader of a Django session engine (see the module's docs).

    - It opens the old session through the engine, ``SessionStore(session_key=value)``
      and ``load()``, so Django's own signature, decoding and expiry checks apply: a
      tampered, expired or unknown session is not carried over.
    - Server-side engines: the old record is deleted as it is read, and carried over
      only by the request whose delete removed it, so two concurrent first requests
      with one cookie cannot both carry it: ``db`` by the rows its delete removed,
      ``cache`` by ``cache.delete()``, ``file`` by removing the file, ``cached_db``
      by its database row (read from the database, the engine's truth; the cache's
      copy is deleted too). Another engine's record is deleted with its ``delete()``,
      which does not say whether it removed it: two concurrent requests may then both
      carry that session.
    - ``signed_cookies`` keeps the session in the cookie, which cannot be deleted: the
      core then requires ``migrate_until``.
    - Sessions are decoded with Django's ``JSONSerializer`` only: another
      ``SESSION_SERIALIZER`` (a pickle one, say) is never used, a warning says so at
      start-up, and the sessions it wrote are not carried over. The ``cache`` engine
      stores no encoded session: Django's cache framework keeps its values pickled,
      so reading that engine unpickles its cache entries, as it did on each request.
    - A database or cache outage raises :class:`~wsgisession.errors.StoreUnavailable`
      (``503``) and keeps the old session.
    - The session's own lifetime is carried over, as Flask's ``session.permanent`` is:
      Django's ``_session_expiry`` (what ``set_expiry()`` set) stays in the data it
      returns, ``0`` too when it is unset and ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` is
      on, and :func:`adopt_lifetime` gives it to the session at its first use:
      ``0`` ends with the browser, seconds are the idle lifetime, a date (an ISO
      string) is ``set_expiry(date)``; without it, the session gets our default. A
      session whose date has passed is not carried over, nor a ``signed_cookies``
      one signed longer ago than its seconds (which Django did not check, its
      ticket #19201, but the browser did: it dropped the cookie then).

    ::

        WSGISESSION = {"store": "redis://localhost:6379/0",
                       "migrate_from": "django.contrib.sessions.backends.db"}

    :param engine: The engine's module path, as ``SESSION_ENGINE`` names it. The old
        cookie is Django's ``SESSION_COOKIE_NAME``, ``_PATH`` and ``_DOMAIN``.
    :raises ConfigurationError: *engine* is no session engine, or Django cannot open
        its sessions with the current settings (``SESSION_FILE_PATH``,
        ``SESSION_CACHE_ALIAS``, ``SESSION_SERIALIZER``).
    """

    def __init__(self, engine: str) -> None:
        store_class = _store_class(engine)
        if store_class is None:
            raise ConfigurationError(
                f"migrate_from {engine!r} is not a Django session engine (a module with a"
                " SessionStore class), e.g. 'django.contrib.sessions.backends.db'"
            )
        self.engine = engine
        #: The engine's ``SessionStore`` class.
        self.store_class = store_class
        #: The old session cookie, as Django's settings name it.
        self.cookie = OldCookie(
            settings.SESSION_COOKIE_NAME,
            settings.SESSION_COOKIE_PATH,
            settings.SESSION_COOKIE_DOMAIN,
        )
        #: Whether the old session lives in the cookie (``signed_cookies``).
        self.client_side = issubclass(store_class, signed_cookies.SessionStore)
        self._django_keys = issubclass(store_class, _SERVER_ENGINES)
        try:
            self._open(None)
        except (ImportError, ImproperlyConfigured) as exc:
            raise ConfigurationError(
                f"migrate_from {engine!r}: Django cannot open that engine's sessions ({exc});"
                " keep the settings it reads (SESSION_FILE_PATH, SESSION_CACHE_ALIAS and"
                " its cache, SESSION_SERIALIZER) as they were"
            ) from exc
        if not issubclass(store_class, cache.SessionStore):
            _warn_of_serializer(engine)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine!r})"

    def read(self, value: str) -> dict[str, Any] | None:
        """The data of the old session cookie *value* names, deleting it; or ``None``.

        :param value: The old session cookie's value.
        :raises StoreUnavailable: the database or cache failed.
        """
        if self._django_keys and not _KEY_CHARS.issuperset(value):
            return None  # not a key Django made (ours, say): no need to ask the store
        store = self._open(value)
        if store.session_key is None:
            return None  # too short to be one (Django's own minimum)
        with _outage(self.engine):
            data = _load(store)
            if not isinstance(data, dict) or not data:
                return None
            if not self.client_side and not _take(store):
                return None  # a concurrent request carried it over first
        signed_at = _signed_at(value) if self.client_side else None
        if not _keep_lifetime(data, signed_at):
            return None
        return data

    def remaining(self) -> int | None:
        """Unexpired sessions left in a ``db`` or ``cached_db`` table; session files
        left for ``file`` (expired ones included, until removed); ``None`` otherwise.

        :raises StoreUnavailable: the database failed.
        """
        store = self._open(None)
        with _outage(self.engine):
            if isinstance(store, db.SessionStore):
                live = store.model.objects.filter(expire_date__gt=timezone.now())
                return int(live.count())
            if isinstance(store, file.SessionStore):
                prefix = store.file_prefix
                return sum(
                    1
                    for name in os.listdir(store.storage_path)
                    if name.startswith(prefix) and _is_key(name[len(prefix) :])
                )
        return None

    def _open(self, value: str | None) -> Any:
        store = self.store_class(session_key=value)
        # Never the configured serializer, which could unpickle (see the class docs).
        store.serializer = JSONSerializer
        return store


def engine_reader(path: object) -> DjangoEngineReader | None:
    """A :class:`DjangoEngineReader` of the engine *path* names, or ``None`` if it
    names no Django session engine (then it is left to :func:`~wsgisession.from_config`,
    which reads a reader's dotted path).

    :raises ConfigurationError: an engine Django cannot open with the current settings.
    """
    if not isinstance(path, str) or _store_class(path) is None:
        return None
    return DjangoEngineReader(path)


def adopt_lifetime(session: DjangoSession) -> None:
    """Give a carried-over session the lifetime it had in Django's engine.

    :class:`DjangoEngineReader` leaves Django's ``_session_expiry`` in the data it
    carries over; :class:`~wsgisession.contrib.django.DjangoSession` calls this at
    the session's first use in the request (and before saving it, should only
    wsgisession's own API have used it), and the key goes, turned into
    ``set_expiry()``: ``0`` ends with the browser, seconds are the idle lifetime, a
    date is ``set_expiry(date)``. Nothing to do for any other session.
    """
    core = session.session
    if _EXPIRY not in core:
        return
    lifetime = _lifetime(core.pop(_EXPIRY))
    if lifetime is not None:
        session.set_expiry(lifetime)


def _keep_lifetime(data: dict[str, Any], signed_at: float | None) -> bool:
    """Leave the old session's lifetime in *data* as set_expiry() takes it; ``False``
    when that lifetime is over (the session is then not carried over).

    :param signed_at: When a ``signed_cookies`` cookie was signed (its last save).
    """
    lifetime = _lifetime(data.pop(_EXPIRY, None))
    if lifetime is None and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        lifetime = 0  # Django's default for this session: until the browser closes
    if lifetime is None:
        return True
    if isinstance(lifetime, datetime):
        if _passed(lifetime):
            return False
        data[_EXPIRY] = lifetime.isoformat()
        return True
    if lifetime < 0:
        return False
    if lifetime and signed_at is not None and time.time() - signed_at > lifetime:
        return False  # the browser dropped that cookie: only a copy can send it
    data[_EXPIRY] = lifetime
    return True


def _lifetime(value: object) -> int | datetime | None:
    """Django's ``_session_expiry`` as ``set_expiry()`` takes it; ``None`` for none
    (or a value Django's ``set_expiry()`` does not write, logged)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return math.ceil(value) if value > 0 else math.floor(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    log.warning(
        "migration: left out Django's %s %r, which is no lifetime set_expiry() sets:"
        " the session gets the default lifetime",
        _EXPIRY,
        value,
    )
    return None


def _passed(moment: datetime) -> bool:
    """Whether *moment* is past (a naive one is local time, as Django wrote it)."""
    try:
        return moment.timestamp() <= time.time()
    except (OverflowError, ValueError):
        return moment.year < 5000  # datetime's extremes: year 1, or year 9999


def _signed_at(value: str) -> float | None:
    """When Django signed the ``signed_cookies`` cookie *value* (its signature,
    checked by then, covers the time); ``None`` if it holds no time."""
    parts = value.rsplit(":", 2)
    if len(parts) != 3:
        return None
    try:
        return float(b62_decode(parts[1]))
    except (IndexError, ValueError):
        return None


def _store_class(path: str) -> Any:
    """The ``SessionStore`` class of the engine module *path*, or ``None``."""
    if not path or ":" in path:
        return None
    try:
        module = importlib.import_module(path)
    except (ImportError, TypeError, ValueError):
        return None
    store_class = getattr(module, "SessionStore", None)
    if isinstance(store_class, type) and issubclass(store_class, SessionBase):
        return store_class
    return None


def _is_key(name: str) -> bool:
    return len(name) >= 8 and _KEY_CHARS.issuperset(name)


def _warn_of_serializer(engine: str) -> None:
    configured = import_string(settings.SESSION_SERIALIZER)
    if getattr(configured, "loads", None) is not JSONSerializer.loads:
        log.warning(
            "SESSION_SERIALIZER is %r: the migration reader of %s decodes old sessions"
            " as JSON only, never with it (it could unpickle them); sessions it wrote are"
            " not carried over",
            settings.SESSION_SERIALIZER,
            engine,
        )


def _load(store: Any) -> Any:
    """The old session's data, as the engine loads it (``{}`` or ``None``: none)."""
    if isinstance(store, cached_db.SessionStore):
        # Its database half: the row is the engine's truth, and JSON, where the
        # cache's copy would be unpickled.
        return db.SessionStore.load(store)
    if isinstance(store, cache.SessionStore):
        # The engine's load() without its `except Exception`, which would take a
        # cache outage for a missing session, and the user would be logged out.
        return caches[settings.SESSION_CACHE_ALIAS].get(store.cache_key)
    if isinstance(store, file.SessionStore):
        # Loading an expired session would create a new, empty file in its place;
        # Django's clear_expired() prevents it the same way.
        store.create = _create_nothing
    return store.load()


def _take(store: Any) -> bool:
    """Delete the old record; whether this call removed it (and no concurrent one)."""
    key = store.session_key
    if isinstance(store, cache.SessionStore | cached_db.SessionStore):
        # For cached_db, before its row: should this fail, the row keeps the session.
        removed = caches[settings.SESSION_CACHE_ALIAS].delete(store.cache_key)
        if isinstance(store, cache.SessionStore):
            return bool(removed)
    if isinstance(store, db.SessionStore):
        deleted, _ = store.model.objects.filter(session_key=key).delete()
        return bool(deleted)
    if isinstance(store, file.SessionStore):
        try:
            os.remove(os.path.join(store.storage_path, store.file_prefix + key))
        except FileNotFoundError:
            return False
        return True
    store.delete()
    return True


def _create_nothing() -> None:
    return None


@contextmanager
def _outage(engine: str) -> Iterator[None]:
    """Turn the old store's failure into :class:`StoreUnavailable` (``503``)."""
    try:
        yield
    except Exception as exc:
        if not _is_outage(exc):
            raise
        log.error("the old session engine %s failed, answering 503: %r", engine, exc)
        raise StoreUnavailable(f"the old session engine {engine} failed: {exc!r}") from exc


def _is_outage(exc: Exception) -> bool:
    if isinstance(exc, DatabaseError | OSError):
        return True
    # Django's RedisCache raises redis-py's errors; imported if that cache is used.
    redis = sys.modules.get("redis.exceptions")
    return redis is not None and isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
