"""The one fake store of the test suite: the README's custom store, a dict with expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping

from wsgisession import ServerSessionStore


class DictStore(ServerSessionStore):
    """A server-side store in a dict, with a lock and expiry times, as in the README."""

    def __init__(self, default_ttl: int = 3600) -> None:
        self.default_ttl = default_ttl
        self.records: dict[str, tuple[float, dict[str, bytes]]] = {}
        self.lock = threading.Lock()

    def load(self, key: str) -> dict[str, bytes] | None:
        with self.lock:
            expires, record = self.records.get(key, (0.0, {}))
            return dict(record) if expires > time.time() else None

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        with self.lock:
            expires, record = self.records.get(key, (0.0, {}))
            if expires <= time.time():
                if not create:
                    return False
                record = {}
            record = {**record, **changed}
            for field in removed:
                record.pop(field, None)
            if record:
                self.records[key] = (time.time() + ttl, record)
            else:
                self.records.pop(key, None)
            return True

    def delete(self, key: str) -> None:
        with self.lock:
            self.records.pop(key, None)

    def touch(self, key: str, ttl: int) -> None:
        with self.lock:
            if key in self.records:
                self.records[key] = (time.time() + ttl, self.records[key][1])
