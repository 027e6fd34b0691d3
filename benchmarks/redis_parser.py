"""RedisStore load and save with redis-py's pure-Python reply parser, then with hiredis.

Why ``hiredis`` is in the ``redis`` extra: redis-py parses replies in C when it is
installed. Both parsers are measured in one run, in the same process, against the
same Redis, by passing ``parser_class`` to the client. The figure is CPU time per
call (``time.process_time``): the round trip itself costs the same with either
parser and, on a shared machine, its wall time is mostly noise.

Usage: ``.venv/bin/python benchmarks/redis_parser.py [--redis-url URL]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from redis._parsers import _HiredisParser, _RESP2Parser

from wsgisession import RedisStore

#: Nine fields of ~40 bytes: the shape of benchmarks/common.py's logged-in session.
FIELDS = {f"k{i}": b'"' + b"x" * 40 + b'"' for i in range(9)}


def cpu_us(call: Callable[[], object], number: int, rounds: int) -> tuple[float, float]:
    """(min, median) CPU microseconds per call over *rounds* rounds of *number* calls."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(number):
            call()
        samples.append((time.process_time() - started) / number * 1e6)
    return min(samples), statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--number", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    parsers: dict[str, type] = {"python": _RESP2Parser}
    if redis.utils.HIREDIS_AVAILABLE:
        parsers["hiredis"] = _HiredisParser
    else:
        print("# hiredis is not installed: pip install hiredis (or sessionlayer[redis])")
    print("parser   load min / median (CPU us)   save min / median (CPU us)")
    for name, parser_class in parsers.items():
        client = redis.Redis.from_url(args.redis_url, parser_class=parser_class)
        store = RedisStore(client=client, prefix=f"wsgisession-bench:{uuid.uuid4().hex}:")
        store.save("s", FIELDS, (), 60, create=True)
        load = cpu_us(lambda s=store: s.load("s"), args.number, args.rounds)
        save = cpu_us(
            lambda s=store: s.save("s", {"k1": b'"y"'}, (), 60, create=False),
            args.number,
            args.rounds,
        )
        store.delete("s")
        client.close()
        print(
            f"{name:8} {load[0]:8.1f} / {load[1]:6.1f}            {save[0]:8.1f} / {save[1]:6.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
