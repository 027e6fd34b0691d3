"""Requests per second under ``gunicorn -w 2`` on loopback, driven by ``wrk``.

Two worker classes, each in its own server, every route compared with the bare app
in the same round:

- ``sync``: one request at a time per worker; gunicorn's sync worker closes the
  connection after each response, so every request is a new connection and the
  kernel hands it to whichever worker is waiting in ``accept``.
- ``gthread``: keep-alive connections. Left at its default (1,000 connections per
  worker), the first worker to wake accepts *every* connection wrk opens and the
  other worker idles: half the machine measured as the server. The benchmark caps
  ``--worker-connections`` at wrk's connections divided by the workers, so each
  worker accepts its share and stops; :func:`connection_spread` checks it (and shows
  the imbalance without the cap) by opening the connections and asking each which
  worker answers.

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


def connection_spread(port: int, connections: int) -> list[int]:
    """Keep-alive connections held by each worker: open *connections*, ask each its pid."""
    opened = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(connections)]
    try:
        for conn in opened:
            conn.connect()
        time.sleep(0.2)  # let the workers accept them all before the first request
        pids: dict[str, int] = {}
        for conn in opened:
            conn.request("GET", "/pid")
            pid = conn.getresponse().read().decode()
            pids[pid] = pids.get(pid, 0) + 1
    finally:
        for conn in opened:
            conn.close()
    return sorted(pids.values(), reverse=True)


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


def _wrk(url: str, cookie: str | None, duration: float, connections: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        print(f"# wrk reported errors for {url}:\n{output}", file=sys.stderr)
    match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return float(match.group(1))


def _python_load(url: str, cookie: str | None, duration: float, connections: int) -> float:
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


WORKERS = 2
#: Worker classes and their gunicorn options; ``{per_worker}`` is filled in per run.
SERVERS: dict[str, list[str]] = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "1", "--worker-connections", "{per_worker}"],
}


def measure(
    redis: RedisTarget | None,
    *,
    duration: float,
    rounds: int,
    connections: int = 4,
    tool: str = "auto",
    servers: tuple[str, ...] = ("sync", "gthread"),
) -> dict[str, Any]:
    """Requests/s of each route under each worker class, and the ratio to bare.

    The top-level ``variants`` are the sync server's (as before gthread was added);
    ``servers`` has every worker class, with its connection spread.
    """
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
        if tool == "python":
            print("# wrk not found: throughput measured with a Python load generator")
    load = _wrk if tool == "wrk" else _python_load
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
            cookies["/redis/read"] = _seed_cookie(store, "sid")
            cookies["/redis/write"] = _seed_cookie(store, "sid")
        finally:
            store.close()
    per_worker = max(1, connections // WORKERS)
    results: dict[str, Any] = {}
    for kind in servers:
        options = [o.format(per_worker=per_worker) for o in SERVERS[kind]]
        results[kind] = _measure_server(
            options, env, cookies, load, duration, rounds, connections, kind == "gthread"
        )
        results[kind]["server"] = f"gunicorn -w {WORKERS} {' '.join(options)}"
    first = results[servers[0]]
    return {
        "tool": tool,
        "server": first["server"],
        "command": f"wrk -t1 -c{connections} -d{duration:g}s" if tool == "wrk" else "python",
        "rounds": rounds,
        "variants": first["variants"],
        "samples": first["samples"],
        "servers": results,
    }


def _measure_server(
    options: list[str],
    env: dict[str, str],
    cookies: dict[str, str | None],
    load: Any,
    duration: float,
    rounds: int,
    connections: int,
    keep_alive: bool,
) -> dict[str, Any]:
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), *options]
    command += ["-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "error"]
    process = subprocess.Popen([*command, "benchmarks.wsgi_app:app"], env=env)
    samples: dict[str, list[float]] = {path: [] for path in cookies}
    spread = None
    try:
        _wait_until_serving(port, process)
        if keep_alive:
            spread = connection_spread(port, connections)
        for path, sent in cookies.items():  # warm up every route in both workers
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
        }
        for path, values in samples.items()
    }
    return {"variants": variants, "samples": samples, "connection_spread": spread}
