"""Scale: LRUStore memory per session, and store latency with many sessions stored.

Records are shaped exactly as the middleware saves the benchmark session (one
serialized field per key, under ``sha256(id)``), but are written straight into the
store or its database in bulk: SQLite with ``executemany`` in one transaction
(sorted keys, a fresh file per size), Redis with pipelines. Latencies are single
``load`` / ``save`` calls on random stored sessions, each timed on its own.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import SESSION, RedisTarget
from wsgisession import LRUStore, RedisStore, ServerSessionStore, SQLiteStore, serialization

TTL = 86400
FIELDS = {key: serialization.dumps(value).encode("ascii") for key, value in SESSION.items()}


def _key(i: int) -> str:
    return hashlib.sha256(b"bench-session-%d" % i).hexdigest()


def _record(i: int) -> dict[str, bytes]:
    # Distinct bytes objects per session, as real records have.
    record = {field: bytes(memoryview(value)) for field, value in FIELDS.items()}
    record["user_id"] = b"%d" % i
    return record


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lru_memory(count: int) -> dict[str, Any]:
    """Bytes per session held in an LRUStore of *count* sessions."""
    gc.collect()
    rss_before = _rss() if os.path.exists("/proc/self/statm") else 0
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    store = LRUStore(max_entries=count)
    for i in range(count):
        store.save(_key(i), _record(i), (), TTL, create=True)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss = _rss() - rss_before if rss_before else 0
    result = {
        "sessions": len(store),
        "bytes_per_session_tracemalloc": traced / count,
        "bytes_per_session_rss": rss / count if rss else None,
        "payload_bytes_per_session": sum(len(v) for v in _record(count).values()),
        "fill_seconds": time.perf_counter() - started,
    }
    del store
    gc.collect()
    return result


def _latency(operation: Callable[[str], object], keys: list[str]) -> dict[str, float]:
    timings = []
    for key in keys:
        start = time.perf_counter()
        operation(key)
        timings.append((time.perf_counter() - start) * 1e6)
    timings.sort()
    return {
        "min": timings[0],
        "median": statistics.median(timings),
        "p90": timings[int(len(timings) * 0.9)],
    }


def _store_latency(store: ServerSessionStore, count: int, samples: int) -> dict[str, Any]:
    rng = random.Random(count)
    keys = [_key(rng.randrange(count)) for _ in range(samples)]
    for key in keys[:20]:  # warm up connections and caches
        store.load(key)
    changed = {"counter": b"1"}

    def load(key: str) -> None:
        if store.load(key) is None:
            raise RuntimeError("a stored session was not found")

    def save(key: str) -> None:
        store.save(key, changed, (), TTL, create=False)

    return {"load_us": _latency(load, keys), "save_us": _latency(save, keys)}


def sqlite_latency(count: int, tmp: Path, samples: int) -> dict[str, Any]:
    path = tmp / f"scale-{count}.sqlite3"
    store = SQLiteStore(path)
    store.load(_key(0))  # creates the schema
    started = time.perf_counter()
    keys = sorted((_key(i), i) for i in range(count))
    expires = time.time() + TTL
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO wsgisession_records (key, expires) VALUES (?, ?)",
                ((key, expires) for key, _ in keys),
            )
            conn.executemany(
                "INSERT INTO wsgisession_fields (key, field, value) VALUES (?, ?, ?)",
                _field_rows(keys),
            )
    finally:
        conn.close()
    del keys
    fill = time.perf_counter() - started
    try:
        result = _store_latency(store, count, samples)
    finally:
        store.close()
    result |= {"fill_seconds": fill, "file_bytes": path.stat().st_size}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return result


def _field_rows(keys: list[tuple[str, int]]) -> Iterator[tuple[str, str, bytes]]:
    for key, i in keys:
        for field, value in sorted(_record(i).items()):
            yield key, field, value


def redis_latency(counts: list[int], redis: RedisTarget, samples: int) -> dict[int, dict[str, Any]]:
    """Grow one Redis store through *counts* sessions, measuring at each size."""
    prefix = redis.prefix + "scale:"
    store = RedisStore(redis.url, prefix=prefix)
    client = store.client
    results: dict[int, dict[str, Any]] = {}
    stored = 0
    try:
        for count in counts:
            started = time.perf_counter()
            for start in range(stored, count, 1000):
                pipe = client.pipeline(transaction=False)
                for i in range(start, min(count, start + 1000)):
                    name = prefix + _key(i)
                    pipe.hset(name, mapping=_record(i))
                    pipe.expire(name, TTL)
                pipe.execute()
            stored = count
            fill = time.perf_counter() - started
            results[count] = _store_latency(store, count, samples) | {"fill_seconds": fill}
            results[count]["used_memory"] = int(client.info("memory")["used_memory"])
    finally:
        for start in range(0, stored, 1000):
            client.unlink(*(prefix + _key(i) for i in range(start, min(stored, start + 1000))))
        store.close()
    return results


def measure(
    counts: list[int], redis: RedisTarget | None, tmp: Path, samples: int
) -> dict[str, Any]:
    started = time.perf_counter()
    sqlite = {count: sqlite_latency(count, tmp, samples) for count in counts}
    redis_results = redis_latency(counts, redis, samples) if redis is not None else {}
    lru = lru_memory(max(counts))
    return {
        "sessions": counts,
        "lru_memory": lru,
        "sqlite": sqlite,
        "redis": redis_results,
        "samples": samples,
        "seconds": time.perf_counter() - started,
    }
