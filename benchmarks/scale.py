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

from benchmarks import memory
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


def _fill_lru(count: int) -> LRUStore:
    store = LRUStore(max_entries=count)
    for i in range(count):
        store.save(_key(i), _record(i), (), TTL, create=True)
    return store


def lru_memory(count: int) -> dict[str, Any]:
    """Bytes per session held in an LRUStore of *count* sessions.

    The RSS delta is taken at *count*; tracemalloc (exact, but slow and itself
    memory-hungry) on at most 100,000 sessions, in a second fill.
    """
    gc.collect()
    started = time.perf_counter()
    rss_before = _rss() if os.path.exists("/proc/self/statm") else 0
    store = _fill_lru(count)
    rss = _rss() - rss_before if rss_before else 0
    held = len(store)
    del store
    gc.collect()
    traced_count = min(count, 100_000)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = _fill_lru(traced_count)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del store
    gc.collect()
    return {
        "sessions": held,
        "bytes_per_session_rss": rss / count if rss else None,
        "tracemalloc_sessions": traced_count,
        "bytes_per_session_tracemalloc": traced / traced_count,
        "payload_bytes_per_session": sum(len(v) for v in _record(count).values()),
        "seconds": time.perf_counter() - started,
    }


def _any(rng: random.Random, count: int) -> int:
    return rng.randrange(count)


def _interleaved_latency(
    stores: dict[int, ServerSessionStore],
    samples: int,
    rounds: int = 5,
    pick: Callable[[random.Random, int], int] = _any,
) -> dict[int, dict[str, Any]]:
    """load/save latency of each store (by size), sampled in interleaved rounds.

    *pick* chooses the session (its index, below the store's size) of each sample:
    any by default; :mod:`benchmarks.scale_servers` skips those it stored expired.
    """
    rng = random.Random(7)
    changed = {"counter": b"1"}
    timings: dict[int, dict[str, list[float]]] = {n: {"load": [], "save": []} for n in stores}
    for count, store in stores.items():
        for _ in range(20):  # warm up connections and caches
            store.load(_key(pick(rng, count)))
    for _ in range(rounds):
        for count, store in stores.items():
            for _ in range(max(1, samples // rounds)):
                key = _key(pick(rng, count))
                start = time.perf_counter()
                if store.load(key) is None:
                    raise RuntimeError("a stored session was not found")
                loaded = time.perf_counter()
                store.save(key, changed, (), TTL, create=False)
                saved = time.perf_counter()
                timings[count]["load"].append((loaded - start) * 1e6)
                timings[count]["save"].append((saved - loaded) * 1e6)
    return {
        count: {f"{op}_us": _stats(values) for op, values in ops.items()}
        for count, ops in timings.items()
    }


def _stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "min": values[0],
        "median": statistics.median(values),
        "p90": values[int(len(values) * 0.9)],
        "p99": values[int(len(values) * 0.99)],
        "max": values[-1],
        "n": len(values),
    }


def _fill_sqlite(path: Path, count: int) -> tuple[SQLiteStore, dict[str, Any]]:
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
    # The database and its write-ahead log: rows not yet checkpointed live in the log.
    size = sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )
    fill = {"fill_seconds": time.perf_counter() - started, "file_bytes": size}
    return store, fill


def sqlite_latency(counts: list[int], tmp: Path, samples: int) -> dict[int, dict[str, Any]]:
    """One database file per size, filled in bulk, then sampled in interleaved rounds."""
    stores: dict[int, ServerSessionStore] = {}
    fills = {}
    try:
        for count in counts:
            stores[count], fills[count] = _fill_sqlite(tmp / f"scale-{count}.sqlite3", count)
        results = _interleaved_latency(stores, samples)
    finally:
        for count, store in stores.items():
            store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp}/scale-{count}.sqlite3{suffix}").unlink(missing_ok=True)
    return {count: results[count] | fills[count] for count in counts}


def _field_rows(keys: list[tuple[str, int]]) -> Iterator[tuple[str, str, bytes]]:
    for key, i in keys:
        for field, value in sorted(_record(i).items()):
            yield key, field, value


def redis_latency(counts: list[int], redis: RedisTarget, samples: int) -> dict[int, dict[str, Any]]:
    """Each size in its own database (a private server) or under its own prefix (shared)."""
    stores: dict[int, ServerSessionStore] = {}
    fills: dict[int, dict[str, Any]] = {}
    base_url = redis.url.rsplit("/", 1)[0]
    try:
        for index, count in enumerate(counts):
            url = f"{base_url}/{index + 1}" if redis.private else redis.url
            # The default prefix where the database is the size's own: MEMORY USAGE
            # counts the key, which a longer prefix moves to a larger allocation.
            prefix = "wsgisession:" if redis.private else f"{redis.prefix}scale{count}:"
            store = stores[count] = RedisStore(url, prefix=prefix)
            client = store.client
            before = int(client.info("memory")["used_memory"])
            started = time.perf_counter()
            for start in range(0, count, 1000):
                pipe = client.pipeline(transaction=False)
                for i in range(start, min(count, start + 1000)):
                    name = prefix + store._record_name(_key(i))
                    pipe.set(name, RedisStore._pack(_record(i)), ex=TTL)
                pipe.execute()
            added = int(client.info("memory")["used_memory"]) - before
            fills[count] = {
                "fill_seconds": time.perf_counter() - started,
                "used_memory_added": added,
                "used_memory_per_session": added / count,
            } | memory.redis_key_bytes(client, prefix + "*")
        results = _interleaved_latency(stores, samples)
    finally:
        for count, redis_store in stores.items():
            assert isinstance(redis_store, RedisStore)
            prefix = redis_store.prefix
            for start in range(0, count, 1000):
                end = min(count, start + 1000)
                names = (prefix + redis_store._record_name(_key(i)) for i in range(start, end))
                redis_store.client.unlink(*names)
            redis_store.close()
    return {count: results[count] | fills[count] for count in counts}


def measure(
    counts: list[int], redis: RedisTarget | None, tmp: Path, samples: int
) -> dict[str, Any]:
    started = time.perf_counter()
    sqlite = sqlite_latency(counts, tmp, samples)
    redis_results = redis_latency(counts, redis, samples) if redis is not None else {}
    lru = {count: lru_memory(count) for count in counts}
    return {
        "sessions": counts,
        "lru_memory": lru[max(counts)],
        "memory": _memory_table(counts, lru, sqlite, redis_results, memory.peers(counts, redis)),
        "sqlite": sqlite,
        "redis": redis_results,
        "samples": samples,
        "seconds": time.perf_counter() - started,
    }


def _memory_table(
    counts: list[int],
    lru: dict[int, dict[str, Any]],
    sqlite: dict[int, dict[str, Any]],
    redis: dict[int, dict[str, Any]],
    peers: dict[str, Any],
) -> dict[str, Any]:
    """Bytes per session, by store and number of sessions (``None``: not measured)."""
    rows: dict[str, dict[str, float | None]] = {
        "wsgisession LRUStore (tracemalloc)": {
            str(n): lru[n]["bytes_per_session_tracemalloc"] for n in counts
        },
        "wsgisession LRUStore (RSS)": {str(n): lru[n]["bytes_per_session_rss"] for n in counts},
        "wsgisession SQLiteStore (file)": {str(n): sqlite[n]["file_bytes"] / n for n in counts},
    }
    if redis:
        rows["wsgisession RedisStore (MEMORY USAGE)"] = {
            str(n): redis[n]["memory_usage_bytes"] for n in counts
        }
        rows["wsgisession RedisStore (used_memory)"] = {
            str(n): redis[n]["used_memory_per_session"] for n in counts
        }
    skipped = {}
    for name, figures in peers.items():
        if "skipped" in figures:
            skipped[name] = figures["skipped"]
            continue
        if name == "Beaker memory":
            rows["Beaker memory (tracemalloc)"] = {
                n: v["bytes_per_session_tracemalloc"] for n, v in figures.items()
            }
        else:
            rows[f"{name} (MEMORY USAGE)"] = {
                n: v["memory_usage_bytes"] for n, v in figures.items()
            }
            rows[f"{name} (used_memory)"] = {
                n: v["used_memory_per_session"] for n, v in figures.items()
            }
    return {"bytes_per_session": rows, "peers": peers, "skipped": skipped}
