"""The per-user session index of PostgresStore (see :class:`~wsgisession.stores.SessionIndex`).

Two tables beside the session table, in its schema: ``<table>_devices`` (one row
per user and handle, pointing at a record key) and ``<table>_stamps`` (one "not
before" stamp per user), created on the first use of the index. Moving an entry is
an ``UPDATE … WHERE key = expected`` (a compare-and-set: under READ COMMITTED it
waits for a revocation holding the row, then finds the row gone), and a revocation
deletes the entry and the record in one transaction. A login under a cap on
sessions counts, evicts and inserts in one transaction that holds an advisory lock
for its user.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from .base import IndexEntry, SessionIndex

T = TypeVar("T")

_SQL = {
    "insert": (
        "INSERT INTO DEVICES (uid, handle, key, info, expires)"
        " VALUES (%s, %s, %s, %s, now() + %s::integer * interval '1 second')"
        " ON CONFLICT (uid, handle) DO NOTHING"
    ),
    "move": (
        "UPDATE DEVICES SET key = %s, info = %s,"
        " expires = now() + %s::integer * interval '1 second'"
        " WHERE uid = %s AND handle = %s AND key = %s"
    ),
    "list": (
        "SELECT d.handle, d.key, d.info, coalesce(r.expires > now(), false)"
        " FROM DEVICES AS d LEFT JOIN TABLE AS r ON r.key = d.key"
        " WHERE d.uid = %s AND d.expires > now()"
    ),
    "forget": "DELETE FROM DEVICES WHERE uid = %s AND handle = %s AND key = %s",
    "revoke": "DELETE FROM DEVICES WHERE uid = %s AND handle = %s RETURNING key",
    "delete_record": "DELETE FROM TABLE WHERE key = %s",
    "get_stamp": "SELECT value FROM STAMPS WHERE uid = %s AND expires > now()",
    "set_stamp": (
        "INSERT INTO STAMPS (uid, value, expires)"
        " VALUES (%s, %s, now() + %s::integer * interval '1 second')"
        " ON CONFLICT (uid) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires"
    ),
    "gc": "DELETE FROM DEVICES WHERE expires <= now()",
    # A transaction-scoped lock per user (the two-key form: a key space of its own),
    # so the logins of one user are counted one after the other.
    "lock_user": "SELECT pg_advisory_xact_lock(hashtext('DEVICES'), hashtext(%s))",
    "admit_list": (
        "SELECT d.handle, d.key, coalesce(r.expires > now(), false) AND d.expires > now()"
        " FROM DEVICES AS d LEFT JOIN TABLE AS r ON r.key = d.key WHERE d.uid = %s"
    ),
    "evict": "DELETE FROM DEVICES WHERE uid = %s AND handle = ANY(%s) RETURNING handle, key, info",
    "delete_records": "DELETE FROM TABLE WHERE key = ANY(%s)",
}


class PostgresIndex(SessionIndex):
    """The :class:`SessionIndex` methods of :class:`~wsgisession.stores.postgres.PostgresStore`."""

    schema: str | None
    table: str
    qualified: str

    def _get_pool(self) -> Any:
        raise NotImplementedError  # PostgresStore's

    def _run(self, pool: Any, work: Callable[[Any], T]) -> T:
        raise NotImplementedError  # PostgresStore's

    def _check_relations(
        self, conn: Any, *, created: bool = False, index_tables: bool = False
    ) -> None:
        raise NotImplementedError  # PostgresStore's

    def _index_names(self) -> tuple[str, str]:
        prefix = f'"{self.schema}".' if self.schema else ""
        return f'{prefix}"{self.table}_devices"', f'{prefix}"{self.table}_stamps"'

    def index_ddl(self) -> list[str]:
        """The statements that create the index tables, if missing."""
        devices, stamps = self._index_names()
        return [
            f"CREATE TABLE IF NOT EXISTS {devices} (uid text NOT NULL, handle text NOT NULL,"
            " key text NOT NULL, info bytea NOT NULL, expires timestamptz NOT NULL,"
            " PRIMARY KEY (uid, handle))",
            f"CREATE TABLE IF NOT EXISTS {stamps} (uid text PRIMARY KEY,"
            " value double precision NOT NULL, expires timestamptz NOT NULL)",
        ]

    def _index(self, work: Callable[[Any, dict[str, str]], T]) -> T:
        if getattr(self, "_index_sql", None) is None:
            devices, stamps = self._index_names()
            lock: threading.Lock = self.__dict__.setdefault("_index_lock", threading.Lock())
            with lock:

                def create(conn: Any) -> None:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (devices,))
                        for statement in self.index_ddl():
                            conn.execute(statement)
                    self._check_relations(conn, index_tables=True)

                self._run(self._get_pool(), create)
                self._index_sql = {
                    name: sql.replace("DEVICES", devices)
                    .replace("STAMPS", stamps)
                    .replace("TABLE", self.qualified)
                    for name, sql in _SQL.items()
                }
        sql = self._index_sql
        return self._run(self._get_pool(), lambda conn: work(conn, sql))

    def index_put(
        self, user: str, handle: str, key: str, info: bytes, ttl: int, *, expect: str | None
    ) -> bool:
        """Compare-and-set the entry: one ``INSERT … DO NOTHING`` or ``UPDATE … WHERE``."""
        if expect is None:
            params: tuple[Any, ...] = (user, handle, key, info, int(ttl))
            return bool(self._index(lambda c, s: c.execute(s["insert"], params).rowcount))
        params = (key, info, int(ttl), user, handle, expect)
        return bool(self._index(lambda c, s: c.execute(s["move"], params).rowcount))

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
        """Count, evict and add in one transaction under a per-user advisory lock.

        See the base class. Row locks would not do: a concurrent login inserts a new
        row, which no ``SELECT … FOR UPDATE`` of the existing ones can lock.
        """
        evicted = list(evict)

        def work(conn: Any, sql: dict[str, str]) -> list[IndexEntry] | None:
            with conn.transaction():
                conn.execute(sql["lock_user"], (user,))
                rows = conn.execute(sql["admit_list"], (user,)).fetchall()
                current = next((k for h, k, _ in rows if h == handle), None)
                kept = sum(1 for h, _, live in rows if live and h not in evicted)
                if current is not None or kept >= limit:
                    return [] if current == key else None
                removed = conn.execute(sql["evict"], (user, evicted)) if evicted else None
                ended = [IndexEntry(h, k, bytes(i)) for h, k, i in removed or ()]
                if ended:
                    conn.execute(sql["delete_records"], ([entry.key for entry in ended],))
                conn.execute(sql["insert"], (user, handle, key, info, int(ttl)))
            return ended

        return self._index(work)

    def index_list(self, user: str) -> list[IndexEntry]:
        """The entries of *user* whose record is live, in one join; dead ones are dropped."""

        def work(conn: Any, sql: dict[str, str]) -> list[IndexEntry]:
            rows = conn.execute(sql["list"], (user,)).fetchall()
            for handle, key, _, live in rows:
                if not live:
                    conn.execute(sql["forget"], (user, handle, key))
            return [IndexEntry(h, k, bytes(info)) for h, k, info, live in rows if live]

        return self._index(work)

    def index_revoke(self, user: str, handle: str) -> bool:
        """Delete the entry and its record in one transaction."""

        def work(conn: Any, sql: dict[str, str]) -> bool:
            with conn.transaction():
                row = conn.execute(sql["revoke"], (user, handle)).fetchone()
                if row is None:
                    return False
                conn.execute(sql["delete_record"], (row[0],))
            return True

        return self._index(work)

    def index_forget(self, user: str, handle: str, key: str) -> None:
        """Drop the entry if it still points at *key*."""
        self._index(lambda c, s: c.execute(s["forget"], (user, handle, key)))

    def get_not_before(self, user: str) -> float | None:
        """The stamp of *user*, if set and not expired: one indexed ``SELECT``."""
        row = self._index(lambda c, s: c.execute(s["get_stamp"], (user,)).fetchone())
        return None if row is None else float(row[0])

    def set_not_before(self, user: str, when: float, ttl: int) -> None:
        """Set the stamp of *user* for *ttl* seconds."""
        self._index(lambda c, s: c.execute(s["set_stamp"], (user, when, int(ttl))))
