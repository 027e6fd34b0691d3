"""wsgisession itself: the three workloads on each of its stores."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import common
from benchmarks.common import (
    SECRET,
    SESSION,
    Client,
    HeaderClient,
    RedisTarget,
    Suite,
    WSGIApp,
    plain_app,
)
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
#: The session header of the header-transport rows (docs/api-clients.md).
HEADER = "X-Auth-Token"


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
    view: Callable[[dict[str, Any]], None],
    store: ClientSessionStore | ServerSessionStore,
    header: str | None = None,
) -> WSGIApp:
    return SessionMiddleware(plain_app(view), secret_key=SECRET, store=store, header=header)


def seeded_clients(
    store: ClientSessionStore | ServerSessionStore, header: str | None = None
) -> dict[str, Client]:
    """A client per workload, each starting from its own copy of the logged-in session.

    With *header*, the middleware has ``header=`` (the cookie still on, as for an app
    serving browsers and API clients) and the clients send that header, not the cookie.
    """
    clients: dict[str, Client] = {}
    for mode, view in VIEWS.items():
        if header is None:
            seed = Client(wrap(_seed, store), "/", "session")
            seed.check()
            clients[mode] = Client(wrap(view, store), "/", "session", seed.cookie)
        else:
            seed = HeaderClient(wrap(_seed, store, header), "/", header)
            seed.check()
            if not seed.cookie:
                raise RuntimeError(f"no {header} in the response that created the session")
            clients[mode] = HeaderClient(wrap(view, store, header), "/", header, seed.cookie)
        clients[mode].check()
    return clients


def suite(
    name: str,
    store: ClientSessionStore | ServerSessionStore,
    notes: str = "",
    *,
    header: str | None = None,
    compare: str = "",
) -> Suite:
    made = Suite(name, "wsgi", seeded_clients(store, header), notes, compare=compare)
    if isinstance(store, ServerSessionStore):
        made.closers.append(store.close)
    return made


def cookie_plain(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession cookie", CookieStore(), "signed, HMAC-SHA256")


def cookie_header(redis: RedisTarget | None, tmp: Path) -> Suite:
    """CookieStore, the session carried in ``X-Auth-Token`` instead of the cookie."""
    return suite(
        "wsgisession cookie (header)",
        CookieStore(),
        f"signed, in {HEADER}",
        header=HEADER,
        compare="wsgisession cookie",
    )


def cookie_encrypted(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession cookie (encrypted)", CookieStore(encrypt=True), "AES-256-GCM")


def lru(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession LRUStore", LRUStore(), "in process memory")


def sqlite(redis: RedisTarget | None, tmp: Path) -> Suite:
    return suite("wsgisession SQLiteStore", SQLiteStore(tmp / "bench.sqlite3"), "temp file, WAL")


def sqlite_encrypted(redis: RedisTarget | None, tmp: Path) -> Suite:
    store = SQLiteStore(tmp / "bench-encrypted.sqlite3", encrypt=True)
    return suite("wsgisession SQLiteStore (encrypted)", store, "each value AES-256-GCM")


def redis_store(
    redis: RedisTarget | None, tmp: Path, *, encrypt: bool = False, header: str | None = None
) -> Suite:
    if redis is None:
        raise ImportError("no Redis (install the redis package and redis-server)")
    if header is not None:
        store = RedisStore(redis.url, prefix=redis.prefix + "ws-header:")
        made = suite(
            "wsgisession RedisStore (header)",
            store,
            f"one string per session, id in {header}",
            header=header,
            compare="wsgisession RedisStore",
        )
    elif encrypt:
        store = RedisStore(redis.url, prefix=redis.prefix + "ws-encrypted:", encrypt=True)
        made = suite("wsgisession RedisStore (encrypted)", store, "each value AES-256-GCM")
    else:
        store = RedisStore(redis.url, prefix=redis.prefix + "ws:")
        made = suite("wsgisession RedisStore", store, "one string per session")
    made.redis = True
    return made


def redis_encrypted(redis: RedisTarget | None, tmp: Path) -> Suite:
    return redis_store(redis, tmp, encrypt=True)


def redis_header(redis: RedisTarget | None, tmp: Path) -> Suite:
    """RedisStore, the session id carried in ``X-Auth-Token`` instead of the cookie."""
    return redis_store(redis, tmp, header=HEADER)


def postgres_store(redis: RedisTarget | None, tmp: Path, *, encrypt: bool = False) -> Suite:
    target = common.postgres
    if target is None:
        raise ImportError("no PostgreSQL (install psycopg and run a server, or --postgres-url)")
    if encrypt:
        store = PostgresStore(
            target.url, schema=target.schema, table="wsgisession_encrypted", encrypt=True
        )
        return suite("wsgisession PostgresStore (encrypted)", store, "each value AES-256-GCM")
    store = PostgresStore(target.url, schema=target.schema, table="wsgisession")
    return suite("wsgisession PostgresStore", store, "one jsonb row per session")


def postgres_encrypted(redis: RedisTarget | None, tmp: Path) -> Suite:
    return postgres_store(redis, tmp, encrypt=True)


class RawPing:
    """One Redis round trip at its cheapest: ``PING`` on a raw TCP socket, no client."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __call__(self) -> None:
        self.sock.sendall(b"PING\r\n")
        if self.sock.recv(64) != b"+PONG\r\n":
            raise RuntimeError("Redis did not answer PONG")

    def close(self) -> None:
        self.sock.close()


def redis_floor(redis: RedisTarget | None, tmp: Path) -> Suite:
    """The floor of issue 20: a bare app making the round trips a session store cannot avoid.

    ``read`` makes one raw-socket PING (a load is one round trip), ``write`` two (a
    load and a save); ``untouched`` none.
    """
    if redis is None:
        raise ImportError("no Redis (install the redis package and redis-server)")
    ping = RawPing(redis.url)

    def twice(environ: dict[str, Any]) -> None:
        ping()
        ping()

    clients = {
        "untouched": Client(plain_app(_untouched), "/", "session"),
        "read": Client(plain_app(lambda environ: ping()), "/", "session"),
        "write": Client(plain_app(twice), "/", "session"),
    }
    made = Suite(FLOOR, "wsgi", clients, "1 raw PING to read, 2 to write (no client library)")
    made.closers.append(ping.close)
    return made


FLOOR = "floor: raw-socket PING"

SUITES: list[Callable[[RedisTarget | None, Path], Suite]] = [
    redis_floor,
    cookie_plain,
    cookie_header,
    cookie_encrypted,
    lru,
    sqlite,
    sqlite_encrypted,
    redis_store,
    redis_header,
    redis_encrypted,
    postgres_store,
    postgres_encrypted,
]
