"""`make bench` must keep working: run every part of it once, with a tiny count.

No timing is asserted (this machine's figures belong in benchmarks/results.json);
the test checks that each part ran, produced its figures, and that peers missing
from this environment (the bench extra is not needed here) were reported as skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from benchmarks import after_round_trip

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
    # Every system the benchmark knows either ran or was reported as skipped, with why.
    assert len(names) + len(results["skipped"]) == 18
    assert all(reason for reason in results["skipped"].values())
    for system in results["per_request"]["systems"]:
        assert set(system["modes"]) == {"untouched", "read", "write"}
    assert "## Per request" in done.stdout
    assert "## Targets" in done.stdout

    assert set(results["throughput"]["variants"]) >= {"/bare", "/cookie/read", "/cookie/write"}
    assert results["scale"]["lru_memory"]["sessions"] == 1000
    assert set(results["scale"]["sqlite"]) == {"200", "1000"}
    if results["redis"] is not None:
        trips = results["round_trips"]["systems"]["wsgisession RedisStore"]
        # Counted on every path a command can take (redis-py's, the store's own).
        assert [trips[mode]["round_trips"] for mode in ("untouched", "read", "write")] == [0, 1, 2]
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
