"""PostgresStore: sessions in PostgreSQL, shared by every process on every machine.

For teams that run PostgreSQL and no Redis (Django's default session engine is the
database; Rails has ``active_record_store``). Each session is one row: its store key,
a ``jsonb`` object of field → value, and an expiry time. Its costs, in round trips:

- a request that never touches the session: none (the connection pool is created
  on first use, in each process, so the store is safe to create before gunicorn
  forks its workers);
- loading a session: one (a prepared ``SELECT`` of the live row);
- saving a changed session: one (a prepared ``UPDATE … SET data = (data || changed)
  - removed`` — or ``INSERT … ON CONFLICT`` for a new session — that merges the
  changed fields and drops the removed ones under the row's lock, so two requests
  changing different keys both land, and that matches no row once the session was
  deleted, so a request in flight at a logout cannot bring it back);
- renewing the idle timeout of a session that is only read: one ``UPDATE``, at
  most once per ``refresh_interval``.

Expired rows are invisible at once (every statement compares with the server's
``now()``) and deleted by :meth:`PostgresStore.gc`: saves call it at most once per
*gc_interval* per process, a batch at a time, and ``wsgisession gc --store URL``
does it from a scheduled job. The table and its expiry index are created on first
use (or by ``wsgisession migrate --store URL``, for a role that may not run DDL
while serving); no request ever runs DDL after that.

A PostgreSQL that is down, or slower than *timeout* (the statement timeout), raises
:class:`~wsgisession.errors.StoreUnavailable`: the client gets a ``503`` with
``Retry-After`` and keeps its cookie, and service resumes by itself when the server
is back.

Needs the ``postgres`` extra: ``pip install sessionlayer[postgres]`` (psycopg 3 and
psycopg_pool).

When *not* to use it: on one machine without a PostgreSQL already,
:class:`~wsgisession.SQLiteStore` needs no server; for the lowest latency under heavy
write load, :class:`~wsgisession.RedisStore` (each save here is a durable,
WAL-logged row update).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._options import a
from ..errors import ConfigurationError, StoreUnavailable
from ._postgres_index import PostgresIndex
from ._postgres_sql import SQL, decode_value, encode_value, field_name, unfield
from ._sealing import SealableStore

if TYPE_CHECKING:
    from ._sealed import Replacement

__all__ = ["MAX_TABLE_NAME", "PostgresStore"]

log = logging.getLogger("wsgisession")

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: The relations the store names after its table, by suffix: the expiry index and
#: the two tables of the per-user index (:mod:`._postgres_index`).
_DERIVED_SUFFIXES = ("_expires", "_devices", "_stamps")

#: The longest table name: PostgreSQL cuts identifiers at 63 bytes (NAMEDATALEN - 1),
#: and every name derived from the table's must stay whole, or two collide.
MAX_TABLE_NAME = 63 - max(len(suffix) for suffix in _DERIVED_SUFFIXES)

#: Query options of a store URL that are the store's own, not libpq's.
_OWN_OPTIONS = (
    "schema",
    "table",
    "timeout",
    "max_size",
    "gc_interval",
    "create_table",
    "encrypt",
)


#: pg_class.relkind, for messages.
_RELKINDS = {
    "r": "a table",
    "p": "a partitioned table",
    "i": "an index",
    "v": "a view",
    "m": "a materialized view",
    "S": "a sequence",
    "f": "a foreign table",
    "c": "a composite type",
}


def _import_psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ConfigurationError(
            "PostgresStore needs the psycopg and psycopg_pool packages, which are not"
            " installed: pip install 'sessionlayer[postgres]'"
        ) from exc
    return psycopg, psycopg_pool


class PostgresStore(PostgresIndex, SealableStore):
    """Keep sessions in a PostgreSQL table, one row per session.

    ::

        store = PostgresStore("postgresql://app@db.internal/app", table="sessions")
        app = SessionMiddleware(app, secret_key=KEY, store=store)

    :param url: A libpq connection URL or string (``postgresql://user@host/db``,
        ``postgres://…``, ``host=… dbname=…``); its query string may carry libpq
        options (``?sslmode=require``) and those of this store (``?schema=…&table=…``).
    :param schema: The schema of the table (created if missing); default the
        connection's ``search_path``, usually ``public``.
    :param table: The table's name, at most 55 characters: its expiry index and the
        per-user index's tables are named after it (``<table>_expires``,
        ``<table>_devices``, ``<table>_stamps``).
    :param timeout: Seconds to wait for a connection and for each statement (the
        server's ``statement_timeout``) before the request gets a ``503``.
    :param max_size: Connections per process at most; gunicorn's ``--threads`` is
        the most a worker uses at once.
    :param gc_interval: Seconds between purges of expired rows run by saves, in each
        process; ``None`` leaves purging to ``wsgisession gc`` (run it from cron).
    :param create_table: Create the schema, table and index on first use if they are
        missing. ``False`` for a role without DDL rights: run ``wsgisession migrate
        --store URL`` once with one that has them.
    :param encrypt: Seal each value with AES-256-GCM, under a key derived from the
        middleware's secret key, and store keyed hashes of the session's key names
        (needs ``pip install "sessionlayer[crypto]"``): a backup or a replica holds
        no session data. Rows written in clear before are still read, and sealed
        when next loaded or by ``wsgisession migrate --encrypt``
        (``store.encrypt_records(keys)``).
    :raises ConfigurationError: psycopg is missing, a name is not a plain SQL
        identifier, *table* is longer than :data:`MAX_TABLE_NAME` (55) characters, a
        number is out of range, or ``encrypt=True`` without the cryptography package.
    """

    seal_purpose = "wsgisession.store:postgres"

    def __init__(
        self,
        url: str = "postgresql://127.0.0.1:5432/postgres",
        *,
        schema: str | None = None,
        table: str = "wsgisession",
        timeout: float = 2.0,
        max_size: int = 10,
        gc_interval: float | None = 300.0,
        create_table: bool = True,
        encrypt: bool = False,
    ) -> None:
        self._psycopg, self._psycopg_pool = _import_psycopg()
        self._init_encrypt(encrypt)
        if not isinstance(url, str):
            raise ConfigurationError(f"PostgresStore url must be a str, not {url!r}")
        for name, value in (("schema", schema), ("table", table)):
            if value is not None and not (isinstance(value, str) and _IDENTIFIER.fullmatch(value)):
                raise ConfigurationError(
                    f"PostgresStore {name} must be a plain SQL identifier (letters, digits"
                    f" and _, not starting with a digit, at most 63), not {value!r}"
                )
        if len(table) > MAX_TABLE_NAME:
            raise ConfigurationError(
                f"PostgresStore table must be at most {MAX_TABLE_NAME} characters, not"
                f" {len(table)} ({table!r}): PostgreSQL cuts names at 63, and the store"
                f" also names {table}_expires, {table}_devices and {table}_stamps, which"
                " would collide; choose a shorter table name"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigurationError(
                f"PostgresStore timeout must be a number of seconds > 0, not {timeout!r}"
            )
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigurationError(
                f"PostgresStore max_size must be a whole number >= 1, not {max_size!r}"
            )
        if gc_interval is not None and (
            isinstance(gc_interval, bool)
            or not isinstance(gc_interval, int | float)
            or gc_interval < 0
        ):
            raise ConfigurationError(
                f"PostgresStore gc_interval must be seconds >= 0 or None, not {gc_interval!r}"
            )
        try:
            self._conninfo = self._psycopg.conninfo.make_conninfo(url)
            params = self._psycopg.conninfo.conninfo_to_dict(self._conninfo)
        except self._psycopg.ProgrammingError as exc:
            raise ConfigurationError(
                f"invalid PostgreSQL URL: {exc}; use postgresql://user@host:5432/dbname"
            ) from exc
        self.url = url
        self.schema = schema
        self.table = table
        self.timeout = float(timeout)
        self.max_size = max_size
        self.gc_interval = None if gc_interval is None else float(gc_interval)
        self.create_table = create_table
        # Logged with errors, so without the password.
        self._where = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
            f"/{params.get('dbname', params.get('user', ''))}"
        )
        qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
        #: The table's name as it appears in SQL, schema-qualified when *schema* is set.
        self.qualified = qualified
        # The only names put into SQL text: checked against _IDENTIFIER, and quoted.
        self._sql = {name: sql.replace("TABLE", qualified) for name, sql in SQL.items()}
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pid = os.getpid()
        self._next_gc = 0.0

    # -- connections ---------------------------------------------------------

    def _new_pool(self) -> Any:
        pool = self._psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self.max_size,
            open=False,
            timeout=self.timeout,
            # The pool retries a failed connection with a doubling delay until it
            # gives up; a short limit keeps that delay short, so service resumes
            # within seconds of PostgreSQL coming back, however long it was down
            # (the next request that needs a connection starts a fresh attempt).
            reconnect_timeout=10.0,
            name=f"wsgisession {self._where}",
            kwargs={
                "autocommit": True,
                # Each statement is prepared on its first use on a connection: after
                # that a load or save is one Bind/Execute, with no parsing or planning.
                "prepare_threshold": 0,
                **self._connect_options(),
            },
        )
        pool.open(wait=False)
        return pool

    def _connect_options(self) -> dict[str, Any]:
        ms = int(self.timeout * 1000)
        return {
            "connect_timeout": max(2, round(self.timeout)),
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
            "application_name": "wsgisession",
        }

    def ping(self) -> None:
        """Connect now, create the table if it is missing (*create_table*) and read it.

        On a connection of its own, closed again: the pool is not created, so a
        worker forked afterwards inherits no connection.

        :raises StoreUnavailable: PostgreSQL cannot be reached or refused the
            login, the table is missing and *create_table* is ``False``, or a name
            the store uses is taken by another kind of relation.
        """
        psycopg = self._psycopg
        try:
            with psycopg.connect(
                self._conninfo, autocommit=True, **self._connect_options()
            ) as conn:
                if self.create_table:
                    self._ensure_table(conn)
                else:
                    self._check_relations(conn)
                conn.execute(f"SELECT 1 FROM {self.qualified} LIMIT 0")  # noqa: S608
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    def _get_pool(self) -> Any:
        pid = os.getpid()
        pool = self._pool
        if pool is None or pid != self._pid:
            with self._lock:
                if self._pool is None or pid != self._pid:
                    # A pool inherited across fork() is left alone, never closed: its
                    # sockets are the parent's, and closing them would end its sessions.
                    # Published only once its table exists: a thread that finds
                    # self._pool set (outside the lock) may use it at once.
                    fresh = self._new_pool()
                    try:
                        if self.create_table:
                            self._run(fresh, self._ensure_table)
                    except BaseException:
                        fresh.close()
                        raise
                    self._next_gc = 0.0
                    self._pool, self._pid = fresh, pid
                pool = self._pool
        return pool

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        errors = self._psycopg.errors
        if isinstance(exc, errors.QueryCanceled | errors.LockNotAvailable):
            return StoreUnavailable(
                f"PostgreSQL at {self._where} took longer than the timeout"
                f" ({self.timeout:g} s): {exc}; raise PostgresStore timeout or find what"
                " holds the session table"
            )
        if isinstance(exc, errors.UndefinedTable):
            return StoreUnavailable(
                f"the session table {self.qualified} does not exist at {self._where}: run"
                " `wsgisession migrate --store URL`, or let the store create it"
                " (create_table=True)"
            )
        # libpq's messages run over several lines; a log line must stay one.
        detail = " ".join(str(exc).split())
        return StoreUnavailable(
            f"PostgreSQL at {self._where} failed: {type(exc).__name__}: {detail}"
        )

    def _run(self, pool: Any, work: Callable[[Any], T]) -> T:
        psycopg = self._psycopg
        for attempt in (1, 2):
            conn = None
            try:
                with pool.connection() as conn:
                    return work(conn)
            except self._psycopg_pool.PoolTimeout as exc:
                raise self._unavailable(exc) from exc
            except psycopg.Error as exc:
                # A pooled connection the server closed (a restart, a failover):
                # replace the idle ones and try once more on a fresh connection.
                # Every statement here may safely run twice: a merge is idempotent.
                if attempt == 1 and conn is not None and conn.closed:
                    pool.check()
                    continue
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_table(self, conn: Any) -> None:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.qualified,)).fetchone()
        created = not (exists and exists[0])
        if created:
            with conn.transaction():
                # Workers starting together must not race to create the same table.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.qualified,))
                for statement in self.ddl():
                    conn.execute(statement)
            log.info("created the session table %s at %s", self.qualified, self._where)
        self._check_relations(conn, created=created)

    def _derived(self, suffix: str) -> str:
        # An index lives in its table's schema, so each derived name is qualified alike.
        prefix = f'"{self.schema}".' if self.schema else ""
        return f'{prefix}"{self.table}{suffix}"'

    def _check_relations(
        self, conn: Any, *, created: bool = False, index_tables: bool = False
    ) -> None:
        """Check that each name the store uses is the relation it expects.

        ``CREATE … IF NOT EXISTS`` skips a name already taken by something else (a
        view, a table of another program), and every request would then fail.

        :param created: The table and its index were just created: require them.
        :param index_tables: The per-user index's tables were just created: require them.
        :raises StoreUnavailable: a name is missing or taken by another kind of relation.
        """
        expected = [
            (self.qualified, "the session table", ("r", "p"), created),
            (self._derived("_expires"), "the expiry index", ("i",), created),
            (self._derived("_devices"), "the device table", ("r", "p"), index_tables),
            (self._derived("_stamps"), "the logout stamp table", ("r", "p"), index_tables),
        ]
        for name, what, kinds, required in expected:
            row = conn.execute(
                "SELECT c.relkind, i.indrelid = to_regclass(%s)"
                " FROM pg_class AS c LEFT JOIN pg_index AS i ON i.indexrelid = c.oid"
                " WHERE c.oid = to_regclass(%s)",
                (self.qualified, name),
            ).fetchone()
            if row is None:
                if not required:
                    continue
                found = "missing"
            elif str(row[0]) not in kinds:
                found = f"{_RELKINDS.get(str(row[0]), 'another kind of relation')} instead"
            elif kinds == ("i",) and not row[1]:
                found = "an index on another table"
            else:
                continue
            raise StoreUnavailable(
                f"{what} {name} at {self._where} is {found}, so the session store cannot"
                " work: drop or rename what holds that name, or give PostgresStore another"
                " table name"
            )

    def ddl(self) -> list[str]:
        """The statements that create the schema, table and expiry index, if missing."""
        index = f'"{self.table}_expires"'
        statements = [f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'] if self.schema else []
        return [
            *statements,
            f"CREATE TABLE IF NOT EXISTS {self.qualified} ("
            " key text PRIMARY KEY, data jsonb NOT NULL, expires timestamptz NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {index} ON {self.qualified} (expires)",
        ]

    def migrate(self) -> None:
        """Create the schema, table and expiry index now, if they are missing.

        What ``wsgisession migrate --store URL`` runs; idempotent.
        """
        self._run(self._get_pool(), self._ensure_table)

    # -- the store -----------------------------------------------------------

    def load(self, key: str) -> dict[str, bytes] | None:
        """The live record under *key*: one prepared ``SELECT``."""
        pool = self._get_pool()
        sql = self._sql["load"]
        row = self._run(pool, lambda conn: conn.execute(sql, (key,)).fetchone())
        if row is None:
            return None
        try:
            data = row[0]
            if not isinstance(data, dict):
                raise ValueError(f"the record is {a(type(data).__name__)}, not an object")
            return {unfield(field): decode_value(value) for field, value in data.items()} or None
        except ValueError as exc:
            log.warning("deleted a corrupt session record (%s); starting a fresh session", exc)
            self.delete(key)
            return None

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Merge *changed*, drop *removed* and set the expiry: one prepared statement."""
        Jsonb = self._psycopg.types.json.Jsonb
        params = {
            "key": key,
            "changed": Jsonb({field_name(f): encode_value(value) for f, value in changed.items()}),
            "removed": [field_name(field) for field in removed],
            "ttl": int(ttl),
        }
        sql = self._sql["create" if create else "update"]
        pool = self._get_pool()

        def work(conn: Any) -> bool | None:
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            if row[0]:
                # Left with no fields: the record is deleted, unless a concurrent
                # save has filled it again meanwhile.
                conn.execute(self._sql["delete_empty"], (key,))
            return True

        written = self._run(pool, work)
        if self.gc_interval is not None:
            now = time.monotonic()
            if now >= self._next_gc:
                self._next_gc = now + self.gc_interval
                try:
                    self.gc(limit=500)
                except StoreUnavailable as exc:
                    log.warning("could not purge expired sessions: %s", exc)
        return bool(written)

    def delete(self, key: str) -> None:
        """Delete the record under *key*: one ``DELETE``."""
        sql = self._sql["delete"]
        self._run(self._get_pool(), lambda conn: conn.execute(sql, (key,)))

    def touch(self, key: str, ttl: int) -> None:
        """Make the record live *ttl* seconds from now, if it is still live."""
        sql = self._sql["touch"]
        self._run(self._get_pool(), lambda conn: conn.execute(sql, (int(ttl), key)))

    def gc(self, *, limit: int | None = 1000) -> int:
        """Delete up to *limit* expired rows now, oldest first; returns how many.

        One short statement that skips rows other transactions hold, so it never
        makes a request wait, and reads its batch from the expiry index, so it reads
        the rows it deletes, never the whole table; call it again until it returns
        less than *limit* (``wsgisession gc --store URL`` does).

        :param limit: Rows per call; ``None`` deletes every expired row at once.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, not {limit!r}")
        sql = self._sql["gc"]
        batch = 2**31 - 1 if limit is None else limit
        return int(self._run(self._get_pool(), lambda conn: conn.execute(sql, (batch,)).rowcount))

    def _record_keys(self) -> Iterator[str]:
        sql, after = self._sql["keys"], ""
        while True:
            batch = partial(_fetch, sql, (after, 1000))
            rows = self._run(self._get_pool(), batch)
            yield from (str(key) for (key,) in rows)
            if len(rows) < 1000:
                return
            after = str(rows[-1][0])

    def _replace_fields(self, key: str, replacements: Sequence[Replacement]) -> None:
        Jsonb = self._psycopg.types.json.Jsonb

        def work(conn: Any) -> None:
            with conn.transaction():
                row = conn.execute(self._sql["lock"], (key,)).fetchone()
                if row is None or not isinstance(row[0], dict):
                    return
                data = row[0]
                for old in replacements:
                    field = field_name(old.field)
                    if field not in data or data[field] != encode_value(old.value):
                        continue
                    if old.new_field is not None and old.new_value is not None:
                        data[field_name(old.new_field)] = encode_value(old.new_value)
                    del data[field]
                conn.execute(self._sql["set_data"], (Jsonb(data), key))

        self._run(self._get_pool(), work)

    def close(self) -> None:
        """Close this process's connection pool; the store opens a new one on next use."""
        with self._lock:
            pool, self._pool = self._pool, None
            mine = self._pid == os.getpid()
        if pool is not None and mine:
            pool.close()

    def __repr__(self) -> str:
        encrypt = ", encrypt=True" if self.encrypt else ""
        return f"PostgresStore({self._where!r}, table={self.qualified!r}{encrypt})"


def _fetch(sql: str, params: tuple[Any, ...], conn: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
    return rows


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a ``postgresql://`` store URL into the libpq URL and the store's options."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {name: value for name, value in query if name in _OWN_OPTIONS}
    rest = urlencode([(name, value) for name, value in query if name not in _OWN_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), own
