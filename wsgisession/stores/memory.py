"""LRUStore: sessions in the memory of one process.

The fastest server-side store and the simplest: no file, no service. Use it for a
single-process server (the development server, a one-worker deployment) and in
tests. Every operation is O(1) and guarded by one lock, so threaded servers are
safe; a full store forgets the least recently used session.

When *not* to use it: under a server with several worker processes (gunicorn
``--workers 4``) each process has its own sessions, so a user appears logged out
whenever a request lands on another worker. The middleware logs a warning when a
request says ``wsgi.multiprocess``. Use :class:`~wsgisession.SQLiteStore` (one
machine), :class:`~wsgisession.RedisStore` (several) or the cookie store, or a load
balancer with sticky sessions. Sessions also vanish when the process restarts.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping

from .._options import count
from .base import IndexEntry, ServerSessionStore, SessionIndex

__all__ = ["LRUStore"]

# Sweep every user's index for dead entries once per this many index writes, so
# users who never come back do not pin memory.
_SWEEP_EVERY = 1000

# Records that live this many seconds or less (the marker a regenerated session id
# leaves behind lives one second, or rotation_grace + 1) are also kept in expiry
# order and dropped as soon as they expire. Otherwise a burst of logins fills the
# store with dead markers, and a full store pushes out live sessions for them.
_SHORT_TTL = 300


class LRUStore(ServerSessionStore, SessionIndex):
    """Keep sessions in this process's memory, forgetting the least recently used.

    - ``load``, ``save``, ``delete`` and ``touch`` are O(1) (an ``OrderedDict`` in
      access order) and thread-safe;
    - a record expires *ttl* seconds after its last save or touch;
    - when more than *max_entries* sessions are kept, the least recently used one
      is dropped, so memory stays bounded however many clients come; short-lived
      records (five minutes or less, such as what a regenerated session id leaves
      behind for a second) are dropped as soon as they expire, so they never push
      out a live session;
    - a per-user index of sessions (:class:`~wsgisession.stores.SessionIndex`) for
      device listing and revocation, under the same lock.

    ::

        app = SessionMiddleware(app, secret_key=KEY, store=LRUStore(max_entries=50_000))

    :param max_entries: The most sessions kept at once.
    :raises ConfigurationError: *max_entries* is not a positive integer.
    """

    process_local = True

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = count("max_entries", max_entries)
        # key -> (expiry time, record); least recently used first.
        self._entries: OrderedDict[str, tuple[float, dict[str, bytes]]] = OrderedDict()
        # key -> expiry of the short-lived records among them, soonest first.
        self._short: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        # user -> handle -> (key, info, expiry); user -> (stamp, expiry)
        self._users: dict[str, dict[str, tuple[str, bytes, float]]] = {}
        self._stamps: dict[str, tuple[float, float]] = {}
        self._puts = 0

    def __len__(self) -> int:
        """The number of sessions held, expired ones not yet dropped included."""
        return len(self._entries)

    def _live(self, key: str, now: float) -> dict[str, bytes] | None:
        # Caller holds the lock.
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _put(self, key: str, record: dict[str, bytes], ttl: int, now: float) -> None:
        # Caller holds the lock.
        self._entries[key] = (now + ttl, record)
        self._entries.move_to_end(key)
        if ttl <= _SHORT_TTL:
            self._short[key] = now + ttl
            self._short.move_to_end(key)
        else:
            self._short.pop(key, None)

    def _drop(self, key: str) -> None:
        # Caller holds the lock.
        self._entries.pop(key, None)
        self._short.pop(key, None)

    def _purge(self, now: float) -> None:
        # Caller holds the lock. Short TTLs differ, so a record that expires later can
        # hold back one behind it, for at most _SHORT_TTL seconds.
        while self._short:
            key, expiry = next(iter(self._short.items()))
            if expiry > now:
                return
            self._drop(key)

    def load(self, key: str) -> dict[str, bytes] | None:
        """A copy of the record under *key*, or ``None``; marks it recently used."""
        with self._lock:
            record = self._live(key, time.time())
            return None if record is None else dict(record)

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Merge *changed* and drop *removed* under the lock; see the base class."""
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            if record is None:
                if not create:
                    return False
                record = {}
            record.update(changed)
            for field in removed:
                record.pop(field, None)
            if not record:
                self._drop(key)
                return True
            self._put(key, record, ttl, now)
            self._purge(now)
            while len(self._entries) > self.max_entries:
                self._short.pop(self._entries.popitem(last=False)[0], None)
        return True

    def delete(self, key: str) -> None:
        """Forget the record under *key*."""
        with self._lock:
            self._drop(key)

    def touch(self, key: str, ttl: int) -> None:
        """Make the record under *key* live *ttl* seconds from now, if it is still live."""
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            if record is not None:
                self._put(key, record, ttl, now)

    # -- the per-user index ----------------------------------------------------

    def _alive(self, key: str, now: float) -> bool:
        # Caller holds the lock; unlike _live(), listing devices is not a use.
        entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def _prune(self, user: str, now: float) -> dict[str, tuple[str, bytes, float]]:
        entries = self._users.get(user, {})
        for handle in [
            h for h, (k, _, exp) in entries.items() if exp <= now or not self._alive(k, now)
        ]:
            del entries[handle]
        if not entries:
            self._users.pop(user, None)
        return entries

    def index_put(
        self, user: str, handle: str, key: str, info: bytes, ttl: int, *, expect: str | None
    ) -> bool:
        """Compare-and-set the entry under the lock; see the base class."""
        now = time.time()
        with self._lock:
            entries = self._users.setdefault(user, {})
            current = entries.get(handle)
            if (current[0] if current is not None else None) != expect:
                return False
            entries[handle] = (key, info, now + ttl)
            self._written(now)
        return True

    def _written(self, now: float) -> None:
        # Caller holds the lock.
        self._puts += 1
        if self._puts % _SWEEP_EVERY == 0:
            for name in list(self._users):
                self._prune(name, now)
            self._stamps = {u: v for u, v in self._stamps.items() if v[1] > now}

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
        """Count, evict and add under the lock; see the base class."""
        now = time.time()
        with self._lock:
            entries = self._prune(user, now)
            current = entries.get(handle)
            if current is not None:
                return [] if current[0] == key else None
            if sum(1 for h in entries if h not in evict) >= limit:
                return None
            ended = []
            for name in evict:
                entry = entries.pop(name, None)
                if entry is not None:
                    self._drop(entry[0])
                    ended.append(IndexEntry(name, entry[0], entry[1]))
            entries[handle] = (key, info, now + ttl)
            self._users[user] = entries
            self._written(now)
        return ended

    def index_list(self, user: str) -> list[IndexEntry]:
        """The live entries of *user*; dead ones are dropped."""
        with self._lock:
            entries = self._prune(user, time.time())
            return [IndexEntry(h, key, info) for h, (key, info, _) in entries.items()]

    def index_revoke(self, user: str, handle: str) -> bool:
        """Delete the record and the entry together, under the lock."""
        with self._lock:
            entry = self._users.get(user, {}).pop(handle, None)
            if entry is None:
                return False
            self._drop(entry[0])
            return True

    def index_forget(self, user: str, handle: str, key: str) -> None:
        """Drop the entry if it still points at *key*."""
        with self._lock:
            entries = self._users.get(user, {})
            if handle in entries and entries[handle][0] == key:
                del entries[handle]

    def get_not_before(self, user: str) -> float | None:
        """The stamp of *user*, if set and not expired."""
        with self._lock:
            stamp = self._stamps.get(user)
        return stamp[0] if stamp is not None and stamp[1] > time.time() else None

    def set_not_before(self, user: str, when: float, ttl: int) -> None:
        """Set the stamp of *user* for *ttl* seconds."""
        with self._lock:
            self._stamps[user] = (when, time.time() + ttl)

    def __repr__(self) -> str:
        return f"LRUStore(max_entries={self.max_entries})"
