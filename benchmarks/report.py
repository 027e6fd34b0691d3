"""The tables on stdout, the targets with this run's figures, and the chart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.common import MODES
from benchmarks.stores import FLOOR


def _us(value: float) -> str:
    return f"{value:8.1f}" if abs(value) >= 10 else f"{value:8.2f}"


def _ratio(value: float | None) -> str:
    return f"x{value:.1f}" if value is not None else "-"


def print_per_request(results: dict[str, Any]) -> None:
    print(f"\n## Per request, in process: µs above the baseline app ({results['rounds']} rounds)")
    print("# min over interleaved rounds (min - baseline min), and the median of per-round")
    print("# differences; ratio = peer / the wsgisession store named, from the mins")
    base = results["baselines"]
    print(
        "# baselines (absolute µs, min/median): "
        + ", ".join(f"{name} {v['min']:.1f}/{v['median']:.1f}" for name, v in base.items())
    )
    print(
        f"# noise: the median round was {results['noise_median_over_min']:.0%} slower than the min"
    )
    header = f"{'system':32} " + " ".join(f"{mode + ' min':>11} {'median':>8}" for mode in MODES)
    print(header + f" {'read':>7} {'write':>7}  vs")
    for system in results["systems"]:
        modes = system["modes"]
        cells = " ".join(
            f"{_us(modes[mode]['min']):>11} {_us(modes[mode]['median'])}" for mode in MODES
        )
        ratios = f"{_ratio(modes['read']['ratio']):>7} {_ratio(modes['write']['ratio']):>7}"
        print(f"{system['name']:32} {cells} {ratios}  {system['compare']}")
    print("\n# CPU time only (thread_time, min above baseline): steadier on a busy machine,")
    print("# but blind to time spent waiting for Redis or SQLite")
    for system in results["systems"]:
        cells = " ".join(f"{_us(system['modes'][mode]['cpu_min']):>11}" for mode in MODES)
        print(f"{system['name']:32} {cells}")


def print_round_trips(results: dict[str, Any]) -> None:
    exact = "" if results["exact"] else " (shared server: may include other clients' commands)"
    print(f"\n## Redis per request ({results['server']}){exact}")
    print("# round trips counted in the client; server commands from INFO commandstats (incl. Lua)")
    ping = results["ping_us"]
    print(
        f"# one round trip (redis-py PING): {ping['min']:.0f} µs min, {ping['median']:.0f} median"
    )
    print(f"{'system':32} " + " ".join(f"{mode:>10}" for mode in MODES) + "  commands (write)")
    for name, modes in results["systems"].items():
        cells = " ".join(
            f"{modes[m]['round_trips']:>4.1f} / {modes[m]['server_commands']:<3.1f}" for m in MODES
        )
        detail = ", ".join(f"{c} {n:g}" for c, n in modes["write"]["by_command"].items())
        print(f"{name:32} {cells}  {detail}")


def print_throughput(results: dict[str, Any]) -> None:
    servers = results.get("servers") or {"sync": results}
    for server in servers.values():
        print(
            f"\n## Throughput: {server['server']}, {results['command']}, {results['rounds']} rounds"
        )
        if results["tool"] != "wrk":
            print("# a Python load generator was used, not wrk: it is the bottleneck")
        if not results.get("pinned"):
            print("# not pinned: server and load generator shared the cores")
        print("# vs bare: median over rounds of (route / bare in the same round); best/best too;")
        print("# added: µs per request above bare, from the median requests/s")
        print(
            f"{'route':16} {'best req/s':>11} {'median':>9} {'vs bare':>8} {'best/best':>9}"
            f" {'added':>8}"
        )
        for path, v in server["variants"].items():
            print(
                f"{path:16} {v['best']:11.0f} {v['median']:9.0f} "
                f"{v['ratio']:8.0%} {v['ratio_best']:9.0%} {v['added_us']:7.1f}µs"
            )


def print_scale(results: dict[str, Any]) -> None:
    lru = results["lru_memory"]
    print(f"\n## Scale ({results['seconds']:.0f} s)")
    rss = lru["bytes_per_session_rss"]
    print(
        f"LRUStore: {lru['bytes_per_session_tracemalloc']:.0f} B/session (tracemalloc,"
        f" {lru['tracemalloc_sessions']:,} sessions)"
        + (f", {rss:.0f} B/session (RSS delta, {lru['sessions']:,} sessions)" if rss else "")
        + f"; serialized payload {lru['payload_bytes_per_session']} B"
    )
    table = results.get("memory")
    if table is not None:
        sizes = [str(n) for n in results["sessions"]]
        print(f"{'bytes per session':42}" + "".join(f"{int(n):>12,}" for n in sizes))
        for name, figures in table["bytes_per_session"].items():
            cells = "".join(
                f"{figures[n]:>12,.0f}" if figures.get(n) is not None else f"{'-':>12}"
                for n in sizes
            )
            print(f"{name:42}{cells}")
        for name, reason in table["skipped"].items():
            print(f"# memory of {name} skipped: {reason}")
    head = f"{'load median':>12} {'p90':>8} {'save median':>12} {'p90':>8}"
    print(f"{'store':8} {'sessions':>10} {head}")
    for store in ("sqlite", "redis"):
        for count, v in results[store].items():
            load, save = v["load_us"], v["save_us"]
            print(
                f"{store:8} {int(count):>10,} {load['median']:>10.1f}µs {load['p90']:>6.1f}µs"
                f" {save['median']:>10.1f}µs {save['p90']:>6.1f}µs"
            )


def _cell(figures: dict[str, Any], op: str) -> str:
    v = figures.get(f"{op}_us")
    return f"{v['median']:>9,.0f} {v['p99']:>7,.0f}" if v else f"{'-':>9} {'-':>7}"


def _during(row: str, seconds: float, figures: dict[str, Any]) -> None:
    before, during = figures["before"], figures["during"]
    print(
        f"{row} {seconds:>8.1f}  {_cell(before, 'load')} {_cell(during, 'load')}"
        f"  {_cell(before, 'save')} {_cell(during, 'save')}  {during['samples']:>6}"
        + (f"  {during['errors']} errors" if during["errors"] or before["errors"] else "")
    )


def _scale_servers_sizes(results: dict[str, Any]) -> None:
    print(
        f"{'store':9} {'sessions':>11} {'fill s':>8} {'B/session':>10}"
        f" {'load med':>9} {'p99':>7} {'save med':>9} {'p99':>7}"
    )
    size = {"redis": "used_memory_per_session", "postgres": "bytes_per_row"}
    for store in ("redis", "postgres"):
        part = results.get(store) or {}
        if "skipped" in part:
            print(f"{store:9} skipped: {part['skipped']}")
        for count, v in part.items():
            if not count.isdigit():
                continue
            if "skipped" in v:
                print(f"{store:9} {int(count):>11,} skipped: {v['skipped']}")
                continue
            print(
                f"{store:9} {int(count):>11,} {v['fill_seconds']:>8.0f} {v[size[store]]:>10,.0f}"
                f" {_cell(v, 'load')} {_cell(v, 'save')}"
            )


def _scale_servers_expiry(results: dict[str, Any]) -> None:
    print("\n# expiry of 1 session in 10: Redis's active expiry (default effort 1 for a while,")
    print("# then active-expire-effort 10), PostgreSQL's wsgisession gc and a VACUUM after it;")
    print("# 'removed' in that time; latency (µs, median p99) just before and while it runs")
    print(
        f"{'store':18} {'sessions':>11} {'removed':>10} {'seconds':>8}  {'load before':>17}"
        f" {'load during':>17}  {'save before':>17} {'save during':>17}  {'n':>6}"
    )
    for count, v in (results.get("redis") or {}).items():
        if count.isdigit() and "expiry" in v:
            expiry = v["expiry"]
            for phase, label in (("default_effort", "effort 1"), ("effort_10", "effort 10")):
                figures = expiry[phase] | {"before": expiry["before"]}
                row = f"{'redis ' + label:18} {int(count):>11,} {figures['reclaimed']:>10,}"
                _during(row, figures["seconds"], figures)
    for count, v in (results.get("postgres") or {}).items():
        if count.isdigit() and "gc" in v:
            gc = v["gc"]
            row = f"{'postgres gc':18} {int(count):>11,} {gc['purged']:>10,}"
            _during(row, gc["wall_seconds"], gc)
            if gc.get("error"):
                print(f"# wsgisession gc at {int(count):,} failed: {gc['error']}")
            vacuum = gc["vacuum"] | {"before": gc["before"]}
            removed = vacuum["dead_rows_before"] - vacuum["dead_rows_after"]
            row = f"{'postgres VACUUM':18} {int(count):>11,} {removed:>10,}"
            _during(row, vacuum["seconds"], vacuum)


def print_scale_servers(results: dict[str, Any]) -> None:
    """``make bench-scale``: Redis and PostgreSQL with up to ten million sessions."""
    print(f"\n## Ten million sessions: Redis and PostgreSQL ({results['seconds']:.0f} s)")
    print(
        f"# {results['samples']} samples per size, interleaved; µs, median and p99;"
        f" {results['expired_share']:.0%} of the sessions expired"
    )
    _scale_servers_sizes(results)
    postgres = results.get("postgres") or {}
    if "fdatasync_us_before" in postgres:
        before, after = postgres["fdatasync_us_before"], postgres["fdatasync_us_after"]
        print(
            "# PostgreSQL's disk, 8 kB write + fdatasync (a commit's floor), before / after"
            f" the latency rounds: median {before['median']:,.0f} / {after['median']:,.0f} µs,"
            f" p99 {before['p99']:,.0f} / {after['p99']:,.0f} µs"
        )
    _scale_servers_expiry(results)
    gc_command = (results.get("redis") or {}).get("gc_command")
    if gc_command:
        print(f"# wsgisession gc on Redis: {gc_command}")
    for store, v in results.get("fits", {}).items():
        if isinstance(v, dict):
            print(
                f"# {store}: {v['bytes_per_session']:,.0f} B/session at {v['measured_at']:,}:"
                f" {v['sessions_per_gib']:,.0f} per GiB,"
                f" {v['sessions_in_memory']:,} in {results['fits']['memory_gib']} GiB"
            )


def _cost(per: dict[str, Any], name: str, mode: str) -> float | None:
    """µs above the system's bare app: the median of the per-round differences."""
    for system in per["systems"]:
        if system["name"] == name:
            return float(system["modes"][mode]["median"])
    return None


#: Issue 30's throughput targets: route, fraction of bare's requests/s.
THROUGHPUT_TARGETS = (("/cookie/read", 0.90), ("/cookie/write", 0.85), ("/redis/read", 0.70))
#: Issue 30's memory target: MEMORY USAGE of the benchmark session, bytes.
REDIS_BYTES_TARGET = 550


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figure from this run (``met`` is None if not run).

    Per-request figures are medians over the interleaved rounds, each round's
    figure taken above the bare app of the same round.
    """
    per = results.get("per_request", {"systems": []})
    rows: list[dict[str, Any]] = []

    def add(target: str, figure: float | None, ok: bool | None, unit: str) -> None:
        rows.append({"target": target, "figure": figure, "unit": unit, "met": ok})

    def at_most(target: str, value: float | None, limit: float, unit: str = "µs") -> None:
        add(target, value, None if value is None else value <= limit, unit)

    def ratio(target: str, peer: str, ours: str, mode: str, want: float) -> None:
        theirs, mine = _cost(per, peer, mode), _cost(per, ours, mode)
        value = theirs / mine if theirs is not None and mine and mine > 0 else None
        add(target, value, None if value is None else value >= want, "x")

    cookie = "wsgisession cookie"
    at_most("untouched <= 1 µs above bare", _cost(per, cookie, "untouched"), 1)
    at_most("cookie read <= 15 µs", _cost(per, cookie, "read"), 15)
    at_most("cookie write <= 30 µs", _cost(per, cookie, "write"), 30)
    ratio("write >= 8x cheaper than Flask cookie", "Flask cookie session", cookie, "write", 8)
    ratio("write >= 5x cheaper than Django signed", "Django signed_cookies", cookie, "write", 5)
    at_most("encrypted write <= 40 µs", _cost(per, cookie + " (encrypted)", "write"), 40)
    trips = results.get("round_trips", {}).get("systems", {}).get("wsgisession RedisStore")
    for mode, limit in (("untouched", 0), ("read", 1), ("write", 2)):
        value = trips[mode]["round_trips"] if trips else None
        at_most(f"Redis {mode} <= {limit} commands", value, limit, "round trips")
    for peer in ("Beaker Redis", "Flask-Session Redis"):
        for mode in ("read", "write"):
            ratio(
                f"Redis {mode} >= 4x cheaper than {peer}", peer, "wsgisession RedisStore", mode, 4
            )
    # Redis close to the round trips it cannot avoid, measured in this run against a
    # bare app making them on a raw socket (the "floor" system).
    for mode, limit in (("read", 40), ("write", 60)):
        ours, floor = _cost(per, "wsgisession RedisStore", mode), _cost(per, FLOOR, mode)
        value = ours - floor if ours is not None and floor is not None else None
        trips = "1 raw round trip" if mode == "read" else "2 raw round trips"
        at_most(f"Redis {mode} <= {trips} + {limit} µs", value, limit)
    memory = results.get("scale", {}).get("memory", {}).get("bytes_per_session", {})
    usage = memory.get("wsgisession RedisStore (MEMORY USAGE)", {})
    for count in ("10000", "1000000"):
        at_most(
            f"Redis <= {REDIS_BYTES_TARGET} B/session at {int(count):,}",
            usage.get(count),
            REDIS_BYTES_TARGET,
            "B",
        )
    throughput = results.get("throughput", {})
    servers = throughput.get("servers") or {}
    pinned = "pinned " if throughput.get("pinned") else ""
    for kind in ("sync", "gthread"):
        variants = servers.get(kind, {}).get("variants", {})
        for path, want in THROUGHPUT_TARGETS:
            value = variants[path]["ratio"] if path in variants else None
            ok = None if value is None else value >= want
            add(f"{pinned}gunicorn {kind} {path} >= {want:.0%} of bare", value, ok, "")
    return rows


def print_targets(rows: list[dict[str, Any]]) -> None:
    print("\n## Targets (medians of this run)")
    for row in rows:
        state = {True: "met", False: "MISSED", None: "not run"}[row["met"]]
        figure = row["figure"]
        if figure is None:
            shown = "-"
        elif row["unit"] == "":
            shown = f"{figure:.0%}"
        elif row["unit"] == "x":
            shown = f"x{figure:.1f}"
        elif row["unit"] == "B":
            shown = f"{figure:.0f} B"
        else:
            shown = f"{figure:.2f} {row['unit']}"
        print(f"{state:8} {row['target']:48} {shown}")


def chart(results: dict[str, Any], path: Path) -> str | None:
    """Draw the figures; returns why not, if matplotlib is missing.

    Per-request cost of every system (left); under pinned gunicorn, each route's
    requests/s as a share of bare with the targets (top right); bytes per Redis
    session beside the peers (bottom right), when those parts ran.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"# no chart: {exc} (pip install -e '.[bench]')", file=sys.stderr)
        return str(exc)
    fig = plt.figure(figsize=(15, 6.5), dpi=100)
    grid = fig.add_gridspec(2, 2, width_ratios=(2.2, 1), hspace=0.45, wspace=0.55)
    _per_request_panel(fig.add_subplot(grid[:, 0]), results)
    _throughput_panel(fig.add_subplot(grid[0, 1]), results.get("throughput"))
    _memory_panel(fig.add_subplot(grid[1, 1]), results.get("scale"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return None


def _per_request_panel(ax: Any, results: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    systems = results["per_request"]["systems"]
    floor = 0.1
    width = 0.8 / max(1, len(systems))
    cmap = plt.get_cmap("tab20")
    for i, system in enumerate(systems):
        values = [max(floor, system["modes"][mode]["median"]) for mode in MODES]
        positions = [m + (i - len(systems) / 2 + 0.5) * width for m in range(len(MODES))]
        hatch = None if system["name"].startswith("wsgisession") else "//"
        ax.bar(positions, values, width, label=system["name"], color=cmap(i % 20), hatch=hatch)
    ax.set_yscale("log")
    ax.set_xticks(range(len(MODES)), [f"{mode}" for mode in MODES])
    ax.set_ylabel(f"µs per request above the bare app (log; ≤ {floor} shown as {floor})")
    meta = results["machine"]
    ax.set_title(
        f"Cost per request in process, ~400-byte session (median of "
        f"{results['per_request']['rounds']} rounds)\n{meta['cpu']}, {meta['cores']} cores,"
        f" Python {meta['python']}, {results['date']}",
        fontsize=9,
    )
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(0.0, -0.08))


def _throughput_panel(ax: Any, throughput: dict[str, Any] | None) -> None:
    servers = (throughput or {}).get("servers") or {}
    if not servers:
        ax.set_axis_off()
        ax.set_title("gunicorn throughput: not run", fontsize=9)
        return
    routes = [path for path in servers[next(iter(servers))]["variants"] if path != "/bare"]
    width = 0.8 / len(servers)
    for i, (kind, server) in enumerate(servers.items()):
        values = [server["variants"][path]["ratio"] for path in routes]
        positions = [r + (i - len(servers) / 2 + 0.5) * width for r in range(len(routes))]
        ax.bar(positions, values, width, label=kind)
    wanted = dict(THROUGHPUT_TARGETS)
    for r, path in enumerate(routes):
        if path in wanted:
            ax.hlines(wanted[path], r - 0.45, r + 0.45, colors="black", linestyles="--")
    labels = [path.strip("/").replace("/", "\n") for path in routes]
    ax.set_xticks(range(len(routes)), labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("requests/s, share of bare", fontsize=8)
    pinned = "pinned: worker CPU 1, wrk CPU 0" if throughput and throughput.get("pinned") else ""
    ax.set_title(f"gunicorn, one worker ({pinned}); dashes: targets", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _memory_panel(ax: Any, scale: dict[str, Any] | None) -> None:
    rows = ((scale or {}).get("memory") or {}).get("bytes_per_session", {})
    bars = {
        name.removesuffix(" (MEMORY USAGE)"): figures
        for name, figures in rows.items()
        if name.endswith("(MEMORY USAGE)")
    }
    if not bars:
        ax.set_axis_off()
        ax.set_title("Redis memory per session: not run", fontsize=9)
        return
    count = str(max(int(n) for figures in bars.values() for n in figures))
    names = [name for name, figures in bars.items() if figures.get(count) is not None]
    values = [bars[name][count] for name in names]
    ax.barh(range(len(names)), values, color=["C0" if "wsgisession" in n else "C7" for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.axvline(REDIS_BYTES_TARGET, color="black", linestyle="--")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.0f}", va="center", fontsize=8)
    ax.set_xlabel("bytes per session (MEMORY USAGE); dashes: target", fontsize=8)
    ax.set_title(f"Redis memory, {int(count):,} sessions stored", fontsize=9)
