"""The tiny app gunicorn serves for the throughput benchmark (``benchmarks.wsgi_app:app``).

One process serves every variant, by path, so a run needs one server and the
variants can be measured in interleaved rounds: ``/bare``; ``/cookie/read`` and
``/cookie/write`` (``CookieStore``); ``/redis/read`` and ``/redis/write``
(``RedisStore`` at ``$BENCH_REDIS_URL`` under ``$BENCH_REDIS_PREFIX``).
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import SECRET, WSGIApp, plain_app
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
        for mode, view in (("read", _read), ("write", _write)):
            table[f"/redis/{mode}"] = SessionMiddleware(
                plain_app(view), secret_key=SECRET, store=store, cookie_name="sid"
            )
    return table


_ROUTES = routes(os.environ.get("BENCH_REDIS_URL"), os.environ.get("BENCH_REDIS_PREFIX", ""))


def _pid(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "")
    if path == "/pid":  # which worker holds a connection (the keep-alive balance check)
        return _pid(environ, start_response)
    route = _ROUTES.get(path)
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such benchmark route"]
    return route(environ, start_response)
