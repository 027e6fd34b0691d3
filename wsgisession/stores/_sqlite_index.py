"""The per-user session index of SQLiteStore (see :class:`~wsgisession.stores.SessionIndex`).

Two tables beside the records: ``wsgisession_devices`` (one row per user and
handle, pointing at a record key) and ``wsgisession_stamps`` (one "not before"
stamp per user). Every change is one ``BEGIN IMMEDIATE`` transaction, so a
revocation and a request moving the same entry are serialized by SQLite itself, and
so are two logins counted against a cap on sessions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager

from .base import IndexEntry, SessionIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS wsgisession_devices (
    user TEXT NOT NULL,
    handle TEXT NOT NULL,
    key TEXT NOT NULL,
    info BLOB NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (user, handle)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wsgisession_devices_expires ON wsgisession_devices (expires);
CREATE TABLE IF NOT EXISTS wsgisession_stamps (
    user TEXT PRIMARY KEY,
    value REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""

_LIST = """
SELECT d.handle, d.key, d.info, r.expires > ? FROM wsgisession_devices AS d
LEFT JOIN wsgisession_records AS r ON r.key = d.key
WHERE d.user = ?
"""


def purge(conn: sqlite3.Connection, now: float) -> None:
    """Drop expired index entries and stamps (inside the caller's transaction)."""
    conn.execute("DELETE FROM wsgisession_devices WHERE expires <= ?", (now,))
    conn.execute("DELETE FROM wsgisession_stamps WHERE expires <= ?", (now,))


def _blob(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class SQLiteIndex(SessionIndex):
    """The :class:`SessionIndex` methods of :class:`~wsgisession.SQLiteStore`."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SQLiteStore's

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            if conn.in_transaction:  # not rolled back
                conn.execute("COMMIT")

    def index_put(
        self, user: str, handle: str, key: str, info: bytes, ttl: int, *, expect: str | None
    ) -> bool:
        """Compare-and-set the entry in one transaction; see the base class."""
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT key FROM wsgisession_devices WHERE user = ? AND handle = ?",
                (user, handle),
            ).fetchone()
            if (row[0] if row is not None else None) != expect:
                conn.execute("ROLLBACK")
                return False
            conn.execute(
                "INSERT OR REPLACE INTO wsgisession_devices (user, handle, key, info, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (user, handle, key, info, now + ttl),
            )
        return True

    def index_admit(
        self,
        user: str,
        handle: str,
        key: str,
        info: bytes,
        ttl: int,
        *,
        limit: int,
        evict: Collection[str] = (),
    ) -> list[IndexEntry] | None:
        """Count, evict and add in one ``BEGIN IMMEDIATE`` transaction; see the base class.

        The transaction holds SQLite's write lock from its first statement, so two
        logins of one user (or of any users) are counted one after the other.
        """
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute(_LIST, (now, user)).fetchall()
            current = next((str(k) for h, k, _, _ in rows if h == handle), None)
            kept = sum(1 for h, _, _, live in rows if live and h not in evict)
            if current is not None or kept >= limit:
                conn.execute("ROLLBACK")
                return [] if current == key else None
            ended = [IndexEntry(str(h), str(k), _blob(i)) for h, k, i, _ in rows if h in evict]
            for entry in ended:
                conn.execute("DELETE FROM wsgisession_fields WHERE key = ?", (entry.key,))
                conn.execute("DELETE FROM wsgisession_records WHERE key = ?", (entry.key,))
            conn.executemany(
                "DELETE FROM wsgisession_devices WHERE user = ? AND handle = ?",
                [(user, entry.handle) for entry in ended],
            )
            conn.execute(
                "INSERT INTO wsgisession_devices (user, handle, key, info, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (user, handle, key, info, now + ttl),
            )
        return ended

    def index_list(self, user: str) -> list[IndexEntry]:
        """The entries of *user* whose record is live, in one join; dead ones are dropped."""
        now = time.time()
        with self._connection() as conn:
            rows = conn.execute(_LIST, (now, user)).fetchall()
            dead = [(user, str(handle), str(key)) for handle, key, _, live in rows if not live]
            if dead:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "DELETE FROM wsgisession_devices WHERE user = ? AND handle = ? AND key = ?",
                    dead,
                )
                conn.execute("COMMIT")
        return [IndexEntry(str(h), str(k), _blob(info)) for h, k, info, live in rows if live]

    def index_revoke(self, user: str, handle: str) -> bool:
        """Delete the record and the entry in one transaction."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT key FROM wsgisession_devices WHERE user = ? AND handle = ?",
                (user, handle),
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return False
            conn.execute("DELETE FROM wsgisession_fields WHERE key = ?", (row[0],))
            conn.execute("DELETE FROM wsgisession_records WHERE key = ?", (row[0],))
            conn.execute(
                "DELETE FROM wsgisession_devices WHERE user = ? AND handle = ?", (user, handle)
            )
        return True

    def index_forget(self, user: str, handle: str, key: str) -> None:
        """Drop the entry if it still points at *key*."""
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM wsgisession_devices WHERE user = ? AND handle = ? AND key = ?",
                (user, handle, key),
            )

    def get_not_before(self, user: str) -> float | None:
        """The stamp of *user*, if set and not expired: one indexed ``SELECT``."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT value FROM wsgisession_stamps WHERE user = ? AND expires > ?",
                (user, time.time()),
            ).fetchone()
        return None if row is None else float(row[0])

    def set_not_before(self, user: str, when: float, ttl: int) -> None:
        """Set the stamp of *user* for *ttl* seconds."""
        with self._connection() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO wsgisession_stamps (user, value, expires) VALUES (?, ?, ?)",
                (user, when, time.time() + ttl),
            )
