"""Ten million sessions in Redis and PostgreSQL (issue 31, item 3): ``make bench-scale``.

At each size (10,000 / 1,000,000 / 10,000,000 sessions by default), for each store:

- **Fill**, in bulk, records shaped exactly as the middleware saves the benchmark
  session (:func:`benchmarks.scale._record`): Redis with pipelines of ``SET name
  value EX ttl``, the name and bytes a save writes (``RedisStore._record_name``,
  ``RedisStore._pack``); PostgreSQL with ``COPY`` into the table ``PostgresStore``
  creates, its primary key and expiry index dropped for the load and built again
  after it (the same definitions, checked), then ``VACUUM ANALYZE``. A record of
  each fill is compared with one the store's own ``save`` wrote.
- **Size**: Redis ``used_memory`` growth per session and mean ``MEMORY USAGE``;
  PostgreSQL ``pg_total_relation_size`` (heap, TOAST, both indexes) per row.
- **Latency**: single ``load`` and ``save`` calls of the real stores on random live
  sessions, each timed on its own, interleaved across sizes
  (:func:`benchmarks.scale._interleaved_latency`): median, p90, p99.
- **Expiry**, one session in ten. PostgreSQL: they are stored expired (in the past
  day), and ``wsgisession gc --store URL`` deletes them, then a plain ``VACUUM``:
  the wall time of each, and load/save latency sampled in a thread while it runs
  beside the same sampling just before. Redis expires keys itself (``wsgisession
  gc`` says so and does nothing); instead, with active expiry paused (``DEBUG
  SET-ACTIVE-EXPIRE 0``) one key in ten gets a 1 ms TTL (a tenth of all sessions
  expiring at once), then active expiry resumes, at its default effort for
  ``--expiry-window`` seconds, then at ``active-expire-effort 10`` until at most 1 %
  are left: what each reclaims, and latency sampled meanwhile.

The servers are private, on free ports, started and stopped here (by process id),
their data deleted afterwards: one ``redis-server`` per size (``--save ''
--appendonly no``, ``--maxmemory`` what is available less a margin, ``noeviction``:
a fill that would not fit fails instead of pushing the machine out of memory), and
one PostgreSQL cluster (``initdb`` in a temporary directory, run as ``postgres``
under root), a schema per size. Before each fill the memory (Redis) or disk
(PostgreSQL) it needs is extrapolated from the size before and checked against what
is free: a size that would not fit is skipped and says why. Redis runs first and is
stopped before PostgreSQL starts. The results are merged into
``benchmarks/results.json`` under ``scale_servers``.

Usage: ``make bench-scale``, or for a short run
``.venv/bin/python benchmarks/scale_servers.py --sessions 10000 100000 [--only redis]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import memory, report
from benchmarks.common import machine
from benchmarks.scale import FIELDS, TTL, _interleaved_latency, _key, _record, _stats
from wsgisession import PostgresStore, RedisStore, ServerSessionStore
from wsgisession.stores._postgres_sql import encode_value, field_name

ROOT = Path(__file__).resolve().parent.parent
SIZES = [10_000, 1_000_000, 10_000_000]
GIB = 1 << 30
#: One session in EXPIRED is expired: those whose index % EXPIRED == EXPIRED - 1.
EXPIRED = 10
#: Commands per Redis pipeline, rows per COPY write.
BATCH = 10_000
#: Live PostgreSQL rows expire 3 to 24 hours after the fill (no live row expires
#: during a run); expired ones expired in the day before it.
LIVE_FROM = 3 * 3600
#: The private PostgreSQL's settings beyond the defaults (fsync and synchronous
#: commit stay on, as in production): a cache for a large table, room for the bulk
#: load's WAL and its index builds.
POSTGRES_SETTINGS = {
    "shared_buffers": "2GB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "max_connections": "50",
}
#: Bytes per session assumed before any size was measured (about twice the real figure).
GUESS = {"memory": 2000, "disk": 3000}


def _session(i: int) -> dict[str, bytes]:
    """:func:`benchmarks.scale._record` (equal, keys in the same order), values shared."""
    return {**FIELDS, "user_id": b"%d" % i}


def _expired(i: int) -> bool:
    return i % EXPIRED == EXPIRED - 1


def _live(rng: random.Random, count: int) -> int:
    while True:
        i = rng.randrange(count)
        if not _expired(i):
            return i


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mem_available() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class DoesNotFit(Exception):
    """A size that would not fit in what the machine has free (or did not)."""


# -- sampling during gc ------------------------------------------------------------


class Sampler:
    """``load`` then ``save`` of random live sessions, *pause* apart, each call timed.

    :meth:`run` samples a number of times in this thread (the baseline); :meth:`start`
    and :meth:`stop` sample in a thread of its own for as long as something runs.
    A call that fails (a timeout, ``StoreUnavailable``) is counted, not timed.
    """

    def __init__(
        self, store: ServerSessionStore, count: int, seed: int, pause: float = 0.001
    ) -> None:
        self.store, self.count, self.pause = store, count, pause
        self.rng = random.Random(seed)
        self.load: list[float] = []
        self.save: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _one(self) -> None:
        key = _key(_live(self.rng, self.count))
        try:
            start = time.perf_counter()
            found = self.store.load(key)
            loaded = time.perf_counter()
            self.store.save(key, {"counter": b"2"}, (), TTL, create=False)
            saved = time.perf_counter()
        except Exception as exc:  # counted and reported: the run goes on
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        if found is None:
            self.errors.append(f"live session {key} not found")
            return
        self.load.append((loaded - start) * 1e6)
        self.save.append((saved - loaded) * 1e6)

    def run(self, number: int) -> Sampler:
        for _ in range(number):
            self._one()
            time.sleep(self.pause)
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.pause):
            self._one()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> Sampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self

    def figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"samples": len(self.load), "errors": len(self.errors)}
        if self.errors:
            figures["first_error"] = self.errors[0]
        if self.load:
            figures |= {"load_us": _stats(self.load), "save_us": _stats(self.save)}
        return figures


#: ``wsgisession gc`` (its ``main``), in a process that has done its imports and
#: waits for a line on stdin: the timing starts with the command, not with Python's
#: start-up, whose CPU on a 2-core machine would slow the sampler for no gc's fault.
_GC_CHILD = (
    "import contextlib, sys; from wsgisession.cli import main\n"
    "with contextlib.suppress(ImportError): import psycopg, psycopg_pool\n"
    "print('ready', flush=True);"
    " sys.stdin.readline(); sys.exit(main(sys.argv[1:]))"
)


def _gc_command(url: str, batch: int, sampler: Sampler | None = None) -> dict[str, Any]:
    """Run ``wsgisession gc --store URL`` as a scheduled job would, *sampler* sampling meanwhile.

    Returns its wall time (from the go line to its exit), what it printed, and the
    number of batches (its progress lines).
    """
    command = [sys.executable, "-c", _GC_CHILD, "gc", "--store", url]
    command += ["--batch-size", str(batch)]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as child:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"wsgisession gc did not start: {child.communicate()}")
        if sampler is not None:
            sampler.start()
        started = time.perf_counter()
        try:
            output, progress = child.communicate("go\n", timeout=3600)
            seconds = time.perf_counter() - started
        finally:
            if sampler is not None:
                sampler.stop()
    done = re.findall(r"purged (\d+) expired sessions? so far", progress)
    figures = {
        "wall_seconds": seconds,
        "output": output.strip(),
        "batches": len(done),
        "purged_so_far": int(done[-1]) if done else 0,
        "returncode": child.returncode,
    }
    if child.returncode != 0:  # a result too: what failed, after how much
        figures["error"] = progress.strip().splitlines()[-1] if progress.strip() else ""
    return figures


# -- Redis ---------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server``: no persistence, *maxmemory* bytes, ``noeviction``."""

    def __init__(self, directory: Path, maxmemory: int) -> None:
        import redis

        directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.maxmemory = maxmemory
        command = [
            *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(directory)),
            *("--maxmemory", str(maxmemory), "--maxmemory-policy", "noeviction"),
            # DEBUG SET-ACTIVE-EXPIRE, from this machine only.
            *("--enable-debug-command", "local", "--loglevel", "warning"),
        ]
        with (directory / "log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.client = redis.Redis.from_url(self.url, socket_timeout=60)
        for _ in range(200):
            try:
                self.client.ping()
                break
            except redis.ConnectionError as exc:
                if self.process.poll() is not None:
                    output = (directory / "log").read_text()
                    raise RuntimeError(f"redis-server exited: {output}") from exc
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """FLUSHALL (this private server only), then SIGTERM to its process id."""
        if self.process.poll() is None:
            try:
                self.client.flushall()
            except Exception as exc:  # stopped all the same
                print(f"# FLUSHALL on port {self.port} failed: {exc}", file=sys.stderr)
            self.client.close()
            self.process.terminate()
            self.process.wait(timeout=120)


def _redis_memory(client: Any) -> dict[str, int]:
    info = client.info("memory")
    return {
        "used_memory": int(info["used_memory"]),
        "used_memory_rss": int(info["used_memory_rss"]),
    }


def _check_redis_record(store: RedisStore) -> None:
    """The bulk-written record of session 0 is byte for byte what ``save`` writes."""
    for i in (0, 9, 10**7 - 1):
        assert list(_session(i).items()) == list(_record(i).items())
    probe = _key(-1)
    store.save(probe, _record(0), (), TTL, create=True)
    client = store.client
    try:
        saved = client.get(store.prefix + store._record_name(probe))
        filled = client.get(store.prefix + store._record_name(_key(0)))
        if saved != filled:
            raise RuntimeError(f"the bulk record differs from a saved one: {filled!r} {saved!r}")
        if store.load(_key(0)) != _record(0):
            raise RuntimeError("a bulk-written session does not load as it was written")
    finally:
        store.delete(probe)


def _fill_redis(store: RedisStore, count: int) -> dict[str, Any]:
    """*count* sessions through pipelines of ``SET … EX``; memory before and after."""
    import redis

    client = store.client
    before = _redis_memory(client)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(count, start + BATCH)):
            name = store.prefix + store._record_name(_key(i))
            pipe.set(name, RedisStore._pack(_session(i)), ex=TTL)
        try:
            pipe.execute()
        except redis.exceptions.ResponseError as exc:
            if "OOM" not in str(exc):
                raise
            raise DoesNotFit(
                f"redis-server reached its maxmemory ({_mib(client.config_get('maxmemory'))})"
                f" after about {start:,} sessions"
            ) from exc
    seconds = time.perf_counter() - started
    after = _redis_memory(client)
    _check_redis_record(store)
    added = after["used_memory"] - before["used_memory"]
    return {
        "sessions": int(client.dbsize()),
        "fill_seconds": seconds,
        "fill_per_second": count / seconds,
        "used_memory_added": added,
        "used_memory_per_session": added / count,
        "used_memory_rss_per_session": (after["used_memory_rss"] - before["used_memory_rss"])
        / count,
        "mem_fragmentation_ratio": float(client.info("memory")["mem_fragmentation_ratio"]),
        "maxmemory": int(client.config_get("maxmemory")["maxmemory"]),
    } | memory.redis_key_bytes(client, store.prefix + "*")


def _mib(config: dict[str, str]) -> str:
    return f"{int(config['maxmemory']) / 2**20:,.0f} MiB"


def _expiry_phase(
    store: RedisStore, count: int, target: int, seconds: float, seed: int
) -> dict[str, Any]:
    """Latency sampled while Redis's active expiry runs, until *target* keys are left
    or *seconds* have passed; what it reclaimed meanwhile."""
    client = store.client
    keys, memory_before, stats_before = client.dbsize(), _redis_memory(client), client.info("stats")
    during = Sampler(store, count, seed)
    during.start()
    started = time.perf_counter()
    try:
        while client.dbsize() > target and time.perf_counter() - started < seconds:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        during.stop()
    stats, memory_after = client.info("stats"), _redis_memory(client)
    reclaimed = keys - int(client.dbsize())

    def grew(name: str) -> int:
        return int(stats.get(name, 0)) - int(stats_before.get(name, 0))

    return {
        "seconds": elapsed,
        "reclaimed": reclaimed,
        "per_second": reclaimed / elapsed,
        "expire_cycle_cpu_ms": grew("expire_cycle_cpu_milliseconds"),
        "time_cap_reached": grew("expired_time_cap_reached_count"),
        "used_memory_freed": memory_before["used_memory"] - memory_after["used_memory"],
        "used_memory_rss_freed": memory_before["used_memory_rss"] - memory_after["used_memory_rss"],
        "during": during.figures(),
    }


def _redis_expiry(store: RedisStore, count: int, samples: int, window: float) -> dict[str, Any]:
    """One key in ten expiring at once: Redis's active expiry, at its default effort for
    *window* seconds, then at ``active-expire-effort 10``, with latency sampled.

    At the default effort (1) Redis only works hard while more than about 10 % of the
    keys it samples are expired, so a tenth expired is what it leaves to lazy expiry;
    effort 10 lowers that to about 1 %.
    """
    client = store.client
    doomed = range(EXPIRED - 1, count, EXPIRED)
    live = count - len(doomed)
    client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for start in range(0, len(doomed), BATCH):
            pipe = client.pipeline(transaction=False)
            for i in doomed[start : start + BATCH]:
                pipe.pexpire(store.prefix + store._record_name(_key(i)), 1)
            pipe.execute()
        time.sleep(0.01)
        baseline = Sampler(store, count, seed=11).run(samples)
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        default = _expiry_phase(store, count, live, window, seed=12)
        client.config_set("active-expire-effort", 10)
        raised = _expiry_phase(store, count, live + count // 100, 900, seed=13)
    finally:
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        client.config_set("active-expire-effort", 1)
    return {
        "expired": len(doomed),
        "still_stored": int(client.dbsize()) - live,
        "before": baseline.figures(),
        "default_effort": default,
        "effort_10": raised,
    }


def measure_redis(
    counts: list[int], samples: int, tmp: Path, margin: int, window: float
) -> dict[str, Any]:
    """One private redis-server per size, filled one after the other, then measured."""
    if shutil.which("redis-server") is None:
        return {"skipped": "redis-server is not installed"}
    servers: list[RedisServer] = []
    stores: dict[int, ServerSessionStore] = {}
    results: dict[str, Any] = {}
    per_session = float(GUESS["memory"])
    try:
        for count in counts:
            room = _mem_available() - margin
            need = int(per_session * count * 1.15) + 64 * 2**20
            if need > room:
                results[str(count)] = {
                    "skipped": f"would need about {need / GIB:.1f} GiB of memory; {room / GIB:.1f}"
                    f" GiB is available beyond the {margin / GIB:.0f} GiB margin"
                }
                continue
            server = RedisServer(tmp / f"redis-{count}", maxmemory=room)
            servers.append(server)
            if not results:
                results["version"] = server.client.info("server")["redis_version"]
            store = RedisStore(server.url)
            try:
                results[str(count)] = fill = _fill_redis(store, count)
            except DoesNotFit as exc:
                results[str(count)] = {"skipped": str(exc)}
                store.close()
                server.stop()
                continue
            stores[count] = store
            per_session = max(fill["used_memory_per_session"], fill["used_memory_rss_per_session"])
            print(f"# Redis: {count:,} sessions stored in {fill['fill_seconds']:.0f} s", flush=True)
        latency = _interleaved_latency(stores, samples, pick=_live)
        for count in stores:
            results[str(count)] |= latency[count]
        for count, each in stores.items():
            assert isinstance(each, RedisStore)
            results[str(count)]["expiry"] = _redis_expiry(each, count, samples, window)
            print(f"# Redis: expiry at {count:,} measured", flush=True)
        if stores:
            url = next(iter(stores.values())).url  # type: ignore[attr-defined]
            results["gc_command"] = _gc_command(url, 1000)["output"]
    finally:
        for each in stores.values():
            each.close()
        for server in servers:
            server.stop()
    return results


# -- PostgreSQL -----------------------------------------------------------------------


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found


class PostgresCluster:
    """A private PostgreSQL cluster: ``initdb`` in a new directory, stopped by process id."""

    def __init__(self, parent: Path | None) -> None:
        initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("the PostgreSQL server binaries (initdb, pg_ctl)")
        self.pg_ctl = pg_ctl
        self.directory = Path(tempfile.mkdtemp(prefix="wsgisession-scale-pg-", dir=parent))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: the cluster is the postgres user's then.
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        command = [initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run([*self._as, *command], check=True, capture_output=True)

    def start(self, settings: dict[str, str]) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        command = [self.pg_ctl, "-D", str(self.data), "-l", str(self.directory / "log")]
        subprocess.run(
            [*self._as, *command, "-o", options, "-w", "-t", "120", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """A fast shutdown (SIGINT to the postmaster, by its pid); SIGQUIT if it hangs."""
        pid = self.pid()
        if pid is None:
            return
        for signum, wait in ((signal.SIGINT, 300.0), (signal.SIGQUIT, 60.0)):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _data_template() -> tuple[str, str]:
    """The ``data`` column of session *i* is ``before + str(i) + after`` (COPY text)."""
    record = _record(0)
    record["user_id"] = b"@USER@"
    data = json.dumps({field_name(f): encode_value(v) for f, v in record.items()})
    before, after = data.replace("\\", "\\\\").split("@USER@")
    return before, after


def _times(base: float, span: int) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of each second from *base* on, for *span* seconds."""
    return [
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + second)) for second in range(span)
    ]


def _copy_lines(count: int, now: float) -> Iterator[str]:
    """COPY text for sessions 0 … count - 1, BATCH rows at a time.

    Expiry times are spread (to the microsecond) as a busy site's are: live ones 3 to
    24 hours ahead, expired ones in the past day.
    """
    before, after = _data_template()
    live_span, dead_span = TTL - LIVE_FROM, 86400
    live, dead = _times(now + LIVE_FROM, live_span), _times(now - dead_span, dead_span)
    for start in range(0, count, BATCH):
        lines = []
        for i in range(start, min(count, start + BATCH)):
            spread = i * 2654435761
            if _expired(i):
                second, micro = divmod(spread % (dead_span * 1_000_000), 1_000_000)
                expires = dead[second]
            else:
                second, micro = divmod(spread % (live_span * 1_000_000), 1_000_000)
                expires = live[second]
            lines.append(f"{_key(i)}\t{before}{i}{after}\t{expires}.{micro:06d}+00\n")
        yield "".join(lines)


def _relations(conn: Any, store: PostgresStore) -> dict[str, str]:
    """The table's indexes and constraints, by name: their definitions."""
    rows = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = %s::regclass UNION ALL SELECT conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1",
        (store.qualified, store.qualified),
    ).fetchall()
    return {str(name): str(definition) for name, definition in rows}


def _fill_postgres(conn: Any, store: PostgresStore, count: int) -> dict[str, Any]:
    """COPY *count* rows into the store's table, without its indexes, then index it."""
    store.migrate()  # the schema, the table and its expiry index, as the store makes them
    shape = _relations(conn, store)
    (pkey,) = (name for name, definition in shape.items() if definition.startswith("PRIMARY"))
    expires_index = f'"{store.schema}"."{store.table}_expires"'
    conn.execute(f"DROP INDEX {expires_index}")
    conn.execute(f'ALTER TABLE {store.qualified} DROP CONSTRAINT "{pkey}"')
    started = time.perf_counter()
    with conn.cursor() as cursor:
        copy_sql = f"COPY {store.qualified} (key, data, expires) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for block in _copy_lines(count, time.time()):
                copy.write(block)
    copied = time.perf_counter()
    conn.execute(f'ALTER TABLE {store.qualified} ADD CONSTRAINT "{pkey}" PRIMARY KEY (key)')
    keyed = time.perf_counter()
    for statement in store.ddl():  # the expiry index, by the store's own statement
        conn.execute(statement)
    indexed = time.perf_counter()
    conn.execute(f"VACUUM (ANALYZE) {store.qualified}")
    vacuumed = time.perf_counter()
    if _relations(conn, store) != shape:
        raise RuntimeError(f"the table's indexes changed: {_relations(conn, store)} {shape}")
    _check_postgres_record(conn, store)
    return {
        "rows": count,
        "expired_rows": len(range(EXPIRED - 1, count, EXPIRED)),
        "copy_seconds": copied - started,
        "primary_key_seconds": keyed - copied,
        "expiry_index_seconds": indexed - keyed,
        "vacuum_analyze_seconds": vacuumed - indexed,
        "fill_seconds": vacuumed - started,
        "copy_rows_per_second": count / (copied - started),
    }


def _check_postgres_record(conn: Any, store: PostgresStore) -> None:
    """The copied row of session 0 holds what ``save`` writes (jsonb equality)."""
    probe = _key(-1)
    store.save(probe, _record(0), (), TTL, create=True)
    try:
        (same,) = conn.execute(
            f"SELECT (SELECT data FROM {store.qualified} WHERE key = %s)"  # noqa: S608
            f" = (SELECT data FROM {store.qualified} WHERE key = %s)",
            (probe, _key(0)),
        ).fetchone()
        if not same or store.load(_key(0)) != _record(0):
            raise RuntimeError("a copied row differs from what PostgresStore.save writes")
    finally:
        store.delete(probe)


def _postgres_size(conn: Any, store: PostgresStore, rows: int) -> dict[str, Any]:
    table, schema = store.qualified, store.schema
    sizes = conn.execute(
        "SELECT pg_total_relation_size(%(t)s), pg_relation_size(%(t)s),"
        " pg_table_size(%(t)s) - pg_relation_size(%(t)s), pg_indexes_size(%(t)s),"
        " pg_relation_size(%(pkey)s), pg_relation_size(%(expires)s)",
        {
            "t": table,
            "pkey": f'"{schema}"."{store.table}_pkey"',
            "expires": f'"{schema}"."{store.table}_expires"',
        },
    ).fetchone()
    total, heap, toast, indexes, pkey, expires = (int(size) for size in sizes)
    (datum,) = conn.execute(
        f"SELECT avg(pg_column_size(data)) FROM (SELECT data FROM {table} LIMIT 1000) AS s"  # noqa: S608
    ).fetchone()
    return {
        "total_bytes": total,
        "heap_bytes": heap,
        "toast_fsm_vm_bytes": toast,
        "indexes_bytes": indexes,
        "primary_key_bytes": pkey,
        "expiry_index_bytes": expires,
        "bytes_per_row": total / rows,
        "heap_bytes_per_row": heap / rows,
        "indexes_bytes_per_row": indexes / rows,
        "data_column_bytes": float(datum),
    }


def _dead_rows(conn: Any, store: PostgresStore) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass",
        (store.qualified,),
    ).fetchone()
    return int(row[0]) if row else 0


def _postgres_gc(
    conn: Any, store: PostgresStore, url: str, count: int, samples: int, batch: int
) -> dict[str, Any]:
    """``wsgisession gc`` on one size, with latency sampled before and while it runs."""
    baseline = Sampler(store, count, seed=21).run(samples)
    during = Sampler(store, count, seed=22)
    run = _gc_command(url, batch, during)
    summary = re.search(r"purged (\d+) expired sessions? .* in ([\d.]+) s", run["output"])
    purged = int(summary[1]) if summary else run["purged_so_far"]
    time.sleep(1)  # the statistics of the command's backend reach the collector
    left = count - purged
    figures = run | {
        "batch_size": batch,
        "purged": purged,
        "reported_seconds": float(summary[2]) if summary else None,
        "dead_rows_after": _dead_rows(conn, store),
        "size_after": _postgres_size(conn, store, left),
        "before": baseline.figures(),
        "during": during.figures(),
    }
    return figures | {"vacuum": _postgres_vacuum(conn, store, count, left)}


def _postgres_vacuum(conn: Any, store: PostgresStore, count: int, left: int) -> dict[str, Any]:
    """A plain ``VACUUM`` after gc (what frees the rows' space), latency sampled meanwhile.

    Autovacuum would not start by itself yet: a tenth of the rows dead is below its
    default threshold (a fifth).
    """
    dead = _dead_rows(conn, store)
    during = Sampler(store, count, seed=23)
    during.start()
    try:
        started = time.perf_counter()
        conn.execute(f"VACUUM {store.qualified}")
        seconds = time.perf_counter() - started
    finally:
        during.stop()
    time.sleep(1)
    return {
        "seconds": seconds,
        "dead_rows_before": dead,
        "dead_rows_after": _dead_rows(conn, store),
        "size_after": _postgres_size(conn, store, left),
        "during": during.figures(),
    }


def _fdatasync_us(directory: Path, number: int = 300) -> dict[str, float]:
    """One 8 kB write and ``fdatasync`` (a WAL flush, Linux's default) on the data's
    disk, timed: a commit's floor, which a shared machine's other work moves."""
    path = directory / "fdatasync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 8192
        for _ in range(number):
            started = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1e6)
    finally:
        os.close(fd)
        path.unlink()
    return _stats(times)


def _postgres_room(parent: Path | None, margin: int) -> int:
    return shutil.disk_usage(parent or tempfile.gettempdir()).free - margin


def measure_postgres(
    counts: list[int], samples: int, parent: Path | None, disk_margin: int, gc_batch: int
) -> dict[str, Any]:
    """One private cluster, a schema per size: fill, size, latency, then gc at each size."""
    import psycopg

    try:
        cluster = PostgresCluster(parent)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        return {"skipped": f"no private PostgreSQL: {exc}"}
    results: dict[str, Any] = {"settings": POSTGRES_SETTINGS}
    stores: dict[int, ServerSessionStore] = {}
    per_row = float(GUESS["disk"])
    try:
        cluster.start(POSTGRES_SETTINGS)
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            (results["version"],) = conn.execute("SHOW server_version").fetchone() or ("",)
            for count in counts:
                # The table, its indexes, and the WAL of the load (about as much again).
                need, room = int(per_row * count * 2.2), _postgres_room(parent, disk_margin)
                if need > room:
                    results[str(count)] = {
                        "skipped": f"would need about {need / GIB:.0f} GiB of disk;"
                        f" {room / GIB:.0f} GiB is free beyond the margin"
                    }
                    continue
                store = PostgresStore(cluster.url, schema=f"scale_{count}", gc_interval=None)
                stores[count] = store
                fill = _fill_postgres(conn, store, count)
                results[str(count)] = fill | _postgres_size(conn, store, count)
                per_row = results[str(count)]["bytes_per_row"]
                print(f"# PostgreSQL: {count:,} rows in {fill['fill_seconds']:.0f} s", flush=True)
            results["fdatasync_us_before"] = _fdatasync_us(cluster.directory)
            latency = _interleaved_latency(stores, samples, pick=_live)
            results["fdatasync_us_after"] = _fdatasync_us(cluster.directory)
            for count in stores:
                results[str(count)] |= latency[count]
            for count, each in stores.items():
                assert isinstance(each, PostgresStore)
                url = f"{cluster.url}?schema={each.schema}&table={each.table}"
                results[str(count)]["gc"] = _postgres_gc(conn, each, url, count, samples, gc_batch)
                print(f"# PostgreSQL: gc at {count:,} measured", flush=True)
    finally:
        for each in stores.values():
            each.close()
        cluster.remove()
    return results


# -- the run -----------------------------------------------------------------------


def fits(results: dict[str, Any], memory_gib: float = 24) -> dict[str, Any]:
    """Sessions per GiB at the largest size measured, and how many fit in *memory_gib*."""
    out: dict[str, Any] = {"memory_gib": memory_gib}
    for store, figure in (("redis", "used_memory_per_session"), ("postgres", "bytes_per_row")):
        sizes = [int(n) for n, v in results.get(store, {}).items() if n.isdigit() and figure in v]
        if not sizes:
            continue
        per = results[store][str(max(sizes))][figure]
        out[store] = {
            "measured_at": max(sizes),
            "bytes_per_session": per,
            "sessions_per_gib": GIB / per,
            "sessions_in_memory": int(memory_gib * GIB / per),
        }
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=SIZES, help="store sizes")
    parser.add_argument("--samples", type=int, default=5000, help="latency samples per size")
    parser.add_argument("--only", nargs="+", choices=("redis", "postgres"))
    parser.add_argument("--gc-batch", type=int, default=1000, help="wsgisession gc --batch-size")
    parser.add_argument(
        "--expiry-window",
        type=float,
        default=60,
        help="seconds of Redis's active expiry at its default effort (60)",
    )
    parser.add_argument(
        "--memory-margin", type=float, default=4, help="GiB of memory Redis leaves free (4)"
    )
    parser.add_argument(
        "--disk-margin", type=float, default=10, help="GiB of disk PostgreSQL leaves free (10)"
    )
    parser.add_argument("--data-dir", type=Path, help="where the servers' data goes (a temp dir)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = parser.parse_args(argv)
    args.sessions = sorted(set(args.sessions))
    args.only = args.only or ["redis", "postgres"]
    return args


def merge(path: Path, key: str, value: Any) -> None:
    """Set *key* in the JSON object at *path*, keeping every other part's results."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": machine()
        | {"memory_bytes": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")},
        "command": "make bench-scale" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else ""),
        "sessions": args.sessions,
        "expired_share": 1 / EXPIRED,
        "samples": args.samples,
    }
    print(f"# {results['date']}  {results['machine']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="wsgisession-scale-", dir=args.data_dir) as tmpdir:
        if "redis" in args.only:
            margin = int(args.memory_margin * GIB)
            results["redis"] = measure_redis(
                args.sessions, args.samples, Path(tmpdir), margin, args.expiry_window
            )
        if "postgres" in args.only:
            results["postgres"] = measure_postgres(
                args.sessions,
                args.samples,
                args.data_dir,
                int(args.disk_margin * GIB),
                args.gc_batch,
            )
    results["fits"] = fits(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    report.print_scale_servers(results)
    merge(args.json, "scale_servers", results)
    print(f"\n# {results['seconds']:.0f} s; wrote {args.json} (scale_servers)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
