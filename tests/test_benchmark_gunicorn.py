"""The gunicorn parts of `make bench`: pinned throughput, and counts inside the worker.

No timing is asserted: the figures belong in docs/benchmarks.md. These check that
the server and the load generator really run on cores of their own, and that the
callgrind profile of a worker attributes a route's work to it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks import gunicorn_profile, throughput

from .services import skip_or_fail

pytestmark = pytest.mark.slow


def test_the_worker_and_the_load_generator_run_on_cores_of_their_own() -> None:
    if not {0, 1} <= os.sched_getaffinity(0) or shutil.which("taskset") is None:
        skip_or_fail("pinning needs CPUs 0 and 1 and taskset (util-linux)")
    assert throughput.pinning() == (["taskset", "-c", "0"], ["taskset", "-c", "1"])
    results = throughput.measure(None, duration=0.2, rounds=1, tool="python", servers=("sync",))
    assert results["pinned"] is True
    assert results["servers"]["sync"]["server"].startswith("taskset -c 1 gunicorn -w 1")
    variants = results["servers"]["sync"]["variants"]
    assert set(variants) == {"/bare", "/cookie/read", "/cookie/write"}
    assert all(v["median"] > 0 for v in variants.values())
    assert variants["/bare"]["ratio"] == 1


def test_the_worker_profile_counts_what_a_session_read_adds_to_a_request() -> None:
    if shutil.which("valgrind") is None or not Path("/usr/include/valgrind/callgrind.h").exists():
        skip_or_fail("valgrind and its headers (apt-get install valgrind)")
    results = gunicorn_profile.measure(["/bare", "/cookie/read"], calls=5, warmup=3)
    bare = results["per_request"]["/bare"]
    # gunicorn parses and answers the request: hundreds of thousands of instructions.
    assert bare["Ir"] > 100_000
    assert bare["cycles"] > bare["Ir"]
    # Verifying the cookie and decoding the session is work the bare app never does.
    assert results["above_bare"]["/cookie/read"]["Ir"] > 10_000
