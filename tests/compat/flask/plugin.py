"""A pytest plugin that runs Flask's own tests with ``init_app`` on every Flask app.

Loaded with ``-p`` by :mod:`tests.compat.flask.run` into a run of Flask's test suite
(the sdist's ``tests/``, bodies unchanged). Its autouse fixture is parametrized over
the stores, so each selected test runs once per store; every ``flask.Flask`` the test
builds, in its fixtures or in its body, gets :func:`wsgisession.contrib.flask.init_app`
at construction, before the test sets ``SECRET_KEY`` or any other configuration
(the factory pattern: everything is read from ``app.config`` per request).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import flask
import pytest

from wsgisession import CookieStore, LRUStore, RedisStore, SQLiteStore
from wsgisession.contrib.flask import init_app

REDIS_URL = os.environ.get("WSGISESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: Every Redis key of this run starts with this: runs never see each other's data.
REDIS_PREFIX = f"wsgisession-flask-compat:{uuid4().hex}:"

STORES = ("cookie", "memory", "sqlite", "redis")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _redis_problem() -> str | None:
    try:
        import redis
    except ImportError:
        return "the redis package is not installed: pip install -e '.[redis]'"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS_URL} ({exc}); start one or set WSGISESSION_TEST_REDIS_URL"
    finally:
        client.close()
    return None


def _store_factory(name: str, tmp_path: Path, made: list[Any]) -> Callable[[], Any]:
    def make() -> Any:
        n = len(made)
        if name == "cookie":
            store: Any = CookieStore()
        elif name == "memory":
            store = LRUStore()
        elif name == "sqlite":
            store = SQLiteStore(tmp_path / f"sessions-{n}.sqlite3")
        else:
            store = RedisStore(REDIS_URL, prefix=f"{REDIS_PREFIX}{uuid4().hex[:12]}:")
        made.append(store)
        return store

    return make


@pytest.fixture(autouse=True, params=STORES)
def compat_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """Every Flask app made during the test is backed by wsgisession on this store."""
    name: str = request.param
    if name == "redis":
        problem = _redis_problem()
        if problem is not None:
            if _in_ci():
                pytest.fail(f"required when CI=true: {problem}")
            pytest.skip(problem)
    made: list[Any] = []
    make_store = _store_factory(name, tmp_path, made)
    original_init = flask.Flask.__init__

    def __init__(self: flask.Flask, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        init_app(self, store=make_store())

    monkeypatch.setattr(flask.Flask, "__init__", __init__)
    yield name
    for store in made:
        if isinstance(store, RedisStore):
            keys = list(store.client.scan_iter(match=store.prefix + "*"))
            if keys:
                store.client.delete(*keys)
        if hasattr(store, "close"):
            store.close()
