"""What Python work costs right after a blocking Redis round trip (issue 20).

The Redis floor of ``make bench`` is a bare app making raw-socket ``PING``s: it
does nothing after its reply. A session store must do work after it (decode the
record, set headers), and on a small machine that work runs with cold caches:
while the worker waits, Redis runs on its core. This measures the effect without
any store: a raw ``PING`` alone, a cookie-session read alone, and the two in one
request (in both orders), then a RedisStore read. CPU time is the thread's own
(``time.thread_time``), the minimum over interleaved rounds.

Usage: ``.venv/bin/python benchmarks/after_round_trip.py [--redis-url URL]
[--rounds 9] [--number 3000]``
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SECRET, SESSION, Client, plain_app
from wsgisession import RedisStore, SessionMiddleware

KEY = "wsgisession.session"


def _clients(url: str, prefix: str) -> tuple[dict[str, Client], RedisStore, socket.socket]:
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping() -> None:
        raw.sendall(b"PING\r\n")
        if raw.recv(64) != b"+PONG\r\n":
            raise RuntimeError("Redis did not answer PONG")

    def seed(environ: dict[str, Any]) -> None:
        environ[KEY].update(SESSION)

    def read(environ: dict[str, Any]) -> None:
        environ[KEY]["user_id"]

    def ping_then_read(environ: dict[str, Any]) -> None:
        ping()
        read(environ)

    def read_then_ping(environ: dict[str, Any]) -> None:
        read(environ)
        ping()

    def session(view: Callable[[dict[str, Any]], None], **options: Any) -> SessionMiddleware:
        return SessionMiddleware(plain_app(view), secret_key=SECRET, **options)

    cookie = Client(session(seed), "/", "session")
    cookie()
    store = RedisStore(url, prefix=prefix)
    stored = Client(session(seed, store=store, cookie_name="sid"), "/", "sid")
    stored()
    clients = {
        "bare": Client(plain_app(lambda environ: None), "/", "session", cookie.cookie),
        "raw PING alone": Client(plain_app(lambda environ: ping()), "/", "session", cookie.cookie),
        "cookie read alone": Client(session(read), "/", "session", cookie.cookie),
        "PING, then cookie read": Client(session(ping_then_read), "/", "session", cookie.cookie),
        "cookie read, then PING": Client(session(read_then_ping), "/", "session", cookie.cookie),
        "RedisStore read": Client(
            session(read, store=store, cookie_name="sid"), "/", "sid", stored.cookie
        ),
    }
    return clients, store, raw


def measure(url: str, rounds: int, number: int) -> dict[str, dict[str, float]]:
    """µs of wall and thread CPU time per request, minimum over *rounds*."""
    prefix = f"wsgisession-after-round-trip:{uuid.uuid4().hex}:"
    clients, store, raw = _clients(url, prefix)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for _ in range(rounds):
            for name, client in clients.items():
                started, cpu = time.perf_counter(), time.thread_time()
                for _ in range(number):
                    client()
                wall = (time.perf_counter() - started) / number * 1e6
                samples[name].append((wall, (time.thread_time() - cpu) / number * 1e6))
    finally:
        keys = list(store.client.scan_iter(prefix + "*"))
        if keys:
            store.client.delete(*keys)
        store.close()
        raw.close()
    return {
        name: {"wall": min(s[0] for s in values), "cpu": min(s[1] for s in values)}
        for name, values in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--number", type=int, default=3000)
    args = parser.parse_args(argv)
    results = measure(args.redis_url, args.rounds, args.number)
    print(f"{'request':28} {'wall µs':>9} {'CPU µs':>9}")
    for name, figures in results.items():
        print(f"{name:28} {figures['wall']:9.1f} {figures['cpu']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
