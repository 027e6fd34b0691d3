"""The tiny app gunicorn serves for the throughput benchmark (``benchmarks.wsgi_app:app``).

One process serves every variant, by path, so a run needs one server and the
variants can be measured in interleaved rounds: ``/bare``; ``/cookie/read`` and
``/cookie/write`` (``CookieStore``); ``/redis/read`` and ``/redis/write``
(``RedisStore`` at ``$BENCH_REDIS_URL`` under ``$BENCH_REDIS_PREFIX``); and
``/redis/floor``, the bare app making one raw-socket ``PING`` to that Redis: the
round trip a Redis read cannot avoid, without any session layer.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import SECRET, WSGIApp, plain_app
from benchmarks.stores import RawPing
from wsgisession import CookieStore, RedisStore, SessionMiddleware

KEY = "wsgisession.session"


def _untouched(environ: dict[str, Any]) -> None:
    pass


def _read(environ: dict[str, Any]) -> None:
    environ[KEY]["user_id"]


def _write(environ: dict[str, Any]) -> None:
    environ[KEY]["counter"] += 1


def routes(redis_url: str | None, prefix: str) -> dict[str, WSGIApp]:
    cookie = CookieStore()
    table: dict[str, WSGIApp] = {
        "/bare": plain_app(_untouched),
        "/cookie/read": SessionMiddleware(plain_app(_read), secret_key=SECRET, store=cookie),
        "/cookie/write": SessionMiddleware(plain_app(_write), secret_key=SECRET, store=cookie),
    }
    if redis_url:
        store = RedisStore(redis_url, prefix=prefix)
        ping: list[RawPing] = []  # connected on first use, in the worker

        def floor(environ: dict[str, Any]) -> None:
            if not ping:
                ping.append(RawPing(redis_url))
            ping[0]()

        table["/redis/floor"] = plain_app(floor)
        for mode, view in (("read", _read), ("write", _write)):
            table[f"/redis/{mode}"] = SessionMiddleware(
                plain_app(view), secret_key=SECRET, store=store, cookie_name="sid"
            )
    return table


_ROUTES = routes(os.environ.get("BENCH_REDIS_URL"), os.environ.get("BENCH_REDIS_PREFIX", ""))


def _callgrind_marks() -> Any:
    """The library of callgrind client requests (benchmarks/gunicorn_profile.py), if given."""
    library = os.environ.get("BENCH_CALLGRIND_MARKS")
    if not library:
        return None
    import ctypes

    marks = ctypes.CDLL(library)
    marks.wsgisession_dump.argtypes = [ctypes.c_char_p]
    return marks


_MARKS = _callgrind_marks()


def _mark(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/_callgrind/zero":
        _MARKS.wsgisession_zero()
    else:
        _MARKS.wsgisession_dump(environ.get("QUERY_STRING", "dump").encode())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return []


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/_callgrind/") and _MARKS is not None:
        return _mark(environ, start_response)
    route = _ROUTES.get(path)
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such benchmark route"]
    return route(environ, start_response)
