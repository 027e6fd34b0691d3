"""wsgisession against its peers, in one run (issue 7).

- **Per request, in process**: three workloads on a ~400-byte logged-in session
  (``untouched``: the view ignores the session; ``read``: it reads one key;
  ``write``: it increments a counter), each through a direct WSGI call with the
  previous response's cookie sent back. Systems: wsgisession's CookieStore (signed,
  encrypted), LRUStore, SQLiteStore, RedisStore, PostgresStore (the last three also
  with ``encrypt=True``: each value sealed at rest); CookieStore and RedisStore with
  ``header="X-Auth-Token"``, the session sent back in that header instead of the
  cookie (compared with the same store on the cookie); Beaker (encrypted
  cookie, memory, Redis); Flask's cookie session; Flask-Session on Redis; Django's
  ``signed_cookies``, ``cache`` and ``db`` engines (``db`` on the same PostgreSQL
  as PostgresStore, in a schema of the run's own). Each is measured above its own bare app
  (plain WSGI, Flask without sessions, Django without the session middleware).
- **Round trips**: Redis round trips and commands per request (wsgisession, Beaker,
  Flask-Session).
- **Throughput**: ``wrk -t1 -c8`` pinned to CPU 0 against one gunicorn worker pinned to
  CPU 1 (sync, then gthread): bare, cookie and Redis sessions.
- **Scale**: LRUStore memory per session; SQLite and Redis load/save latency with
  10,000 and 100,000 sessions stored (1,000,000 with ``--scale``). Redis and
  PostgreSQL with 10,000,000: ``make bench-scale`` (:mod:`benchmarks.scale_servers`).

Timings on a shared machine are noisy: each figure is the minimum (and the median)
over interleaved rounds, ratios are taken within one run, and the output says how
noisy the run was. Peers that are not installed are skipped and listed as such.

Usage: ``make bench`` or ``.venv/bin/python benchmarks/run.py [--scale] [--quick]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import perrequest, report, roundtrips, scale, throughput
from benchmarks.common import machine, postgres_target, redis_target

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("requests", "roundtrips", "throughput", "scale")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    parser.add_argument("--target-ms", type=float, default=40, help="length of one timing (40)")
    parser.add_argument("--number", type=int, help="fixed calls per timing (default: calibrated)")
    parser.add_argument("--duration", type=float, default=2, help="seconds per wrk run (2)")
    parser.add_argument("--throughput-rounds", type=int, default=7)
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (auto: wrk if installed)",
    )
    parser.add_argument(
        "--redis-cpu",
        choices=("server", "load"),
        default="server",
        help="pin the private redis-server to the gunicorn worker's core or wrk's (server)",
    )
    parser.add_argument("--scale", action="store_true", help="add 1,000,000 stored sessions")
    parser.add_argument("--sessions", type=int, nargs="+", help="store sizes for the scale part")
    parser.add_argument("--samples", type=int, default=300, help="latency samples per size")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--systems", nargs="+", help="only the systems whose name contains one of these"
    )
    parser.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    parser.add_argument(
        "--postgres-url",
        help="use this PostgreSQL, in a schema of the run's own"
        " (default: postgresql://postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "benchmarks.png")
    parser.add_argument(
        "--quick", action="store_true", help="a few calls of everything: checks, not figures"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.number, args.samples = 1, 3, 5
        args.duration, args.throughput_rounds = 0.2, 1
        args.sessions = args.sessions or [200, 1000]
    if args.sessions is None:
        args.sessions = [10_000, 1_000_000] if args.scale else [10_000, 100_000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "command": "make bench" + (" BENCH_ARGS=--scale" if args.scale else ""),
        "session": "benchmarks/common.py SESSION (~400 bytes serialized)",
    }
    print(f"# {results['date']}  {results['machine']}")
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        redis_target(args.redis_url) as redis,
        postgres_target(args.postgres_url) as postgres,
    ):
        tmp = Path(tmpdir)
        results["redis"] = redis.where if redis else None
        results["postgres"] = postgres.where if postgres else None
        suites, baselines, skipped = perrequest.build_suites(redis, tmp, args.systems)
        results["skipped"] = skipped
        try:
            if "requests" in args.only:
                results["per_request"] = perrequest.measure(
                    suites,
                    baselines,
                    rounds=args.rounds,
                    target_ms=args.target_ms,
                    number=args.number,
                )
                report.print_per_request(results["per_request"])
            if "roundtrips" in args.only and redis is not None:
                number = 10 if args.quick else 200
                results["round_trips"] = roundtrips.measure(suites, redis, number)
                report.print_round_trips(results["round_trips"])
        finally:
            for suite in suites:
                suite.close()
        if "throughput" in args.only:
            results["throughput"] = throughput.measure(
                redis,
                duration=args.duration,
                rounds=args.throughput_rounds,
                tool=args.load,
                redis_cpu=args.redis_cpu,
            )
            report.print_throughput(results["throughput"])
        if "scale" in args.only:
            results["scale"] = scale.measure(args.sessions, redis, tmp, args.samples)
            report.print_scale(results["scale"])
    for name, reason in skipped.items():
        print(f"# skipped {name}: {reason}")
    results["targets"] = report.targets(results)
    report.print_targets(results["targets"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    if "requests" in args.only:
        results["chart_skipped"] = report.chart(results, args.chart)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.json.exists():  # make bench-scale's part, from a run of its own: kept
        kept = json.loads(args.json.read_text()).get("scale_servers")
        if kept is not None:
            results["scale_servers"] = kept
    args.json.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    print(f"\n# {results['seconds']:.0f} s; wrote {args.json} and {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
