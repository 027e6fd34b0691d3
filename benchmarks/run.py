"""Microseconds per request for wsgisession and its peers, measured in one run.

Three workloads on a ~400-byte logged-in session, each through a direct WSGI call
(no server, no sockets):

- ``untouched``: the view never looks at the session;
- ``read``: the view reads one key;
- ``write``: the view increments a counter (read, modify, save, Set-Cookie).

``wsgisession (encrypted)`` is ``CookieStore(encrypt=True)`` (AES-256-GCM).
Each library runs the same workloads, with its own bare app (no session) alongside,
and the table reports the cost *above* that bare app. Peers: a straightforward
per-request use of itsdangerous's ``URLSafeTimedSerializer`` and Flask's cookie
session. Timings on a shared machine are noisy, so each figure is the minimum over
interleaved rounds; compare the ratios in one run, not figures across machines.

Usage: ``.venv/bin/python benchmarks/run.py [--rounds N] [--number N]``
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

from werkzeug.test import EnvironBuilder

SECRET = "benchmark-secret-key-" + "x" * 32

#: A realistic logged-in session: about 400 bytes of serialized data.
SESSION: dict[str, Any] = {
    "user_id": 123456,
    "username": "alice.example",
    "email": "alice@example.com",
    "roles": ["editor", "reviewer"],
    "login_at": "2026-11-23T10:00:00+00:00",
    "csrf": uuid.UUID(int=42).hex * 2,
    "cart": [{"sku": f"SKU-{i:04d}", "qty": i} for i in range(5)],
    "prefs": {"theme": "dark", "lang": "en-GB", "tz": "Europe/London"},
    "counter": 0,
}

Workload = Callable[[], None]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def _call(app: Any, environ: dict[str, Any]) -> None:
    result = app(dict(environ), _start_response)
    for _ in result:
        pass
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _environ(cookie: str | None) -> dict[str, Any]:
    headers = {"Cookie": cookie} if cookie else {}
    return EnvironBuilder(path="/", headers=headers).get_environ()


def _cookie_from(headers: Iterable[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == "set-cookie" and value.startswith(name + "="):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(value)
            return f"{name}={parsed[name].value}"
    raise RuntimeError(f"no {name} cookie was set")


# -- wsgisession -----------------------------------------------------------------


def wsgisession_workloads(*, encrypt: bool = False) -> dict[str, Any]:
    from wsgisession import CookieStore, SessionMiddleware, session

    def make(view: Callable[[], None]) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            view()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        return app

    def seed() -> None:
        session.update(SESSION)

    def untouched() -> None:
        pass

    def read() -> None:
        session["user_id"]

    def write() -> None:
        session["counter"] += 1

    def wrap(view: Callable[[], None]) -> Any:
        return SessionMiddleware(make(view), secret_key=SECRET, store=CookieStore(encrypt=encrypt))

    captured: list[tuple[str, str]] = []
    wrap(seed)(_environ(None), lambda s, h, e=None: captured.extend(h))
    cookie = _cookie_from(captured, "session")
    environ = _environ(cookie)
    return {
        "bare": (make(untouched), environ),
        "untouched": (wrap(untouched), environ),
        "read": (wrap(read), environ),
        "write": (wrap(write), environ),
        "_cookie_bytes": len(cookie),
    }


# -- itsdangerous, used the straightforward way --------------------------------------


def itsdangerous_workloads() -> dict[str, Any]:
    import json

    from itsdangerous import BadData, URLSafeTimedSerializer

    def make(mode: str) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            headers = [("Content-Type", "text/plain")]
            if mode != "untouched":
                serializer = URLSafeTimedSerializer(SECRET, salt="session")
                raw = environ.get("HTTP_COOKIE", "").partition("session=")[2].split(";")[0]
                try:
                    data = serializer.loads(raw, max_age=1209600)
                except BadData:
                    data = {}
                if mode == "read":
                    data["user_id"]
                elif mode == "write":
                    data["counter"] += 1
                    headers.append(("Set-Cookie", f"session={serializer.dumps(data)}; HttpOnly"))
            start_response("200 OK", headers)
            return [b"ok"]

        return app

    serializer = URLSafeTimedSerializer(SECRET, salt="session")
    environ = _environ(f"session={serializer.dumps(json.loads(json.dumps(SESSION, default=str)))}")
    workloads = {mode: (make(mode), environ) for mode in ("untouched", "read", "write")}
    return workloads | {"bare": (make("untouched"), environ)}


# -- Flask's cookie session --------------------------------------------------------


def flask_workloads() -> dict[str, Any]:
    import flask

    app = flask.Flask("bench")
    app.secret_key = SECRET

    @app.route("/bare")
    def bare() -> str:
        return "ok"

    @app.route("/seed")
    def seed() -> str:
        flask.session.update({k: v for k, v in SESSION.items() if k != "csrf"} | {"csrf": "x" * 64})
        return "ok"

    @app.route("/read")
    def read() -> str:
        flask.session["user_id"]
        return "ok"

    @app.route("/write")
    def write() -> str:
        flask.session["counter"] += 1
        return "ok"

    response = app.test_client().get("/seed")
    cookie = _cookie_from(response.headers.items(), "session")

    def at(path: str, cookie: str | None = cookie) -> dict[str, Any]:
        headers = {"Cookie": cookie} if cookie else {}
        return EnvironBuilder(path=path, headers=headers).get_environ()

    # Flask opens the session on every request, so its bare app is one with no cookie.
    return {
        "bare": (app, at("/bare", None)),
        "untouched": (app, at("/bare")),
        "read": (app, at("/read")),
        "write": (app, at("/write")),
    }


PEERS: dict[str, Callable[[], dict[str, Any]]] = {
    "wsgisession": wsgisession_workloads,
    "wsgisession (encrypted)": lambda: wsgisession_workloads(encrypt=True),
    "itsdangerous (naive)": itsdangerous_workloads,
    "flask": flask_workloads,
}
MODES = ("bare", "untouched", "read", "write")


def measure(app: Any, environ: dict[str, Any], number: int) -> float:
    """Microseconds per call, one timing of *number* calls."""
    start = time.perf_counter()
    for _ in range(number):
        _call(app, environ)
    return (time.perf_counter() - start) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)

    suites = {}
    for name, build in PEERS.items():
        try:
            suites[name] = build()
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        # Interleave libraries and modes so a burst of noise hits them all alike.
        for name, suite in suites.items():
            for mode in MODES:
                app, environ = suite[mode]
                _call(app, environ)  # warm up
                us = measure(app, environ, args.number)
                best[name, mode] = min(us, best.get((name, mode), float("inf")))

    cookie = suites["wsgisession"]["_cookie_bytes"]
    print(f"# {datetime.date.today()}  Python {sys.version.split()[0]}  session cookie {cookie} B")
    print(f"# min of {args.rounds} rounds x {args.number} calls; microseconds above each bare app")
    print(f"{'library':24} {'bare':>8} {'untouched':>10} {'read':>8} {'write':>8}")
    for name in suites:
        bare = best[name, "bare"]
        cells = [f"{best[name, mode] - bare:10.2f}" for mode in MODES[1:]]
        print(f"{name:24} {bare:8.2f} {cells[0]} {cells[1]:>8} {cells[2]:>8}")
    ours = {mode: best["wsgisession", mode] - best["wsgisession", "bare"] for mode in MODES[1:]}
    print("\n# ratios: peer cost / wsgisession cost (higher means wsgisession is faster)")
    for name in suites:
        if name.startswith("wsgisession"):
            continue
        bare = best[name, "bare"]
        ratios = [
            (best[name, mode] - bare) / ours[mode] if ours[mode] > 0 else float("nan")
            for mode in ("read", "write")
        ]
        print(f"{name:24} read x{ratios[0]:.1f}  write x{ratios[1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
