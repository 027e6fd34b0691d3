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
from .base import ServerSessionStore

__all__ = ["LRUStore"]


class LRUStore(ServerSessionStore):
    """Keep sessions in this process's memory, forgetting the least recently used.

    - ``load``, ``save``, ``delete`` and ``touch`` are O(1) (an ``OrderedDict`` in
      access order) and thread-safe;
    - a record expires *ttl* seconds after its last save or touch;
    - when more than *max_entries* sessions are kept, the least recently used one
      is dropped, so memory stays bounded however many clients come.

    ::

        app = SessionMiddleware(app, secret_key=KEY, store=LRUStore(max_entries=50_000))

    :param max_entries: The most sessions kept at once.
    :raises ConfigurationError: *max_entries* is not a positive integer.

    .. versionadded:: 0.1
    """

    process_local = True

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = count("max_entries", max_entries)
        # key -> (expiry time, record); least recently used first.
        self._entries: OrderedDict[str, tuple[float, dict[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of sessions held, expired ones not yet dropped included."""
        return len(self._entries)

    def _live(self, key: str, now: float) -> dict[str, bytes] | None:
        # Caller holds the lock.
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

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
                self._entries.pop(key, None)
                return True
            self._entries[key] = (now + ttl, record)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return True

    def delete(self, key: str) -> None:
        """Forget the record under *key*."""
        with self._lock:
            self._entries.pop(key, None)

    def touch(self, key: str, ttl: int) -> None:
        """Make the record under *key* live *ttl* seconds from now, if it is still live."""
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            if record is not None:
                self._entries[key] = (now + ttl, record)

    def __repr__(self) -> str:
        return f"LRUStore(max_entries={self.max_entries})"
