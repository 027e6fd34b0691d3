"""Requests per second under ``gunicorn -w 2`` on loopback, driven by ``wrk``.

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


def measure(
    redis: RedisTarget | None,
    *,
    duration: float,
    rounds: int,
    connections: int = 4,
    tool: str = "auto",
) -> dict[str, Any]:
    """Requests/s of each variant (best and median of *rounds*) and the ratio to bare."""
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
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}"]
    command += ["--chdir", str(ROOT), "--log-level", "warning", "benchmarks.wsgi_app:app"]
    process = subprocess.Popen(command, env=env)
    samples: dict[str, list[float]] = {path: [] for path in cookies}
    try:
        _wait_until_serving(port, process)
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
    return {
        "tool": tool,
        "server": "gunicorn -w 2 (sync workers)",
        "command": f"wrk -t1 -c{connections} -d{duration:g}s" if tool == "wrk" else "python",
        "rounds": rounds,
        "variants": variants,
        "samples": samples,
    }
