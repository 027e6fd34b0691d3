"""Requests per second under gunicorn on loopback, driven by ``wrk``, on pinned cores.

The server and the load generator never share a core: one gunicorn worker (and its
arbiter) pinned to CPU 1 with ``taskset``, ``wrk -t1 -c8`` pinned to CPU 0, and the
benchmark's private ``redis-server`` on CPU 0 with wrk (Redis is on another machine in
production; here it must not take the worker's core). With both on the same two
cores, as before, a round measured the scheduler as much as the session layer.

Two worker classes, each in its own server, every route compared with the bare app
in the same round (rounds interleaved, the median of the per-round ratios reported):

- ``sync``: gunicorn's sync worker closes the connection after each response, so
  every request is a new connection;
- ``gthread``: keep-alive connections, one thread (the GIL makes more threads no
  faster for a CPU-bound worker on one core).

Without ``taskset`` or a second core the server runs unpinned and the output says so.
Without ``wrk`` a small Python load generator stands in (and the output says so):
it is itself slow, so its figures understate the server and compress the ratios.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import SECRET, SESSION, Client, RedisTarget, _free_port, plain_app
from wsgisession import CookieStore, RedisStore, SessionMiddleware

ROOT = Path(__file__).resolve().parent.parent

#: The load generator's core and the server's.
LOAD_CPU, SERVER_CPU = 0, 1
#: wrk's connections: enough to keep one worker always busy.
CONNECTIONS = 8


def _seed_cookie(store: Any, cookie_name: str) -> str:
    def seed(environ: dict[str, Any]) -> None:
        environ["wsgisession.session"].update(SESSION)

    app = SessionMiddleware(
        plain_app(seed), secret_key=SECRET, store=store, cookie_name=cookie_name
    )
    client = Client(app, "/", cookie_name)
    client.check()
    assert client.cookie is not None
    return client.cookie


def pinning() -> tuple[list[str], list[str]] | None:
    """``taskset`` prefixes for the load generator and the server, or ``None``."""
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return None
    if not {LOAD_CPU, SERVER_CPU} <= os.sched_getaffinity(0):
        return None
    return ["taskset", "-c", str(LOAD_CPU)], ["taskset", "-c", str(SERVER_CPU)]


def _wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/bare")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start within 30 s")


def _wrk(url: str, cookie: str | None, duration: float, connections: int, pin: list[str]) -> float:
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        print(f"# wrk reported errors for {url}:\n{output}", file=sys.stderr)
    match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return float(match.group(1))


def _python_load(
    url: str, cookie: str | None, duration: float, connections: int, pin: list[str]
) -> float:
    host, _, path = url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    headers = {"Cookie": cookie} if cookie else {}
    done = [0] * connections
    deadline = time.perf_counter() + duration

    def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            conn = http.client.HTTPConnection(hostname, int(port), timeout=5)
            conn.request("GET", "/" + path, headers=headers)
            conn.getresponse().read()
            conn.close()
            done[slot] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - start)


#: Worker classes and their gunicorn options (one worker each).
SERVERS: dict[str, list[str]] = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "1"],
}


def measure(
    redis: RedisTarget | None,
    *,
    duration: float,
    rounds: int,
    connections: int = CONNECTIONS,
    tool: str = "auto",
    servers: tuple[str, ...] = ("sync", "gthread"),
    redis_cpu: str = "server",
) -> dict[str, Any]:
    """Requests/s of each route under each worker class, and the ratio to bare.

    The top-level ``variants`` are the sync server's; ``servers`` has every worker
    class.
    """
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
        if tool == "python":
            print("# wrk not found (apt install wrk): measured with a Python load generator")
    load = _wrk if tool == "wrk" else _python_load
    pins = pinning()
    if pins is None:
        print("# taskset or a second core missing: server and load generator share the cores")
    load_pin, server_pin = pins or ([], [])
    # The bare app gets the session cookie too, so parsing the bigger request is not
    # counted as the session layer's cost.
    cookie = _seed_cookie(CookieStore(), "session")
    cookies: dict[str, str | None] = {"/bare": cookie}
    cookies["/cookie/read"] = cookies["/cookie/write"] = cookie
    env = dict(os.environ)
    if redis is not None:
        prefix = redis.prefix + "gunicorn:"
        env |= {"BENCH_REDIS_URL": redis.url, "BENCH_REDIS_PREFIX": prefix}
        store = RedisStore(redis.url, prefix=prefix)
        try:
            cookies["/redis/floor"] = cookie
            cookies["/redis/read"] = _seed_cookie(store, "sid")
            cookies["/redis/write"] = _seed_cookie(store, "sid")
        finally:
            store.close()
    redis_cpus = None
    if pins is not None and redis is not None and redis.pid is not None:
        redis_cpus = os.sched_getaffinity(redis.pid)
        os.sched_setaffinity(redis.pid, {SERVER_CPU if redis_cpu == "server" else LOAD_CPU})
    results: dict[str, Any] = {}
    try:
        for kind in servers:
            options = SERVERS[kind]
            results[kind] = _measure_server(
                [*server_pin, sys.executable, "-m", "gunicorn", "-w", "1", *options],
                env,
                cookies,
                lambda url, sent, seconds, n: load(url, sent, seconds, n, load_pin),
                duration,
                rounds,
                connections,
            )
            results[kind]["server"] = " ".join([*server_pin, "gunicorn -w 1", *options])
    finally:
        if redis_cpus is not None and redis is not None and redis.pid is not None:
            os.sched_setaffinity(redis.pid, redis_cpus)
    first = results[servers[0]]
    wrk = f"wrk -t1 -c{connections} -d{duration:g}s"
    return {
        "tool": tool,
        "pinned": pins is not None,
        "redis_cpu": (SERVER_CPU if redis_cpu == "server" else LOAD_CPU) if pins else None,
        "server": first["server"],
        "command": " ".join([*load_pin, wrk]) if tool == "wrk" else "python",
        "rounds": rounds,
        "variants": first["variants"],
        "samples": first["samples"],
        "servers": results,
    }


def _measure_server(
    command: list[str],
    env: dict[str, str],
    cookies: dict[str, str | None],
    load: Any,
    duration: float,
    rounds: int,
    connections: int,
) -> dict[str, Any]:
    port = _free_port()
    command = [*command, "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "error"]
    process = subprocess.Popen([*command, "benchmarks.wsgi_app:app"], env=env)
    samples: dict[str, list[float]] = {path: [] for path in cookies}
    try:
        _wait_until_serving(port, process)
        for path, sent in cookies.items():  # warm up every route
            load(f"http://127.0.0.1:{port}{path}", sent, min(1, duration), 2)
        for _ in range(rounds):
            for path, sent in cookies.items():
                url = f"http://127.0.0.1:{port}{path}"
                samples[path].append(load(url, sent, duration, connections))
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Neighbours' load comes and goes between runs: compare each variant with the bare
    # run of the same round, and take the median of those ratios.
    bare = samples["/bare"]
    variants = {
        path: {
            "best": max(values),
            "median": statistics.median(values),
            "ratio_best": max(values) / max(bare),
            "ratio": statistics.median(v / b for v, b in zip(values, bare, strict=True)),
            # What the route adds to one request, from the medians: 1/rps - 1/bare.
            "added_us": 1e6 * (1 / statistics.median(values) - 1 / statistics.median(bare)),
        }
        for path, values in samples.items()
    }
    return {"variants": variants, "samples": samples}
