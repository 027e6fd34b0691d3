"""Instructions and cache misses per request inside a gunicorn worker, under callgrind.

The pinned throughput benchmark (:mod:`benchmarks.throughput`) says how much a route
costs a gunicorn worker; this says where, in counts that do not move when the
machine is busy. One sync worker runs the throughput app (``benchmarks.wsgi_app``)
under ``valgrind --tool=callgrind --cache-sim=yes``; for each route, after a
warm-up, a request to ``/_callgrind/zero`` zeroes the counters, *calls* requests of
the route follow (from this process, one connection each, as wrk's to a sync
worker), and ``/_callgrind/dump`` writes the route's profile. Unlike
:mod:`benchmarks.instructions`, the garbage collector stays on and gunicorn's own
work (parsing, the response headers the session layer adds) is counted: what a
route adds here is what it adds under load.

Printed per request, and above ``/bare``: instructions (Ir), first-level cache
misses (instruction I1mr, data D1mr + D1mw), last-level misses, and callgrind's
cycle estimate (Ir + 10 L1 misses + 100 LL misses). Kernel time (accept,
recv, send, close) is not seen by valgrind; it is the same for every route.

Usage: ``.venv/bin/python benchmarks/gunicorn_profile.py [--calls 1000]
[--routes /bare /cookie/read ...] [--profile DIR]`` (``DIR`` keeps the files for
``callgrind_annotate``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import _free_port, redis_target
from benchmarks.instructions import _build_marks
from benchmarks.throughput import _seed_cookie
from wsgisession import CookieStore, RedisStore

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ("/bare", "/cookie/read", "/cookie/write", "/redis/floor", "/redis/read", "/redis/write")
EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def _get(port: int, path: str, cookie: str | None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
    finally:
        conn.close()


def _dumps(directory: Path) -> dict[str, dict[str, int]]:
    """Each route's counters, from the dumps its ``/_callgrind/dump`` request wrote."""
    found: dict[str, dict[str, int]] = {}
    for dump in directory.glob("callgrind.out.*.*"):
        text = dump.read_text(errors="replace")
        name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.MULTILINE)
        events = re.search(r"^events:\s*(.+)$", text, re.MULTILINE)
        totals = re.search(r"^(?:summary|totals):\s*(.+)$", text, re.MULTILINE)
        if name and events and totals:
            names, values = events.group(1).split(), [int(v) for v in totals.group(1).split()]
            # Callgrind leaves trailing zero counts out of the totals line.
            counts = dict(zip(names, values + [0] * (len(names) - len(values)), strict=True))
            found[name.group(1)] = {event: counts.get(event, 0) for event in EVENTS}
    return found


def _run_worker(
    out: Path,
    env: dict[str, str],
    cookies: dict[str, str | None],
    cookie: str,
    calls: int,
    warmup: int,
) -> None:
    """One sync worker under callgrind: warm every route up, then count each."""
    port = _free_port()
    command = ["valgrind", "--tool=callgrind", "--cache-sim=yes"]
    command += [f"--callgrind-out-file={out}/callgrind.out.%p"]
    command += [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "sync", "--timeout", "600"]
    command += ["-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "error"]
    server = subprocess.Popen(
        [*command, "benchmarks.wsgi_app:app"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(port, "/bare", cookie)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start under valgrind") from None
                time.sleep(0.5)
        for path, sent in cookies.items():  # warm up every route
            for _ in range(warmup):
                _get(port, path, sent)
        for path, sent in cookies.items():
            _get(port, "/_callgrind/zero", None)
            for _ in range(calls):
                _get(port, path, sent)
            _get(port, "/_callgrind/dump?" + path.strip("/").replace("/", "-"), None)
    finally:
        server.terminate()
        server.wait(timeout=120)


def measure(
    routes: list[str], calls: int, keep: Path | None = None, warmup: int = 200
) -> dict[str, Any]:
    """Counters per request of each route, and above ``/bare``."""
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    with tempfile.TemporaryDirectory() as tmpdir, redis_target(None) as redis:
        out = Path(tmpdir)
        marks = _build_marks(out)
        if isinstance(marks, str):
            return {"skipped": marks}
        cookies: dict[str, str | None] = {}
        env = dict(os.environ, BENCH_CALLGRIND_MARKS=str(marks))
        cookie = _seed_cookie(CookieStore(), "session")
        if redis is not None:
            env |= {"BENCH_REDIS_URL": redis.url, "BENCH_REDIS_PREFIX": redis.prefix}
            store = RedisStore(redis.url, prefix=redis.prefix)
            redis_cookie = _seed_cookie(store, "sid")
            store.close()
        for path in routes:
            if path.startswith("/redis/") and redis is None:
                continue
            sid = path in ("/redis/read", "/redis/write")
            cookies[path] = redis_cookie if sid else cookie
        _run_worker(out, env, cookies, cookie, calls, warmup)
        counts = _dumps(out)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in out.glob("callgrind.out.*"):
                shutil.copy(dump, keep / dump.name)
    per = {
        path: {e: counts[path.strip("/").replace("/", "-")][e] / calls for e in EVENTS}
        for path in cookies
    }
    for figures in per.values():
        figures["cycles"] = _cycles(figures)
    bare = per.get("/bare")
    return {
        "calls": calls,
        "per_request": per,
        "above_bare": {
            path: {e: v - bare[e] for e, v in figures.items()} for path, figures in per.items()
        }
        if bare
        else {},
    }


def _cycles(f: dict[str, float]) -> float:
    """Callgrind's estimate: an L1 miss costs ~10 cycles, a last-level miss ~100."""
    l1 = f["I1mr"] + f["D1mr"] + f["D1mw"]
    last = f["ILmr"] + f["DLmr"] + f["DLmw"]
    return f["Ir"] + 10 * l1 + 100 * last


def report(results: dict[str, Any]) -> None:
    if "skipped" in results:
        print(f"# skipped: {results['skipped']}")
        return
    print(f"## Inside one gunicorn sync worker, per request ({results['calls']} calls per route)")
    print("# thousands; 'above' = minus /bare; L1 = I1mr + D1mr + D1mw; LL = last-level misses")
    head = f"{'route':14} {'Ir':>8} {'L1':>7} {'LL':>6} {'cycles':>8}"
    print(f"{head}   {'Ir above':>9} {'I1 above':>9} {'D1 above':>9} {'cycles above':>12}")
    for path, f in results["per_request"].items():
        a = results["above_bare"].get(path, {})
        l1 = f["I1mr"] + f["D1mr"] + f["D1mw"]
        last = f["ILmr"] + f["DLmr"] + f["DLmw"]
        print(
            f"{path:14} {f['Ir'] / 1e3:8.1f} {l1 / 1e3:7.2f} {last / 1e3:6.2f} "
            f"{f['cycles'] / 1e3:8.1f}   {a.get('Ir', 0) / 1e3:9.1f} "
            f"{a.get('I1mr', 0) / 1e3:9.2f} {(a.get('D1mr', 0) + a.get('D1mw', 0)) / 1e3:9.2f}"
            f" {a.get('cycles', 0) / 1e3:12.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--routes", nargs="+", default=list(ROUTES))
    parser.add_argument("--profile", type=Path, help="keep the callgrind files here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    results = measure(args.routes, args.calls, args.profile)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
