"""`make bench` must keep working: run every part of it once, with a tiny count.

No timing is asserted (this machine's figures belong in benchmarks/results.json);
the test checks that each part ran, produced its figures, and that peers missing
from this environment (the bench extra is not needed here) were reported as skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from benchmarks import account, after_round_trip
from wsgisession import LRUStore, RedisStore, SQLiteStore

from .services import skip_or_fail

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    chart = tmp_path / "chart.png"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"]
    command += ["--load", "python", "--json", str(out), "--chart", str(chart)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())

    names = {system["name"] for system in results["per_request"]["systems"]}
    assert {"wsgisession cookie", "wsgisession cookie (encrypted)", "wsgisession LRUStore"} <= names
    # The header transport runs beside the cookie it is compared with.
    assert "wsgisession cookie (header)" in names
    # Every system the benchmark knows either ran or was reported as skipped, with why.
    assert len(names) + len(results["skipped"]) == 20
    assert all(reason for reason in results["skipped"].values())
    for system in results["per_request"]["systems"]:
        assert set(system["modes"]) == {"untouched", "read", "write"}
    assert "## Per request" in done.stdout
    assert "## Targets" in done.stdout

    assert set(results["throughput"]["variants"]) >= {"/bare", "/cookie/read", "/cookie/write"}
    assert results["scale"]["lru_memory"]["sessions"] == 1000
    assert set(results["scale"]["sqlite"]) == {"200", "1000"}
    if results["redis"] is not None:
        # Counted on every path a command can take (redis-py's, the store's own); the
        # session id in X-Auth-Token instead of the cookie changes nothing in Redis.
        for name in ("wsgisession RedisStore", "wsgisession RedisStore (header)"):
            trips = results["round_trips"]["systems"][name]
            modes = ("untouched", "read", "write")
            assert [trips[mode]["round_trips"] for mode in modes] == [0, 1, 2], name
    assert chart.exists() == (results["chart_skipped"] is None)
    assert len(results["targets"]) > 10


def test_the_after_round_trip_measurement_runs_and_cleans_up(redis_url: str) -> None:
    # docs/benchmarks.md explains the Redis floor gap with this script's figures.
    results = after_round_trip.measure(redis_url, rounds=1, number=3)
    assert list(results) == [
        "bare",
        "raw PING alone",
        "cookie read alone",
        "PING, then cookie read",
        "cookie read, then PING",
        "RedisStore read",
    ]
    assert all(figures["wall"] > 0 and figures["cpu"] >= 0 for figures in results.values())
    client = redis.Redis.from_url(redis_url)
    assert not list(client.scan_iter("wsgisession-after-round-trip:*"))
    client.close()


@pytest.mark.parametrize("store_name", ["lru", "sqlite", "redis"])
def test_the_login_rows_of_the_account_benchmark_count_the_cap(
    store_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # docs/benchmarks.md gives these store calls beside the timings of
    # benchmarks/account.py's login rows: no cap, then max_per_user=3 under and at it.
    prefix = f"wsgisession-bench-test:{uuid.uuid4().hex}:"
    url = request.getfixturevalue("redis_url") if store_name == "redis" else ""
    factories: dict[str, Callable[[], Any]] = {
        "lru": LRUStore,
        "sqlite": lambda: SQLiteStore(tmp_path / f"{uuid.uuid4().hex}.sqlite3"),
        "redis": lambda: RedisStore(url, prefix=f"{prefix}{uuid.uuid4().hex}:"),
    }
    factory = factories[store_name]
    try:
        tracked = account.calls_per_request(factory, "tracked", "login", tmp_path)
        under = account.calls_per_request(factory, "capped", "login", tmp_path)
        full = account.calls_per_request(factory, "capped", "login-full", tmp_path)
    finally:
        if store_name == "redis":
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(prefix + "*"):
                client.delete(key)
            client.close()
    trips = {"round trips"} if store_name == "redis" else set()
    assert {k: v for k, v in tracked.items() if k not in trips} == {"save": 1, "index_put": 1}
    listed = {"save": 1, "index_list": 1, "index_admit": 1}
    assert {k: v for k, v in under.items() if k not in trips} == listed
    # At the cap each login ends the oldest session: a second save leaves its note.
    assert {k: v for k, v in full.items() if k not in trips} == {**listed, "save": 2}
    if store_name == "redis":
        assert (tracked["round trips"], under["round trips"], full["round trips"]) == (2, 3, 6)


def test_the_ten_million_session_benchmark_runs_small_and_cleans_up(tmp_path: Path) -> None:
    # make bench-scale at two tiny sizes: private servers, every figure there, one
    # session in ten expired and removed, the other parts' results kept, nothing left.
    from benchmarks.scale_servers import _postgres_binary

    if shutil.which("redis-server") is None or _postgres_binary("initdb") is None:
        skip_or_fail("make bench-scale needs redis-server and the PostgreSQL server binaries")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"per_request": {"kept": True}}))
    leftovers = set(Path(tempfile.gettempdir()).glob("wsgisession-scale-*"))
    command = [sys.executable, str(ROOT / "benchmarks" / "scale_servers.py")]
    command += ["--sessions", "200", "1000", "--samples", "20", "--expiry-window", "1"]
    command += ["--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["per_request"] == {"kept": True}
    scale = results["scale_servers"]
    for store in ("redis", "postgres"):
        for count in (200, 1000):
            figures = scale[store][str(count)]
            assert figures["load_us"]["n"] == figures["save_us"]["n"] == 20
            phases = (
                [figures["gc"], figures["gc"]["vacuum"]]
                if store == "postgres"
                else [figures["expiry"]["default_effort"], figures["expiry"]["effort_10"]]
            )
            assert [phase["during"]["errors"] for phase in phases] == [0, 0]
    expiry = scale["redis"]["1000"]["expiry"]
    # Active expiry at effort 10 leaves at most 1 % of the keys expired but stored.
    assert expiry["expired"] == 100
    assert expiry["still_stored"] <= 10
    assert scale["redis"]["1000"]["used_memory_per_session"] > 0
    assert "nothing to purge" in scale["redis"]["gc_command"]
    gc = scale["postgres"]["1000"]["gc"]
    assert (gc["purged"], gc["returncode"], gc["batches"]) == (100, 0, 1)
    assert gc["vacuum"]["seconds"] > 0
    assert scale["postgres"]["1000"]["bytes_per_row"] > 0
    assert scale["fits"]["redis"]["sessions_in_memory"] > 0
    assert "## Ten million sessions" in done.stdout
    assert set(Path(tempfile.gettempdir()).glob("wsgisession-scale-*")) == leftovers
