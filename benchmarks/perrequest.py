"""Per-request cost in process: every system, every workload, interleaved rounds."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import peers, stores
from benchmarks.common import MODES, Client, RedisTarget, Suite, interleaved, noise, summary

SuiteBuilder = Callable[[RedisTarget | None, Path], Suite]


def build_suites(
    redis: RedisTarget | None, tmp: Path, only: list[str] | None = None
) -> tuple[list[Suite], dict[str, Client], dict[str, str]]:
    """Every suite that can run here, the baselines they need, and why others were skipped.

    :param only: Keep the suites whose name contains one of these (a partial run).
    """
    suites: list[Suite] = []
    skipped: dict[str, str] = {}
    builders: list[SuiteBuilder] = stores.SUITES + peers.SUITES
    for build in builders:
        try:
            made = build(redis, tmp)
            if only and not any(part.lower() in made.name.lower() for part in only):
                made.close()
                continue
            suites.append(made)
        except ImportError as exc:
            name = build.__name__.replace("_", " ")
            skipped[name] = str(exc) or type(exc).__name__
            print(f"# skipped {name}: {exc}", file=sys.stderr)
    baselines: dict[str, Client] = {"wsgi": stores.bare_client()}
    for suite in suites:
        if suite.baseline not in baselines:
            baselines[suite.baseline] = peers.BASELINES[suite.baseline]()
            baselines[suite.baseline].check()
    return suites, baselines, skipped


def measure(
    suites: list[Suite],
    baselines: dict[str, Client],
    *,
    rounds: int,
    target_ms: float,
    number: int | None,
) -> dict[str, Any]:
    """µs per request above each system's baseline (min and median over the rounds)."""
    cells: dict[tuple[str, str], Callable[[], None]] = {}
    for name, client in baselines.items():
        cells["baseline:" + name, "bare"] = client
    for suite in suites:
        for mode in MODES:
            cells[suite.name, mode] = suite.clients[mode]
    samples, cpu = interleaved(cells, rounds, target_ms, number)

    base = {name: summary(samples["baseline:" + name, "bare"]) for name in baselines}
    base_cpu = {name: min(cpu["baseline:" + name, "bare"]) for name in baselines}
    systems: list[dict[str, Any]] = []
    for suite in suites:
        bare = base[suite.baseline]
        bare_rounds = samples["baseline:" + suite.baseline, "bare"]
        modes: dict[str, dict[str, float]] = {}
        for mode in MODES:
            stats = summary(samples[suite.name, mode])
            # The median of per-round differences: a round's baseline ran moments
            # before, so a slow spell raises both (a difference of medians need not).
            rounds_above = [
                s - b for s, b in zip(samples[suite.name, mode], bare_rounds, strict=True)
            ]
            modes[mode] = {
                "min": stats["min"] - bare["min"],
                "median": statistics.median(rounds_above),
                "cpu_min": min(cpu[suite.name, mode]) - base_cpu[suite.baseline],
                "raw_min": stats["min"],
            }
        systems.append(
            {
                "name": suite.name,
                "baseline": suite.baseline,
                "notes": suite.notes,
                "compare": suite.compare,
                "modes": modes,
            }
        )
    by_name = {system["name"]: system for system in systems}
    for system in systems:
        ours = by_name.get(system["compare"])
        for mode in MODES:
            ratio = None
            if ours is not None and ours["modes"][mode]["min"] > 0.05:
                ratio = system["modes"][mode]["min"] / ours["modes"][mode]["min"]
            system["modes"][mode]["ratio"] = ratio
    return {
        "unit": "microseconds per request above the baseline app",
        "cpu": "cpu_min: this thread's CPU time (time.thread_time), min over rounds",
        "rounds": rounds,
        "baselines": base,
        "systems": systems,
        "noise_median_over_min": noise(samples.values()),
    }
