"""Readers of the Flask sessions being replaced: Flask's signed cookie and Flask-Session.

:func:`~wsgisession.contrib.flask.init_app` builds one from the app's configuration
when given ``migrate_from="flask"`` or ``migrate_from="flask-session"``, so that the
switch to wsgisession logs nobody out (:mod:`wsgisession.migration` carries the data
over):

- ``"flask"``: :class:`FlaskCookieReader`, Flask's default session
  (``SecureCookieSessionInterface``), read with Flask's own signing serializer: the
  ``SECRET_KEY`` or one of ``SECRET_KEY_FALLBACKS``, Flask's tagged JSON, and
  ``PERMANENT_SESSION_LIFETIME`` as its age limit. The old session lives in the
  browser and cannot be deleted, so ``migrate_until`` is required.
- ``"flask-session"``: Flask-Session 0.8's records, on Redis
  (:class:`FlaskSessionRedisReader`) or in its SQLAlchemy table
  (:class:`FlaskSessionSQLAlchemyReader`), found and decoded as Flask-Session's
  settings say (``SESSION_TYPE``, ``SESSION_KEY_PREFIX``, ``SESSION_USE_SIGNER``,
  ``SESSION_SERIALIZATION_FORMAT``, ``SESSION_REDIS``, ``SESSION_SQLALCHEMY`` and its
  table settings). Each record is deleted as it is read, in one step, so a replayed
  old cookie gets a fresh session; an expired one is not carried over.

When *not* to use them: after ``migrate_until``, or once ``wsgisession migrate
--status`` shows no old session left: remove ``migrate_from`` then. Nothing is
ever unpickled: records Flask-Session pickled before 0.7 are left out (convert them
with Flask-Session first, see the migration guide), and its ``filesystem`` and
``cachelib`` backends, which pickle every record, are refused.

The old cookie's name, path and domain are read from ``app.config`` when
``init_app`` runs (``SESSION_COOKIE_NAME``, ``SESSION_COOKIE_PATH`` else
``APPLICATION_ROOT``, ``SESSION_COOKIE_DOMAIN``), as are Flask-Session's settings,
which Flask-Session itself read once at ``Session(app)``; the secret keys and
``PERMANENT_SESSION_LIFETIME`` are read at each old session, like ours.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadData, Signer, want_bytes

from ..errors import ConfigurationError, StoreUnavailable
from ..migration import Migration, MigrationReader, OldCookie
from ..stores.redis import RedisStore

if TYPE_CHECKING:
    import msgspec
    from sqlalchemy import Engine, Table

    from ._flask_session import FlaskSession

__all__ = [
    "FlaskCookieReader",
    "FlaskSessionReader",
    "FlaskSessionRedisReader",
    "FlaskSessionSQLAlchemyReader",
    "adopt_permanent",
    "build_reader",
    "check_migration",
    "reader_name",
]

log = logging.getLogger("wsgisession")

#: The environment variable that names a reader, as for every setting.
_ENV_NAME = "WSGISESSION_MIGRATE_FROM"

#: The session key in which Flask and Flask-Session keep ``session.permanent``.
PERMANENT_KEY = "_permanent"

#: What Flask-Session 0.8 uses when its settings are not given.
_FLASK_SESSION_DEFAULTS: Mapping[str, Any] = {
    "SESSION_TYPE": "null",
    "SESSION_KEY_PREFIX": "session:",
    "SESSION_USE_SIGNER": False,
    "SESSION_SERIALIZATION_FORMAT": "msgpack",
    "SESSION_REDIS": None,
    "SESSION_SQLALCHEMY": None,
    "SESSION_SQLALCHEMY_TABLE": "sessions",
    "SESSION_SQLALCHEMY_SCHEMA": None,
    "SESSION_SQLALCHEMY_BIND_KEY": None,
}

#: A session id as Flask-Session makes them (``secrets.token_urlsafe``, or a UUID
#: before 0.6). Anything else is not looked up: a cookie value never names a key
#: outside the old records.
_SID = re.compile(r"[A-Za-z0-9_-]{8,256}")


def _old_cookie(app: Flask) -> OldCookie:
    # Flask-Session sets its cookie with Flask's own rules, so one reading serves both.
    interface = SecureCookieSessionInterface()
    return OldCookie(
        interface.get_cookie_name(app),
        interface.get_cookie_path(app) or "/",
        interface.get_cookie_domain(app) or None,
    )


def _secret_keys(app: Flask) -> list[bytes]:
    """The app's secret keys, the current one last (itsdangerous signs with it)."""
    keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]
    return [want_bytes(key) for key in keys]


# -- Flask's own cookie session --------------------------------------------------


class FlaskCookieReader:
    """Flask's default session: the data is in the signed ``session`` cookie.

    Read exactly as Flask's ``SecureCookieSessionInterface.open_session`` reads it,
    through its own signing serializer: a cookie signed with ``SECRET_KEY`` or one
    of ``SECRET_KEY_FALLBACKS``, at most ``PERMANENT_SESSION_LIFETIME`` old.

    :param app: The Flask application whose cookies are read.
    """

    client_side = True

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.cookie = _old_cookie(app)
        self._interface = SecureCookieSessionInterface()

    def read(self, value: str) -> dict[str, Any] | None:
        """The session's data; ``None`` when forged, too old, or without a secret key."""
        serializer = self._interface.get_signing_serializer(self.app)
        if serializer is None:
            return None
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadData:
            return None
        return data if isinstance(data, dict) else None

    def remaining(self) -> int | None:
        """Unknown: the old sessions are in the browsers."""
        return None


# -- Flask-Session 0.8 -------------------------------------------------------------


class FlaskSessionReader(ABC):
    """Flask-Session's records: its cookie holds a session id, its store the data.

    The id is checked as Flask-Session checks it (signed with salt
    ``"flask-session"`` when ``SESSION_USE_SIGNER``), the record taken from the store
    (read and deleted in one step, by the subclass for its store) and decoded from
    msgpack or JSON, as ``SESSION_SERIALIZATION_FORMAT`` says (the other one too, as
    Flask-Session does). A record in pickle format is left out and logged: it is
    never unpickled.

    :param app: The Flask application.
    :param key_prefix: ``SESSION_KEY_PREFIX``.
    :param use_signer: ``SESSION_USE_SIGNER``.
    :param serialization_format: ``SESSION_SERIALIZATION_FORMAT``.
    """

    client_side = False

    def __init__(
        self, app: Flask, *, key_prefix: str, use_signer: bool, serialization_format: str
    ) -> None:
        self.app = app
        self.cookie = _old_cookie(app)
        self.key_prefix = key_prefix
        self.use_signer = use_signer
        self._decoders = _decoders(serialization_format)

    def read(self, value: str) -> dict[str, Any] | None:
        """The session's data, its record deleted; ``None`` if none can be carried over.

        :raises StoreUnavailable: the old store failed (the record stays).
        """
        sid = self._session_id(value)
        if sid is None:
            return None
        raw = self._take(self.key_prefix + sid)
        if raw is None:
            return None
        return self._decoded(raw)

    @abstractmethod
    def remaining(self) -> int | None:
        """How many unexpired old records are left (under ``SESSION_KEY_PREFIX``)."""

    @abstractmethod
    def _take(self, key: str) -> bytes | None:
        """The record stored under *key*, deleted in the same step; ``None``: none.

        :raises StoreUnavailable: the store failed; the record is still there.
        """

    def _session_id(self, value: str) -> str | None:
        if self.use_signer:
            if not self.app.secret_key:
                return None
            signer = Signer(_secret_keys(self.app), salt="flask-session", key_derivation="hmac")
            try:
                value = signer.unsign(value).decode()
            except (BadData, UnicodeDecodeError):
                return None
        return value if _SID.fullmatch(value) else None

    def _decoded(self, raw: bytes) -> dict[str, Any] | None:
        import msgspec

        for decoder in self._decoders:
            try:
                data = decoder.decode(raw)
            except msgspec.DecodeError:
                continue
            return data if isinstance(data, dict) else None
        if raw[:1] == b"\x80" and raw[-1:] == b".":
            log.warning(
                "migration: a Flask-Session record in pickle format (written before"
                " Flask-Session 0.7) was not carried over, since wsgisession never"
                " unpickles: its user starts a fresh session. Convert such records with"
                " Flask-Session before the switch (see the migration guide)"
            )
        else:
            log.warning(
                "migration: a Flask-Session record is neither msgpack nor JSON; not"
                " carried over, its user starts a fresh session"
            )
        return None


def _decoders(
    serialization_format: object,
) -> tuple[msgspec.msgpack.Decoder[Any] | msgspec.json.Decoder[Any], ...]:
    try:
        import msgspec
    except ImportError as exc:
        raise ConfigurationError(
            "migrate_from='flask-session' decodes Flask-Session's records with msgspec,"
            " which is not installed: pip install msgspec (Flask-Session 0.8 needs it too)"
        ) from exc
    msgpack, json = msgspec.msgpack.Decoder(), msgspec.json.Decoder()
    if serialization_format == "msgpack":
        return (msgpack, json)
    if serialization_format == "json":
        return (json, msgpack)
    raise ConfigurationError(
        f"SESSION_SERIALIZATION_FORMAT must be 'msgpack' or 'json', as for Flask-Session"
        f" 0.8, not {serialization_format!r}"
    )


class FlaskSessionRedisReader(FlaskSessionReader):
    """Flask-Session's ``SESSION_TYPE = "redis"``: one key per session, with a TTL.

    Redis drops an expired record by itself. A record is read and deleted in one
    ``MULTI``/``EXEC`` transaction (on every Redis version, unlike ``GETDEL``).

    :param client: ``SESSION_REDIS``, a ``redis.Redis``.
    """

    def __init__(self, app: Flask, client: Any, **options: Any) -> None:
        super().__init__(app, **options)
        import redis

        self.client = client
        self._outages = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

    def _take(self, key: str) -> bytes | None:
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.delete(key)
                raw, _ = pipe.execute()
        except self._outages as exc:
            raise self._unavailable(exc) from exc
        if isinstance(raw, str):  # a client made with decode_responses=True
            raw = raw.encode()
        return raw if raw else None

    def remaining(self) -> int | None:
        """How many old records are left: a ``SCAN`` of ``SESSION_KEY_PREFIX``.

        :raises StoreUnavailable: Redis failed.
        """
        match = re.sub(r"([*?\[\]\\])", r"\\\1", self.key_prefix) + "*"
        try:
            return sum(1 for _ in self.client.scan_iter(match=match, count=1000))
        except self._outages as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"Flask-Session's Redis failed: {type(exc).__name__}: {exc}")


class FlaskSessionSQLAlchemyReader(FlaskSessionReader):
    """Flask-Session's ``SESSION_TYPE = "sqlalchemy"``: its table of records.

    A row is deleted as it is read: with ``DELETE … RETURNING`` where the database
    has it (SQLite 3.35+, PostgreSQL, MariaDB), else in a transaction whose delete
    count decides which of two concurrent readers carries it over. A row whose
    ``expiry`` has passed is deleted and not carried over.

    :param engine: The SQLAlchemy engine of the table.
    :param table: Flask-Session's table (its columns ``id``, ``session_id``,
        ``data``, ``expiry``).
    """

    def __init__(self, app: Flask, engine: Engine, table: Table, **options: Any) -> None:
        super().__init__(app, **options)
        from sqlalchemy import exc

        self.engine = engine
        self.table = table
        self._outages = (
            exc.OperationalError,
            exc.InterfaceError,
            exc.DisconnectionError,
            exc.TimeoutError,
        )

    def _take(self, key: str) -> bytes | None:
        try:
            with self.engine.begin() as conn:
                row = self._delete(conn, key)
        except self._outages as exc:
            raise self._unavailable(exc) from exc
        if row is None:
            return None
        data, expiry = row
        if expiry is None or _aware(expiry).timestamp() <= time.time():
            return None
        return bytes(data)

    def _delete(self, conn: Any, key: str) -> tuple[Any, datetime | None] | None:
        from sqlalchemy import delete, select

        columns = self.table.c
        if getattr(self.engine.dialect, "delete_returning", False):  # SQLAlchemy 2
            statement = delete(self.table).where(columns.session_id == key)
            returned = conn.execute(statement.returning(columns.data, columns.expiry)).first()
            return None if returned is None else (returned[0], returned[1])
        query = select(columns.id, columns.data, columns.expiry).where(columns.session_id == key)
        found = conn.execute(query.with_for_update()).first()
        if found is None:
            return None
        deleted = conn.execute(delete(self.table).where(columns.id == found[0])).rowcount
        # Another reader deleted it first: that one carries it over.
        return (found[1], found[2]) if deleted == 1 else None

    def remaining(self) -> int | None:
        """How many unexpired rows are left under ``SESSION_KEY_PREFIX``.

        :raises StoreUnavailable: the database failed.
        """
        from sqlalchemy import func, select

        columns = self.table.c
        # Flask-Session writes naive UTC datetimes.
        now = datetime.fromtimestamp(time.time(), UTC).replace(tzinfo=None)
        query = (
            select(func.count())
            .select_from(self.table)
            .where(columns.session_id.startswith(self.key_prefix, autoescape=True))
            .where(columns.expiry > now)
        )
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except self._outages as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"Flask-Session's database failed: {type(exc).__name__}: {exc}")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _flask_session_reader(app: Flask) -> FlaskSessionReader:
    settings = {
        name: app.config.get(name, default) for name, default in _FLASK_SESSION_DEFAULTS.items()
    }
    kind = str(settings["SESSION_TYPE"]).lower()
    options = {
        "key_prefix": settings["SESSION_KEY_PREFIX"],
        "use_signer": bool(settings["SESSION_USE_SIGNER"]),
        "serialization_format": settings["SESSION_SERIALIZATION_FORMAT"],
    }
    if kind == "redis":
        return FlaskSessionRedisReader(app, _redis_client(settings["SESSION_REDIS"]), **options)
    if kind == "sqlalchemy":
        engine, table = _sqlalchemy_table(app, settings)
        return FlaskSessionSQLAlchemyReader(app, engine, table, **options)
    if kind in ("filesystem", "cachelib"):
        raise ConfigurationError(
            f"migrate_from='flask-session' cannot read SESSION_TYPE {kind!r}: cachelib"
            " pickles every record, and wsgisession never unpickles; those sessions"
            " cannot be carried over (drop migrate_from: users log in again once)"
        )
    if kind == "null":
        raise ConfigurationError(
            "migrate_from='flask-session' reads Flask-Session's records where its settings"
            " say, but SESSION_TYPE is not set: keep Flask-Session's settings (SESSION_TYPE,"
            " SESSION_REDIS or SESSION_SQLALCHEMY …) in app.config when calling init_app"
        )
    raise ConfigurationError(
        "migrate_from='flask-session' reads Flask-Session's SESSION_TYPE 'redis' or"
        f" 'sqlalchemy', not {settings['SESSION_TYPE']!r}: for another store, give"
        " migrate_from a reader of your own (see wsgisession.migration)"
    )


def _redis_client(client: Any) -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "migrate_from='flask-session' with SESSION_TYPE 'redis' needs redis-py:"
            " pip install 'sessionlayer[redis]'"
        ) from exc
    if client is None:
        # What Flask-Session 0.8 does without SESSION_REDIS.
        log.warning(
            "migration: SESSION_REDIS is not set; reading Flask-Session's records"
            " from Redis on localhost:6379, as Flask-Session did"
        )
        return redis.Redis()
    if not isinstance(client, redis.Redis):
        raise ConfigurationError(
            f"SESSION_REDIS must be a redis.Redis, as for Flask-Session, not {client!r}"
        )
    return client


def _sqlalchemy_table(app: Flask, settings: Mapping[str, Any]) -> tuple[Engine, Table]:
    try:
        from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table
    except ImportError as exc:
        raise ConfigurationError(
            "migrate_from='flask-session' with SESSION_TYPE 'sqlalchemy' needs"
            " SQLAlchemy and Flask-SQLAlchemy, as Flask-Session did: pip install"
            " flask-sqlalchemy"
        ) from exc
    db: Any = settings["SESSION_SQLALCHEMY"] or app.extensions.get("sqlalchemy")
    bind_key = settings["SESSION_SQLALCHEMY_BIND_KEY"]
    try:
        with app.app_context():
            engine = db.engines[bind_key]
    except (AttributeError, KeyError, RuntimeError) as exc:
        raise ConfigurationError(
            "migrate_from='flask-session' with SESSION_TYPE 'sqlalchemy' reads the"
            f" database of SESSION_SQLALCHEMY (bind key {bind_key!r}), but got no engine"
            f" ({type(exc).__name__}: {exc}): set SESSION_SQLALCHEMY to your"
            " Flask-SQLAlchemy instance and call its init_app(app) before ours"
        ) from exc
    # Flask-Session 0.8's model, in a metadata of its own: the app's models are not
    # touched, and nothing is created.
    table = Table(
        settings["SESSION_SQLALCHEMY_TABLE"],
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("session_id", String(255)),
        Column("data", LargeBinary),
        Column("expiry", DateTime),
        schema=settings["SESSION_SQLALCHEMY_SCHEMA"],
    )
    return engine, table


# -- what init_app calls -----------------------------------------------------------

_READERS: Mapping[str, Callable[[Flask], MigrationReader]] = {
    "flask": FlaskCookieReader,
    "flask-session": _flask_session_reader,
}


def reader_name(
    settings: MutableMapping[str, Any], environ: MutableMapping[str, str]
) -> str | None:
    """The reader *settings* or *environ* name (``"flask"``, ``"flask-session"``), taken out.

    The environment variable wins, as for every setting. A dotted path or a reader
    object is left where it is, for the settings table.

    :raises ConfigurationError: a name without a dot that names no reader.
    """
    if _ENV_NAME in environ:
        name = _known_name(environ[_ENV_NAME])
        if name is not None:
            del environ[_ENV_NAME]
            settings.pop("migrate_from", None)
        return name
    name = _known_name(settings.get("migrate_from"))
    if name is not None:
        del settings["migrate_from"]
    return name


def _known_name(value: object) -> str | None:
    if not isinstance(value, str) or "." in value or ":" in value:
        return None
    name = value.strip().lower()
    if name in ("", "none", "null"):
        return None
    if name not in _READERS:
        raise ConfigurationError(
            f"migrate_from {value!r} names no reader: with Flask, 'flask' reads Flask's"
            " cookie sessions and 'flask-session' Flask-Session's; else give a migration"
            " reader or its dotted path, e.g. 'myapp.legacy:reader'"
        )
    return name


def build_reader(name: str, app: Flask) -> MigrationReader:
    """The reader *name* stands for, built from *app*'s configuration as it is now.

    :raises ConfigurationError: Flask-Session's settings name a store it cannot read.
    """
    return _READERS[name](app)


def check_migration(app: Flask, options: Mapping[str, Any], name: str | None) -> None:
    """Check ``migrate_from`` and ``migrate_until`` now, at ``init_app``, not at a request.

    :raises ConfigurationError: as :class:`~wsgisession.SessionMiddleware` would, with
        what a Flask cookie session needs said in Flask's terms.
    """
    reader = options.get("migrate_from")
    until = options.get("migrate_until")
    if name == "flask" and until is None:
        lifetime = app.permanent_session_lifetime
        span = f"{lifetime.days} days" if lifetime.days and not lifetime.seconds else lifetime
        raise ConfigurationError(
            "migrate_from='flask' carries over Flask's cookie sessions, which live in"
            " the browser and cannot be deleted there, so init_app needs migrate_until:"
            " the fixed date after which old cookies are no longer honoured, the day of"
            f" the switch plus PERMANENT_SESSION_LIFETIME ({span}), e.g."
            " migrate_until=datetime(2027, 1, 31, tzinfo=UTC)"
        )
    if reader is None:
        if until is not None:
            raise ConfigurationError("migrate_until was given without migrate_from")
        return
    cookie_name = options.get("cookie_name") or app.config["SESSION_COOKIE_NAME"]
    Migration(reader, until, cookie_name=cookie_name)
    store = options.get("store")
    if isinstance(reader, FlaskSessionRedisReader) and isinstance(store, RedisStore):
        old, ours = reader.key_prefix, store.prefix
        if old.startswith(ours) or ours.startswith(old):
            log.warning(
                "migration: the store's key prefix %r and Flask-Session's"
                " SESSION_KEY_PREFIX %r overlap: if they share a Redis database, our"
                " sessions count as old ones left (`wsgisession migration-status`);"
                " give the store a prefix of its own (redis://…?prefix=wsgisession:)",
                ours,
                old,
            )


def adopt_permanent(session: FlaskSession) -> None:
    """Make a carried-over session permanent if it was in Flask or Flask-Session.

    Both keep ``session.permanent`` as a ``_permanent`` key in the data; ours is the
    session's lifetime (``PERMANENT_SESSION_LIFETIME``).
    """
    core = session.session
    if PERMANENT_KEY in core:
        session.permanent = bool(core.pop(PERMANENT_KEY))
