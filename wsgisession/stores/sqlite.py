"""SQLiteStore: sessions in an SQLite file, shared by every process on one machine.

The embedded default for server-side sessions: no service to run, and correct
under gunicorn with several workers and threads, because SQLite itself arbitrates
between them:

- the database runs in WAL mode, so readers never wait for a writer;
- a save is one ``BEGIN IMMEDIATE`` transaction that merges the changed fields
  (one row per session key), so concurrent requests changing different keys of the
  same session both land, and a save for a session deleted meanwhile (a logout)
  writes nothing;
- a writer that finds the database locked waits up to *busy_timeout* before the
  request gets a ``503``;
- connections are opened lazily, each used by one thread at a time, and never
  reused across ``fork()``: a worker forked from a process that had already used
  the store opens its own.

When *not* to use it: with several machines (use
:class:`~wsgisession.RedisStore`), or with the file on a network filesystem (NFS,
SMB), where SQLite's locking is unreliable.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..errors import ConfigurationError, StoreUnavailable
from . import _sqlite_index
from ._sealing import SealableStore
from ._sqlite_index import SQLiteIndex

if TYPE_CHECKING:
    from ._sealed import Replacement

__all__ = ["SQLiteStore"]

#: The layout of the database this code reads and writes, kept in the file as
#: ``PRAGMA user_version``. Raise it with a new entry in :data:`_MIGRATIONS`.
SCHEMA_VERSION = 2

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS wsgisession_records (
    key TEXT PRIMARY KEY,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wsgisession_records_expires ON wsgisession_records (expires);
CREATE TABLE IF NOT EXISTS wsgisession_fields (
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (key, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wsgisession_meta (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO wsgisession_meta (name, value) VALUES ('last_gc', 0);
"""

#: Version -> the statements that bring a database from the version before to it.
#: Version 1 is also what files made before versions existed hold (``user_version``
#: 0), and its statements are idempotent, so those files migrate in place.
#: Version 2 adds the per-user session index (device tracking).
_MIGRATIONS = {1: _SCHEMA_1, 2: _sqlite_index.SCHEMA}

#: Version -> the tables a database of that version holds.
_TABLES = {1: frozenset({"wsgisession_records", "wsgisession_fields", "wsgisession_meta"})}
_TABLES[2] = _TABLES[1] | {"wsgisession_devices", "wsgisession_stamps"}

_LOAD = """
SELECT f.field, f.value FROM wsgisession_records AS r
JOIN wsgisession_fields AS f ON f.key = r.key
WHERE r.key = ? AND r.expires > ?
"""


def _tables(conn: sqlite3.Connection) -> frozenset[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) != 'sqlite_'"
    ).fetchall()
    return frozenset(str(name) for (name,) in rows)


class SQLiteStore(SQLiteIndex, SealableStore):
    """Keep sessions in an SQLite database file.

    - one row per session key, so a save writes only the keys that changed;
    - a per-user index of sessions (:class:`~wsgisession.stores.SessionIndex`) for
      device listing and revocation, in two more tables;
    - a record lives *ttl* seconds after its last save or touch; expired rows are
      invisible at once and purged by :meth:`gc`, which saves also run
      opportunistically, at most once per *gc_interval* across all processes;
    - a database locked beyond *busy_timeout*, a path that cannot be opened or
      written, or a file that is not an SQLite database (or is damaged) raises
      :class:`~wsgisession.errors.StoreUnavailable` naming the file: the client
      gets a ``503`` and the log says what to fix. The store opens nothing when
      it is made; :class:`~wsgisession.SessionMiddleware` calls :meth:`ping` when
      it is created (unless ``check_store=False``), so such a path fails at
      start-up with that message instead.

    ::

        store = SQLiteStore("/var/lib/myapp/sessions.sqlite3")
        app = SessionMiddleware(app, secret_key=KEY, store=store)

    :param path: The database file, created on first use. A relative path is
        resolved against the working directory when the store is created. The
        directory must be writable too: SQLite keeps ``-wal`` and ``-shm`` files
        beside the database.
    :param busy_timeout: Seconds a write waits for another process's write to end.
    :param gc_interval: Seconds between opportunistic purges of expired sessions.
    :param encrypt: Seal each value with AES-256-GCM, under a key derived from the
        middleware's secret key, and store keyed hashes of the session's key names
        (needs ``pip install "sessionlayer[crypto]"``): a copy of the file holds
        no session data. Records written in clear before are still read, and sealed
        when next loaded or by ``wsgisession migrate --encrypt``
        (``store.encrypt_records(keys)``).
    :raises ConfigurationError: an in-memory path, a negative timeout, or
        ``encrypt=True`` without the cryptography package.
    """

    ping_at_start = True
    seal_purpose = "wsgisession.store:sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = "wsgisession.sqlite3",
        *,
        busy_timeout: float = 5.0,
        gc_interval: float = 60.0,
        encrypt: bool = False,
    ) -> None:
        path = os.fspath(path)
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ConfigurationError(
                f"SQLiteStore needs a file path, not {path!r}: an in-memory database is"
                " private to one connection; use LRUStore() for in-process sessions"
            )
        for name, value in (("busy_timeout", busy_timeout), ("gc_interval", gc_interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(
                    f"SQLiteStore {name} must be a number of seconds >= 0, not {value!r}"
                )
        self._init_encrypt(encrypt)
        self.path = os.path.abspath(path)
        self.busy_timeout = float(busy_timeout)
        self.gc_interval = float(gc_interval)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[sqlite3.Connection] = []
        self._opened: list[sqlite3.Connection] = []
        # Connections a forked child inherited: never used nor closed there, since
        # closing one could checkpoint or unlock the parent's database state.
        self._inherited: list[sqlite3.Connection] = []
        self._next_gc = 0.0

    # -- connections ---------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            # Checked before anything is written: the file may be another program's.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_layout(version, _tables(conn))
            conn.execute("PRAGMA journal_mode=WAL")
            # Safe with WAL: a power cut may lose the last saves, never corrupt.
            conn.execute("PRAGMA synchronous=NORMAL")
            if version != SCHEMA_VERSION:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # One process migrates; the others wait on the lock, then find it done.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_layout(version, _tables(conn))
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _check_layout(self, version: int, tables: frozenset[str]) -> None:
        # Migrating is only safe from a layout this code made: anything else would
        # fail later on every request, or add our tables to another program's file.
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the session database {self.path!r} has schema version {version}, made by a"
                f" newer wsgisession; this one reads version {SCHEMA_VERSION}: upgrade"
                " wsgisession in every process that uses the file"
            )
        if version < 0:
            why = f"its PRAGMA user_version is {version}, which no wsgisession writes"
        elif version == 0:
            # A new, empty file, or one from before versions existed (some of ours).
            if not tables or tables & _TABLES[1]:
                return
            shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
            why = f"it holds other tables ({shown}) and none of wsgisession's"
        else:
            missing = _TABLES[version] - tables
            if not missing:
                return
            why = (
                f"its PRAGMA user_version is {version}, as wsgisession writes, but it has"
                f" no table {', '.join(sorted(missing))}"
            )
        raise self._not_ours(why)

    def _not_ours(self, why: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"the file {self.path!r} is not a wsgisession database: {why}; point"
            " SQLiteStore at a file of its own (it is created on first use), or move this"
            " one aside if it was a session database that got damaged"
        )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        pid = os.getpid()
        with self._lock:
            if pid != self._pid:
                self._inherited.extend(self._opened)
                self._opened, self._idle, self._pid = [], [], pid
                self._next_gc = 0.0
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._open()
                with self._lock:
                    self._opened.append(conn)
            yield conn
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            if conn is not None:
                if conn.in_transaction:
                    conn.rollback()
                with self._lock:
                    if self._pid == pid:
                        self._idle.append(conn)

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        code = getattr(exc, "sqlite_errorname", "")
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StoreUnavailable(
                f"the session database {self.path!r} stayed locked longer than busy_timeout"
                f" ({self.busy_timeout:g} s): {exc}; a long transaction in another process"
                " holds it, or raise busy_timeout"
            )
        if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return StoreUnavailable(
                f"the session database {self.path!r} is not an SQLite database or is"
                f" damaged: {exc}; move the file (and its -wal and -shm files) aside, and"
                " a new database is created on the next request (the sessions in it are"
                " lost), or point SQLiteStore at another path"
            )
        if str(exc).startswith("no such table: wsgisession_"):
            # Dropped after this process checked the file (see _check_layout).
            return self._not_ours(f"{exc}")
        return StoreUnavailable(
            f"cannot use the session database {self.path!r}: {exc}; check that its"
            " directory exists and that the directory and file are writable by this"
            " process"
        )

    # -- the store -----------------------------------------------------------

    def load(self, key: str) -> dict[str, bytes] | None:
        """The live record under *key*, in one ``SELECT``."""
        with self._connection() as conn:
            rows = conn.execute(_LOAD, (key, time.time())).fetchall()
        if not rows:
            return None
        return {
            str(field): value if isinstance(value, bytes) else str(value).encode()
            for field, value in rows
        }

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Merge *changed* and drop *removed* in one ``BEGIN IMMEDIATE`` transaction."""
        now = time.time()
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT expires FROM wsgisession_records WHERE key = ?", (key,)
            ).fetchone()
            if row is None or row[0] <= now:
                if not create:
                    conn.execute("ROLLBACK")
                    return False
                if row is not None:
                    self._delete(conn, key)
            conn.executemany(
                "INSERT OR REPLACE INTO wsgisession_fields (key, field, value) VALUES (?, ?, ?)",
                [(key, field, value) for field, value in changed.items()],
            )
            conn.executemany(
                "DELETE FROM wsgisession_fields WHERE key = ? AND field = ?",
                [(key, field) for field in removed],
            )
            if (
                changed
                or conn.execute(
                    "SELECT 1 FROM wsgisession_fields WHERE key = ? LIMIT 1", (key,)
                ).fetchone()
            ):
                conn.execute(
                    "INSERT OR REPLACE INTO wsgisession_records (key, expires) VALUES (?, ?)",
                    (key, now + ttl),
                )
            else:
                self._delete(conn, key)
            if now >= self._next_gc:
                self._next_gc = now + self.gc_interval
                self._gc_if_due(conn, now)
            conn.execute("COMMIT")
        return True

    def delete(self, key: str) -> None:
        """Delete the record under *key* and its fields."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            self._delete(conn, key)
            conn.execute("COMMIT")

    def touch(self, key: str, ttl: int) -> None:
        """Make the record live *ttl* seconds from now, if it is still live."""
        now = time.time()
        with self._connection() as conn:
            conn.execute(
                "UPDATE wsgisession_records SET expires = ? WHERE key = ? AND expires > ?",
                (now + ttl, key, now),
            )

    def gc(self, *, limit: int | None = None) -> int:
        """Purge expired sessions now; returns how many were removed.

        Saves already do this at most once per *gc_interval*; call it from a
        scheduled job as well when the site is mostly read, since reads never purge
        (``wsgisession gc --store sqlite:///…`` does).

        :param limit: Purge at most this many sessions, in one short transaction:
            call again until it returns less than *limit*, so that a large purge
            never holds the write lock long enough to make requests wait.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, not {limit!r}")
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            removed = self._purge(conn, time.time(), limit)
            conn.execute("COMMIT")
        return removed

    def ping(self) -> None:
        """Open the database (creating or migrating it) and take its write lock, now.

        The connection is closed again, never pooled, so a worker forked afterwards
        inherits nothing.

        :raises StoreUnavailable: the message a request would log (a missing or
            unwritable directory or file, a file that is not a database). A lock
            held by another process beyond *busy_timeout* passes: it is transient.
        """
        conn = None
        try:
            conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE wsgisession_meta SET value = value WHERE name = 'last_gc'")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # Locked by another process's write: the file is a working database in
            # use, and the lock is transient. A worker (re)started meanwhile must
            # boot, or gunicorn stops the whole server.
            if not getattr(exc, "sqlite_errorname", "").startswith(
                ("SQLITE_BUSY", "SQLITE_LOCKED")
            ):
                raise self._unavailable(exc) from exc
        finally:
            if conn is not None:
                conn.close()

    def check_file(self) -> None:
        """Check the database as :meth:`ping` does, but create and change nothing.

        What ``wsgisession check`` runs: the file must exist, be a wsgisession
        database this version can use (an older layout, which the first write
        migrates, passes), and it and its directory must be writable by this
        process. It is only read, on a read-only connection; :meth:`ping` instead
        creates a missing file and migrates an old one.

        :raises StoreUnavailable: there is no file, it cannot be read or written, or
            it is not a wsgisession database; the message names the file.
        """
        if not os.path.isfile(self.path):
            raise StoreUnavailable(
                f"there is no session database at {self.path!r}: SQLiteStore creates it"
                " on first use; if the app has run, check the path"
            )
        for what, path in (("file", self.path), ("directory", os.path.dirname(self.path))):
            if not os.access(path, os.R_OK | os.W_OK):
                raise StoreUnavailable(
                    f"the session database {self.path!r} cannot be written: this process"
                    f" may not write its {what} {path!r} (SQLite writes -wal and -shm files"
                    " beside the database); give the app's user write access to both"
                )
        # A read-only connection to a WAL database creates the -wal and -shm files
        # when they are missing (no process has it open) and cannot remove them
        # again; with no -wal file, the database file holds everything, and reading
        # it as immutable touches nothing else.
        live = os.path.exists(self.path + "-wal")
        uri = f"file:{quote(self.path)}?{'mode=ro' if live else 'immutable=1'}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_layout(version, _tables(conn))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def close(self) -> None:
        """Close this process's idle connections; the store reopens them on next use."""
        with self._lock:
            if self._pid != os.getpid():
                return
            idle, self._idle = self._idle, []
            self._opened = [conn for conn in self._opened if conn not in idle]
        for conn in idle:
            conn.close()

    def _record_keys(self) -> Iterator[str]:
        after = ""
        while True:
            with self._connection() as conn:
                rows = conn.execute(
                    "SELECT key FROM wsgisession_records WHERE key > ? AND expires > ?"
                    " ORDER BY key LIMIT 1000",
                    (after, time.time()),
                ).fetchall()
            yield from (str(key) for (key,) in rows)
            if len(rows) < 1000:
                return
            after = str(rows[-1][0])

    def _replace_fields(self, key: str, replacements: Sequence[Replacement]) -> None:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            for old in replacements:
                # CAST: a file written by an older version may hold a value as TEXT.
                deleted = conn.execute(
                    "DELETE FROM wsgisession_fields"
                    " WHERE key = ? AND field = ? AND CAST(value AS BLOB) = ?",
                    (key, old.field, old.value),
                ).rowcount
                if deleted and old.new_field is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO wsgisession_fields (key, field, value)"
                        " VALUES (?, ?, ?)",
                        (key, old.new_field, old.new_value),
                    )
            conn.execute("COMMIT")

    def __repr__(self) -> str:
        encrypt = ", encrypt=True" if self.encrypt else ""
        return f"SQLiteStore({self.path!r}{encrypt})"

    # -- helpers (inside a transaction) --------------------------------------

    @staticmethod
    def _delete(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM wsgisession_fields WHERE key = ?", (key,))
        conn.execute("DELETE FROM wsgisession_records WHERE key = ?", (key,))

    def _gc_if_due(self, conn: sqlite3.Connection, now: float) -> None:
        # The shared timestamp keeps N worker processes to one purge per interval.
        due = conn.execute(
            "UPDATE wsgisession_meta SET value = ? WHERE name = 'last_gc' AND value <= ?",
            (now, now - self.gc_interval),
        ).rowcount
        if due:
            self._purge(conn, now)

    @staticmethod
    def _purge(conn: sqlite3.Connection, now: float, limit: int | None = None) -> int:
        _sqlite_index.purge(conn, now)
        if limit is not None:
            rows = conn.execute(
                "SELECT key FROM wsgisession_records WHERE expires <= ? LIMIT ?", (now, limit)
            ).fetchall()
            conn.executemany("DELETE FROM wsgisession_fields WHERE key = ?", rows)
            conn.executemany("DELETE FROM wsgisession_records WHERE key = ?", rows)
            return len(rows)
        conn.execute(
            "DELETE FROM wsgisession_fields WHERE key IN"
            " (SELECT key FROM wsgisession_records WHERE expires <= ?)",
            (now,),
        )
        return conn.execute("DELETE FROM wsgisession_records WHERE expires <= ?", (now,)).rowcount
