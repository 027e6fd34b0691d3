"""What account security costs per request (issue 18): events, device index, revocation.

For each store, a logged-in session (~400 bytes, a device record when tracked) is
driven through two workloads, ``read`` (the view reads one key) and ``write`` (it
increments a counter), in three set-ups:

- ``plain``: no hooks at all (the middleware holds ``None``);
- ``events``: one ``on_event`` callback registered (a list append);
- ``tracked``: ``track_devices()``; for the cookie store with a ``revocation_store``
  (an SQLite file) whose "not before" stamp is looked up on each logged-in request.

Reported: µs per request above the bare WSGI app (wall-clock min and median over
interleaved rounds, and the CPU-time min, the steadier figure on a shared machine)
and the store calls per request, counted on the store objects (a call to a remote
store is one round trip). A third count, ``refresh``, is a request due for
the idle-timeout renewal, where the device's "last seen" is written too.

Usage: ``.venv/bin/python benchmarks/account.py [--redis URL] [--rounds N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SECRET, SESSION, Client, interleaved, plain_app
from wsgisession import (
    CookieStore,
    LRUStore,
    RedisStore,
    SessionMiddleware,
    SQLiteStore,
    login,
    track_devices,
)
from wsgisession.context import bind, unbind

KEY = "wsgisession.session"
COUNTED = (
    "load",
    "save",
    "delete",
    "touch",
    "index_put",
    "index_list",
    "index_revoke",
    "index_forget",
    "get_not_before",
)


def _login(environ: dict[str, Any]) -> None:
    token = bind(environ)
    try:
        login("ann")
        environ[KEY].update(SESSION)
    finally:
        unbind(token)


def _read(environ: dict[str, Any]) -> None:
    environ[KEY]["user_id"]


def _write(environ: dict[str, Any]) -> None:
    environ[KEY]["counter"] += 1


VIEWS = {"read": _read, "write": _write}


def build(store: Any, setup: str, view: Callable[[dict[str, Any]], None], tmp: Path) -> Any:
    middleware = SessionMiddleware(plain_app(view), secret_key=SECRET, store=store)
    if setup == "events":
        seen: list[Any] = []
        middleware.on_event(seen.append)
    elif setup == "tracked":
        revocation = SQLiteStore(tmp / "stamps.sqlite3") if isinstance(store, CookieStore) else None
        track_devices(middleware, revocation_store=revocation)
    return middleware


def client(store: Any, setup: str, mode: str, tmp: Path) -> Client:
    seed = Client(build(store, setup, _login, tmp), "/", "session")
    seed.check()
    made = Client(build(store, setup, VIEWS[mode], tmp), "/", "session", seed.cookie)
    made.check()
    return made


@contextmanager
def counting(*stores: Any) -> Iterator[Counter[str]]:
    """Count calls to the store methods of *stores* (instance attributes, restored after)."""
    counts: Counter[str] = Counter()
    for store in stores:
        for name in COUNTED:
            method = getattr(store, name, None)
            if method is None:
                continue

            def counted(*args: Any, _m: Any = method, _n: str = name, **kwargs: Any) -> Any:
                counts[_n] += 1
                return _m(*args, **kwargs)

            setattr(store, name, counted)
    try:
        yield counts
    finally:
        for store in stores:
            for name in COUNTED:
                store.__dict__.pop(name, None)


def calls_per_request(
    store_factory: Callable[[], Any], setup: str, mode: str, tmp: Path
) -> dict[str, float]:
    store = store_factory()
    made = client(store, setup, mode, tmp)
    others = []
    mw = made.app
    hooks = mw._backend.hooks
    tracker = hooks.tracker if hooks is not None else None
    if tracker is not None and tracker.revocation_store is not None:
        others.append(tracker.revocation_store)
    n = 50
    with counting(store, *others) as counts:
        for _ in range(n):
            made()
    return {name: value / n for name, value in counts.items()}


def refresh_calls(store_factory: Callable[[], Any], setup: str, tmp: Path) -> dict[str, float]:
    """Store calls of a read request that is due for the idle-timeout renewal."""
    store = store_factory()
    middleware = build(store, setup, _login, tmp)
    seed = Client(middleware, "/", "session")
    seed.check()
    reader = SessionMiddleware(plain_app(_read), secret_key=SECRET, store=store, max_age=3600)
    if setup == "tracked":
        track_devices(reader)
    elif setup == "events":
        reader.on_event(lambda e: None)
    made = Client(reader, "/", "session", seed.cookie)
    real = time.time
    n = 20
    with counting(store) as counts:
        for i in range(n):
            time.time = lambda i=i: real() + 400 * (i + 1)  # type: ignore[misc]
            try:
                made()
            finally:
                time.time = real  # type: ignore[assignment]
    return {name: value / n for name, value in counts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target-ms", type=float, default=40)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prefix = f"wsgisession-bench:{uuid.uuid4().hex}:"
        factories: dict[str, Callable[[], Any]] = {
            "cookie": CookieStore,
            "lru": LRUStore,
            "sqlite": lambda: SQLiteStore(tmp / f"s{uuid.uuid4().hex}.sqlite3"),
            "redis": lambda: RedisStore(args.redis, prefix=prefix),
        }
        try:
            RedisStore(args.redis, prefix=prefix).client.ping()
        except Exception as exc:
            print(f"# no Redis at {args.redis} ({exc}); skipped", file=sys.stderr)
            del factories["redis"]
        setups = ("plain", "events", "tracked")
        cells: dict[Any, Callable[[], None]] = {
            "bare": Client(plain_app(lambda environ: None), "/", "session")
        }
        for store_name, factory in factories.items():
            for setup in setups:
                for mode in VIEWS:
                    cells[store_name, setup, mode] = client(factory(), setup, mode, tmp)
        wall, cpu = interleaved(cells, args.rounds, args.target_ms, None)
        bare = wall["bare"]
        print(
            f"{'store':8} {'setup':8} {'mode':6} {'us min':>8} {'us med':>8} {'cpu min':>8}"
            "  store calls/request"
        )
        for key in cells:
            if key == "bare":
                continue
            store_name, setup, mode = key
            above = [w - b for w, b in zip(wall[key], bare, strict=True)]
            calls = calls_per_request(factories[store_name], setup, mode, tmp)
            shown = " ".join(f"{k}={v:g}" for k, v in sorted(calls.items())) or "-"
            print(
                f"{store_name:8} {setup:8} {mode:6} {min(wall[key]) - min(bare):8.1f}"
                f" {statistics.median(above):8.1f} {min(cpu[key]) - min(cpu['bare']):8.1f}"
                f"  {shown}"
            )
        print("\nA read request due for the idle-timeout renewal (store calls/request):")
        for store_name, factory in factories.items():
            if store_name == "cookie":
                continue
            for setup in ("plain", "tracked"):
                calls = refresh_calls(factory, setup, tmp)
                shown = " ".join(f"{k}={v:g}" for k, v in sorted(calls.items()))
                print(f"{store_name:8} {setup:8} {shown}")
        if "redis" in factories:
            store = factories["redis"]()
            keys = list(store.client.scan_iter(match=prefix + "*"))
            if keys:
                store.client.delete(*keys)


if __name__ == "__main__":
    main()
