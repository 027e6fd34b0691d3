"""What account security costs per request (issue 18): events, device index, revocation.

For each store, a logged-in session (~400 bytes, a device record when tracked) is
driven through two workloads, ``read`` (the view reads one key) and ``write`` (it
increments a counter), and logins through two more, each request a new browser
(no cookie) whose view calls ``login()`` and stores the ~400-byte session:

- ``login``: each login a user with no other session (under any cap);
- ``login-full``: every login the same user, who has 3 sessions already: with the
  cap, each login ends the least recently seen one (``when_full="end_oldest"``).

The set-ups:

- ``plain``: no hooks at all (the middleware holds ``None``);
- ``events``: one ``on_event`` callback registered (a list append);
- ``tracked``: ``track_devices()``; for the cookie store with a ``revocation_store``
  (an SQLite file) whose "not before" stamp is looked up on each logged-in request;
- ``capped``: ``track_devices(max_per_user=3)`` (server stores only: cookie
  sessions cannot be counted), checked at each login and at no other request.

Each cell has a store of its own (its own SQLite file, Redis key prefix, memory).
Reported: µs per request above the bare WSGI app (wall-clock min and median over
interleaved rounds, and the CPU-time min, the steadier figure on a shared machine)
and the store calls per request, counted on the store objects, and for Redis the
round trips on the wire (one store call may make more than one, or, in a script,
do several commands in one). A third count, ``refresh``, is a request due for the
idle-timeout renewal, where the device's "last seen" is written too.

Usage: ``.venv/bin/python benchmarks/account.py [--redis URL] [--rounds N]
[--stores lru sqlite redis] [--setups tracked capped] [--modes login login-full]``
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SECRET, SESSION, Client, interleaved, machine, plain_app
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
    "index_admit",
    "index_revoke",
    "index_forget",
    "get_not_before",
)
STORES = ("cookie", "lru", "sqlite", "redis")
SETUPS = ("plain", "events", "tracked", "capped")
MODES = ("read", "write", "login", "login-full")
#: ``track_devices(max_per_user=CAP)`` in the ``capped`` set-up; ``login-full``
#: fills the user's sessions to it first.
CAP = 3


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


def _login_as(users: Iterator[str]) -> Callable[[dict[str, Any]], None]:
    """A login view: each request logs the next of *users* in and stores the session."""

    def view(environ: dict[str, Any]) -> None:
        token = bind(environ)
        try:
            login(next(users))
            environ[KEY].update(SESSION)
        finally:
            unbind(token)

    return view


def login_view(mode: str) -> Callable[[dict[str, Any]], None]:
    if mode == "login":  # a user with no other session each time
        return _login_as(f"user-{n}" for n in itertools.count())
    return _login_as(itertools.repeat("ann"))  # login-full: one user, at the cap


class NewBrowser(Client):
    """A client that never sends a cookie back: each request a browser seen for the first time."""

    def __call__(self) -> None:
        self.cookie = None
        super().__call__()


def build(store: Any, setup: str, view: Callable[[dict[str, Any]], None], tmp: Path) -> Any:
    middleware = SessionMiddleware(plain_app(view), secret_key=SECRET, store=store)
    if setup == "events":
        seen: list[Any] = []
        middleware.on_event(seen.append)
    elif setup == "tracked":
        revocation = SQLiteStore(tmp / "stamps.sqlite3") if isinstance(store, CookieStore) else None
        track_devices(middleware, revocation_store=revocation)
    elif setup == "capped":
        track_devices(middleware, max_per_user=CAP)
    return middleware


def client(store: Any, setup: str, mode: str, tmp: Path) -> Client:
    if mode not in VIEWS:  # a login: no seeded session
        made: Client = NewBrowser(build(store, setup, login_view(mode), tmp), "/", "session")
        # login-full: the user's CAP sessions first, so every timed login is at the cap.
        for _ in range(CAP if mode == "login-full" else 1):
            made.check()
        return made
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


def _redis_round_trips(store: Any) -> AbstractContextManager[list[int] | None]:
    """Count the Redis round trips on the wire while it is open (``None``: not Redis)."""
    if not isinstance(store, RedisStore):
        return nullcontext()
    from benchmarks.roundtrips import _counting_round_trips

    return _counting_round_trips()


def calls_per_request(
    store_factory: Callable[[], Any], setup: str, mode: str, tmp: Path
) -> dict[str, float]:
    """Store calls per request (and ``round trips`` on the wire, for Redis)."""
    store = store_factory()
    made = client(store, setup, mode, tmp)
    others = []
    mw = made.app
    hooks = mw._backend.hooks
    tracker = hooks.tracker if hooks is not None else None
    if tracker is not None and tracker.revocation_store is not None:
        others.append(tracker.revocation_store)
    n = 50
    with counting(store, *others) as counts, _redis_round_trips(store) as trips:
        for _ in range(n):
            made()
    calls = {name: value / n for name, value in counts.items()}
    if trips is not None:
        calls["round trips"] = trips[0] / n
    return calls


def refresh_calls(store_factory: Callable[[], Any], setup: str, tmp: Path) -> dict[str, float]:
    """Store calls of a read request that is due for the idle-timeout renewal."""
    store = store_factory()
    middleware = build(store, setup, _login, tmp)
    seed = Client(middleware, "/", "session")
    seed.check()
    reader = SessionMiddleware(plain_app(_read), secret_key=SECRET, store=store, max_age=3600)
    if setup == "tracked":
        track_devices(reader)
    elif setup == "capped":
        track_devices(reader, max_per_user=CAP)
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


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target-ms", type=float, default=40)
    parser.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    return parser.parse_args(argv)


def store_factories(
    args: argparse.Namespace, tmp: Path, prefix: str
) -> dict[str, Callable[[], Any]]:
    """A new, empty store per call, for each store asked for (Redis if it answers)."""
    ids = itertools.count()
    factories: dict[str, Callable[[], Any]] = {
        "cookie": CookieStore,
        "lru": LRUStore,
        "sqlite": lambda: SQLiteStore(tmp / f"s{uuid.uuid4().hex}.sqlite3"),
        # A key prefix per store: one cell's logins never count against another's.
        "redis": lambda: RedisStore(args.redis, prefix=f"{prefix}{next(ids)}:"),
    }
    factories = {name: factories[name] for name in STORES if name in args.stores}
    if "redis" in factories:
        try:
            RedisStore(args.redis, prefix=prefix).client.ping()
        except Exception as exc:
            print(f"# no Redis at {args.redis} ({exc}); skipped", file=sys.stderr)
            del factories["redis"]
    return factories


def print_cells(
    factories: dict[str, Callable[[], Any]],
    cells: dict[Any, Callable[[], None]],
    wall: dict[Any, list[float]],
    cpu: dict[Any, list[float]],
    tmp: Path,
) -> None:
    bare = wall["bare"]
    print(f"# bare WSGI app: {min(bare):.2f} µs min, {statistics.median(bare):.2f} median")
    print(
        f"{'store':8} {'setup':8} {'mode':10} {'us min':>8} {'us med':>8} {'cpu min':>8}"
        "  store calls/request"
    )
    for key in cells:
        if key == "bare":
            continue
        store_name, setup, mode = key
        above = [w - b for w, b in zip(wall[key], bare, strict=True)]
        calls = calls_per_request(factories[store_name], setup, mode, tmp)
        trips = calls.pop("round trips", None)
        shown = " ".join(f"{k}={v:g}" for k, v in sorted(calls.items())) or "-"
        if trips is not None:
            shown += f"; Redis round trips {trips:g}"
        print(
            f"{store_name:8} {setup:8} {mode:10} {min(wall[key]) - min(bare):8.1f}"
            f" {statistics.median(above):8.1f} {min(cpu[key]) - min(cpu['bare']):8.1f}"
            f"  {shown}"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    setups = [setup for setup in SETUPS if setup in args.setups]
    modes = [mode for mode in MODES if mode in args.modes]
    prefix = f"wsgisession-bench:{uuid.uuid4().hex}:"
    print(f"# {datetime.date.today().isoformat()}  {machine()}  {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        factories = store_factories(args, tmp, prefix)
        try:
            cells: dict[Any, Callable[[], None]] = {
                "bare": Client(plain_app(lambda environ: None), "/", "session")
            }
            for store_name, factory in factories.items():
                for setup in setups:
                    if setup == "capped" and store_name == "cookie":
                        continue  # a ConfigurationError: cookie sessions cannot be counted
                    for mode in modes:
                        cells[store_name, setup, mode] = client(factory(), setup, mode, tmp)
            wall, cpu = interleaved(cells, args.rounds, args.target_ms, None)
            print_cells(factories, cells, wall, cpu, tmp)
            if "read" in modes:
                print("\nA read request due for the idle-timeout renewal (store calls/request):")
                for store_name, factory in factories.items():
                    for setup in ("plain", "tracked", "capped"):
                        if store_name == "cookie" or (setup != "plain" and setup not in setups):
                            continue
                        calls = refresh_calls(factory, setup, tmp)
                        shown = " ".join(f"{k}={v:g}" for k, v in sorted(calls.items()))
                        print(f"{store_name:8} {setup:8} {shown}")
        finally:
            if "redis" in factories:
                admin = RedisStore(args.redis, prefix=prefix).client
                keys = list(admin.scan_iter(match=prefix + "*", count=1000))
                for i in range(0, len(keys), 1000):  # the logins leave thousands
                    admin.delete(*keys[i : i + 1000])


if __name__ == "__main__":
    main()
