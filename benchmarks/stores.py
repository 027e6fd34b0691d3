"""wsgisession itself: the three workloads on each of its stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import SECRET, SESSION, Client, RedisTarget, Suite, WSGIApp, plain_app
from wsgisession import (
    ClientSessionStore,
    CookieStore,
    LRUStore,
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
)

KEY = "wsgisession.session"


def _seed(environ: dict[str, Any]) -> None:
    environ[KEY].update(SESSION)


def _untouched(environ: dict[str, Any]) -> None:
    pass


def _read(environ: dict[str, Any]) -> None:
    environ[KEY]["user_id"]


def _write(environ: dict[str, Any]) -> None:
    environ[KEY]["counter"] += 1


VIEWS: dict[str, Callable[[dict[str, Any]], None]] = {
    "untouched": _untouched,
    "read": _read,
    "write": _write,
}


def bare_client() -> Client:
    """The plain WSGI app every WSGI middleware (ours, Beaker's) is measured above."""
    return Client(plain_app(_untouched), "/", "session")


def wrap(
    view: Callable[[dict[str, Any]], None], store: ClientSessionStore | ServerSessionStore
) -> WSGIApp:
    return SessionMiddleware(plain_app(view), secret_key=SECRET, store=store)


def seeded_clients(store: ClientSessionStore | ServerSessionStore) -> dict[str, Client]:
    """A client per workload, each starting from its own copy of the logged-in session."""
    clients = {}
    for mode, view in VIEWS.items():
        seed = Client(wrap(_seed, store), "/", "session")
        seed.check()
        clients[mode] = Client(wrap(view, store), "/", "session", seed.cookie)
        clients[mode].check()
    return clients


def suite(name: str, store: ClientSessionStore | ServerSessionStore, notes: str = "") -> Suite:
    made = Suite(name, "wsgi", seeded_clients(store), notes)
    if isinstance(store, ServerSessionStore):
        made.closers.append(store.close)
    return made


def cookie_plain(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession cookie", CookieStore(), "signed, HMAC-SHA256")


def cookie_encrypted(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession cookie (encrypted)", CookieStore(encrypt=True), "AES-256-GCM")


def lru(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession LRUStore", LRUStore(), "in process memory")


def sqlite(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession SQLiteStore", SQLiteStore(tmp / "bench.sqlite3"), "temp file, WAL")


def redis_store(redis: RedisTarget | None, tmp: Path) -> Suite:
    if redis is None:
        raise ImportError("no Redis (install the redis package and redis-server)")
    store = RedisStore(redis.url, prefix=redis.prefix + "ws:")
    made = suite("wsgisession RedisStore", store, "one hash per session")
    made.redis = True
    return made


def postgres_store(redis: RedisTarget | None, tmp: Path) -> Suite:
    target = common.postgres
    if target is None:
        raise ImportError("no PostgreSQL (install psycopg and run a server, or --postgres-url)")
    store = PostgresStore(target.url, schema=target.schema, table="wsgisession")
    return suite("wsgisession PostgresStore", store, "one jsonb row per session")


SUITES: list[Callable[[RedisTarget | None, Path], Suite]] = [
    cookie_plain,
    cookie_encrypted,
    lru,
    sqlite,
    redis_store,
    postgres_store,
]
