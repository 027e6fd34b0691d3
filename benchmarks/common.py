"""What every benchmark module shares: the session, the client, the timer, Redis."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from werkzeug.test import EnvironBuilder

SECRET = "benchmark-secret-key-" + "x" * 32

#: A realistic logged-in session: about 400 bytes of serialized data.
SESSION: dict[str, Any] = {
    "user_id": 123456,
    "username": "alice.example",
    "email": "alice@example.com",
    "roles": ["editor", "reviewer"],
    "login_at": "2026-11-23T10:00:00+00:00",
    "csrf": uuid.UUID(int=42).hex * 2,
    "cart": [{"sku": f"SKU-{i:04d}", "qty": i} for i in range(5)],
    "prefs": {"theme": "dark", "lang": "en-GB", "tz": "Europe/London"},
    "counter": 0,
}

MODES = ("untouched", "read", "write")

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class Client:
    """Calls a WSGI app directly and sends the last cookie it set back, as a browser would.

    The same client drives every system and its bare baseline, so its own small cost
    (copying the environ, scanning the response headers) cancels out.
    """

    def __init__(self, app: Any, path: str, cookie_name: str, cookie: str | None = None) -> None:
        self.app = app
        self.environ = EnvironBuilder(path=path, base_url="http://localhost/").get_environ()
        self.prefix = cookie_name + "="
        self.cookie = cookie
        self.status = ""

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status = status
        for name, value in headers:
            if name.lower() == "set-cookie":
                value = value.lstrip()  # Beaker's starts with a space
                if value.startswith(self.prefix):
                    self.cookie = value.partition(";")[0]
        return _write

    def __call__(self) -> None:
        environ = dict(self.environ)
        if self.cookie is not None:
            environ["HTTP_COOKIE"] = self.cookie
        result = self.app(environ, self._start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()

    def check(self) -> None:
        """One request that must succeed (a broken setup fails loudly, not fast)."""
        self()
        if not self.status.startswith("200"):
            raise RuntimeError(f"{self.app!r} answered {self.status}")


class HeaderClient(Client):
    """A :class:`Client` that carries the session in a request header, as an API client does.

    With ``SessionMiddleware(header=...)``: every request sends *header* (as the
    environ's ``HTTP_X_AUTH_TOKEN`` for ``X-Auth-Token``) with the last value a
    response gave in that header, empty while it has none (the empty header is what
    asks for a header session), and never a ``Cookie``. :attr:`cookie` holds that
    value, bare (no ``name=``), so a seeding client's can be handed on as a cookie is.
    Its own cost matches :class:`Client`'s (one environ key set, the response headers
    scanned once), so it cancels out against the bare app as that one's does.
    """

    def __init__(self, app: Any, path: str, header: str, token: str | None = None) -> None:
        super().__init__(app, path, header, token)
        self.header = header.lower()
        self.key = "HTTP_" + header.upper().replace("-", "_")

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status = status
        for name, value in headers:
            if name.lower() == self.header:
                self.cookie = value  # "" would mean the session ended
        return _write

    def __call__(self) -> None:
        environ = dict(self.environ)
        environ[self.key] = self.cookie or ""
        result = self.app(environ, self._start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _write(data: bytes) -> None:
    return None


def plain_app(view: Callable[[dict[str, Any]], None]) -> WSGIApp:
    """A tiny WSGI app that runs *view(environ)* and answers ``ok``."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        view(environ)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    return app


@dataclass
class Suite:
    """One system serving the three workloads, and the baseline it is compared with."""

    name: str
    baseline: str
    clients: dict[str, Client]
    notes: str = ""
    #: The wsgisession suite this peer is compared with (ratios).
    compare: str = ""
    redis: bool = False
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


# -- timing ----------------------------------------------------------------------


def time_calls(call: Callable[[], None], number: int) -> float:
    """Microseconds per call over *number* calls."""
    return time_calls_cpu(call, number)[0]


def time_calls_cpu(call: Callable[[], None], number: int) -> tuple[float, float]:
    """Wall-clock and this thread's CPU microseconds per call, over *number* calls.

    On a shared machine the CPU time is the steadier figure for CPU-bound work (time
    spent descheduled is not counted), but it leaves out waiting for Redis or disk.
    """
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(number):
        call()
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    return wall / number * 1e6, cpu / number * 1e6


def calibrate(call: Callable[[], None], target_ms: float, fixed: int | None) -> int:
    """How many calls make one timing of about *target_ms* (or *fixed*, if given)."""
    for _ in range(3):
        call()  # warm up: imports, connections, caches
    if fixed is not None:
        return fixed
    per_call = time_calls(call, 10)
    return max(5, min(20_000, int(target_ms * 1000 / max(per_call, 0.01))))


def interleaved(
    cells: dict[Any, Callable[[], None]], rounds: int, target_ms: float, fixed: int | None
) -> tuple[dict[Any, list[float]], dict[Any, list[float]]]:
    """µs per call of each cell (wall clock, then CPU), one sample per round.

    Rounds are interleaved across cells, so a burst of noise hits every cell alike.
    """
    numbers = {key: calibrate(call, target_ms, fixed) for key, call in cells.items()}
    wall: dict[Any, list[float]] = {key: [] for key in cells}
    cpu: dict[Any, list[float]] = {key: [] for key in cells}
    for _ in range(rounds):
        for key, call in cells.items():
            w, c = time_calls_cpu(call, numbers[key])
            wall[key].append(w)
            cpu[key].append(c)
    return wall, cpu


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def noise(samples: Iterable[list[float]]) -> float:
    """Median over cells of (median / min - 1): how much a typical round lost to noise."""
    spreads = [statistics.median(v) / min(v) - 1 for v in samples if v and min(v) > 0]
    return statistics.median(spreads) if spreads else 0.0


# -- Redis -----------------------------------------------------------------------


@dataclass
class RedisTarget:
    url: str
    private: bool
    prefix: str
    where: str
    #: The private ``redis-server``'s process id (``None`` for a shared server).
    pid: int | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_target(url: str | None) -> Iterator[RedisTarget | None]:
    """A Redis for the benchmark: a private ``redis-server`` by default, else *url*.

    A private server keeps ``INFO commandstats`` free of other clients' commands and
    the million-session scale test out of a shared instance; it is shut down after.
    With *url* (a shared server), every key written starts with a unique prefix (and
    Beaker's ``beaker_cache:``) and is deleted afterwards.
    """
    try:
        import redis
    except ImportError:
        yield None
        return
    prefix = f"wsgisession-bench:{uuid.uuid4().hex[:12]}:"
    process = None
    if url is None:
        binary = shutil.which("redis-server")
        if binary is None:
            url = "redis://127.0.0.1:6379/15"
        else:
            port = _free_port()
            process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
            )
            url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            print(f"# no Redis at {url}: Redis systems skipped", file=sys.stderr)
            yield None
            return
        version = client.info("server")["redis_version"]
        where = f"{'private redis-server' if process else url} {version}"
        yield RedisTarget(url, process is not None, prefix, where, process.pid if process else None)
    finally:
        if process is None:
            with suppress(redis.RedisError):
                for pattern in (prefix + "*", "beaker_cache:*"):
                    keys = list(client.scan_iter(match=pattern, count=1000))
                    for i in range(0, len(keys), 1000):
                        client.unlink(*keys[i : i + 1000])
        client.close()
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


# -- PostgreSQL ------------------------------------------------------------------


@dataclass
class PostgresTarget:
    url: str
    #: A schema of this run's own, dropped afterwards: wsgisession's table and
    #: Django's ``django_session`` are both in it, on the same server.
    schema: str
    where: str


#: The PostgreSQL of this run (set by run.py), for PostgresStore and Django's db engine.
postgres: PostgresTarget | None = None


@contextmanager
def postgres_target(url: str | None) -> Iterator[PostgresTarget | None]:
    """The shared PostgreSQL (``--postgres-url``, default 127.0.0.1:5432/test), in a
    schema of this run's own that is dropped afterwards; ``None`` when there is none."""
    global postgres
    try:
        import psycopg
    except ImportError:
        yield None
        return
    url = url or "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"wsgisession_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        print(f"# no PostgreSQL at {url} ({exc}): PostgreSQL systems skipped", file=sys.stderr)
        yield None
        return
    postgres = PostgresTarget(url, schema, f"{url} {version[0] if version else ''}")
    try:
        yield postgres
    finally:
        postgres = None
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if "model name" in line), "")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "load_average_1min_at_start": load,
    }
