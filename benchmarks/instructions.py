"""Instructions per request under ``valgrind --tool=callgrind``: deterministic figures.

Wall-clock and even CPU time swing by tens of percent on a shared machine; the count
of instructions executed does not. Each cell (a system and a workload, or a bare
app) is run *calls* times between two callgrind client requests (a tiny C library
compiled on the fly, called through ctypes): one zeroes the counters, the other
writes the cell's profile. Start-up, imports and warm-up are left out. Run with
``--profile DIR`` to keep the callgrind files for ``callgrind_annotate``.

Instructions are not time (a cache miss or a syscall's wait costs more than its
instructions), but a change that removes instructions removes time, and the count
shows it even when the machine is busy.

Usage: ``.venv/bin/python benchmarks/instructions.py [--systems NAME ...] [--calls 200]``
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Callgrind's client requests, callable from Python through ctypes: zero the counters
# before a cell, dump them (one profile file per cell) after it.
_MARKS_C = """
#include <valgrind/callgrind.h>
void wsgisession_zero(void) { CALLGRIND_ZERO_STATS; }
void wsgisession_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


def _build_marks(directory: Path) -> Path | str:
    """Compile the two marks into a shared library; returns why not, if it cannot."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler (apt-get install gcc)"
    if not Path("/usr/include/valgrind/callgrind.h").exists():
        return "no valgrind/callgrind.h (apt-get install valgrind)"
    source, library = directory / "marks.c", directory / "marks.so"
    source.write_text(_MARKS_C)
    command = [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)]
    subprocess.run(command, check=True)
    return library


def _measured(call: Callable[[], None], calls: int, marks: Any, name: str) -> int:
    """Run *call* *calls* times between a zero and a dump of callgrind's counters.

    The cyclic garbage collector is off while the cell runs: whether one of its
    passes falls inside a cell depends on everything allocated before, so it moved
    a cell's count by up to half between runs of the same code. What a request
    allocates is still counted; when the collector reclaims it is not.
    """
    gc.collect()
    gc.disable()
    try:
        marks.wsgisession_zero()
        for _ in range(calls):
            call()
        marks.wsgisession_dump(name.encode())
    finally:
        gc.enable()
    return calls


def _run_cells(args: argparse.Namespace) -> None:
    """Inside valgrind: build the systems, warm them up, one marked call per cell."""
    from benchmarks import perrequest
    from benchmarks.common import MODES, redis_target

    with tempfile.TemporaryDirectory() as tmpdir, redis_target(args.redis_url) as redis:
        suites, baselines, _ = perrequest.build_suites(redis, Path(tmpdir), args.systems)
        cells: list[tuple[str, str, Callable[[], None]]] = [
            ("baseline:" + name, "bare", client) for name, client in baselines.items()
        ]
        for suite in suites:
            cells += [(suite.name, mode, suite.clients[mode]) for mode in MODES]
        # Warm up well past what caches and pymalloc's pools need: with 5 calls, a
        # one-time growth could fall inside a cell and move it by a thousand
        # instructions per request, depending on the code's layout.
        for _, _, call in cells:
            for _ in range(100):
                call()
        marks = ctypes.CDLL(args.marks)
        marks.wsgisession_dump.argtypes = [ctypes.c_char_p]
        order = []
        for name, mode, call in cells:
            ran = _measured(call, args.calls, marks, f"{name}/{mode}")
            order.append({"system": name, "mode": mode, "calls": ran})
        Path(args.cells).write_text(json.dumps(order))
        for suite in suites:
            suite.close()


def _totals(directory: Path) -> list[int]:
    """Instructions in each callgrind dump, in the order they were written."""
    dumps = sorted(
        (p for p in directory.iterdir() if re.fullmatch(r"callgrind\.out\.\d+\.\d+", p.name)),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )
    totals = []
    for dump in dumps:
        text = dump.read_text(errors="replace")
        if not re.search(r"^desc: Trigger: Client Request", text, re.MULTILINE):
            continue  # the dump at exit
        match = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
        totals.append(int(match.group(1)) if match else 0)
    return totals


def measure(
    systems: list[str] | None, calls: int, redis_url: str | None, keep: Path | None = None
) -> dict[str, Any]:
    """Instructions per request of each cell, and above its baseline."""
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(tmpdir)
        cells_file = out / "cells.json"
        marks = _build_marks(out)
        if isinstance(marks, str):
            return {"skipped": marks}
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out.%p",
            sys.executable,
            str(Path(__file__).resolve()),
            "--inside",
            "--cells",
            str(cells_file),
            "--calls",
            str(calls),
            "--marks",
            str(marks),
        ]
        if systems:
            command += ["--systems", *systems]
        if redis_url:
            command += ["--redis-url", redis_url]
        # A fixed, minimal environment: the count moved by over a thousand
        # instructions per request with the caller's environment variables (under
        # pytest, say), which shift the process's memory layout and with it the
        # dict probes of id-hashed keys.
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}
        subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)
        cells = json.loads(cells_file.read_text())
        totals = _totals(out)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in out.glob("callgrind.out.*"):
                shutil.copy(dump, keep / dump.name)
        if len(totals) != len(cells):
            raise RuntimeError(f"{len(cells)} cells but {len(totals)} callgrind dumps")
    per_call = {
        (cell["system"], cell["mode"]): total / cell["calls"]
        for cell, total in zip(cells, totals, strict=True)
    }
    bare = per_call[("baseline:wsgi", "bare")]
    results: dict[str, Any] = {"calls": calls, "bare_wsgi": bare, "systems": {}}
    for (system, mode), value in per_call.items():
        if system.startswith("baseline:"):
            continue
        base = per_call.get(("baseline:" + _baseline_of(system), "bare"), bare)
        results["systems"].setdefault(system, {})[mode] = {
            "instructions": value,
            "above_baseline": value - base,
        }
    return results


def _baseline_of(system: str) -> str:
    if system.startswith(("Flask", "flask")):
        return "flask"
    if system.startswith("Django"):
        return "django"
    return "wsgi"


def print_table(results: dict[str, Any]) -> None:
    if "skipped" in results:
        print(f"\n## Instructions per request: skipped ({results['skipped']})")
        return
    print(f"\n## Instructions per request (callgrind, {results['calls']} calls per cell)")
    print("# thousands of instructions above the bare app; deterministic, unlike the timings")
    print(f"{'system':32} {'untouched':>10} {'read':>10} {'write':>10}")
    for system, modes in results["systems"].items():
        cells = " ".join(
            f"{modes[m]['above_baseline'] / 1000:10.1f}" if m in modes else f"{'-':>10}"
            for m in ("untouched", "read", "write")
        )
        print(f"{system:32} {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--systems", nargs="+")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--redis-url")
    parser.add_argument("--profile", type=Path, help="keep the callgrind files here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cells", help=argparse.SUPPRESS)
    parser.add_argument("--marks", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        _run_cells(args)
        return 0
    results = measure(args.systems, args.calls, args.redis_url, args.profile)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
