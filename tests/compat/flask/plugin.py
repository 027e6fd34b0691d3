"""A pytest plugin that runs Flask's own tests with ``init_app`` on every Flask app.

Loaded with ``-p`` by :mod:`tests.compat.flask.run` into a run of Flask's test suite
(the sdist's ``tests/``, bodies unchanged). Its autouse fixture is parametrized over
the stores, so each selected test runs once per store; every ``flask.Flask`` the test
builds, in its fixtures or in its body, gets :func:`wsgisession.contrib.flask.init_app`
at construction, before the test sets ``SECRET_KEY`` or any other configuration
(the factory pattern: everything is read from ``app.config`` per request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import flask
import pytest

from tests.services import REDIS_URL, require_redis
from wsgisession import CookieStore, LRUStore, RedisStore, SQLiteStore
from wsgisession.contrib.flask import init_app

#: Every Redis key of this run starts with this: runs never see each other's data.
REDIS_PREFIX = f"wsgisession-flask-compat:{uuid4().hex}:"

STORES = ("cookie", "memory", "sqlite", "redis")


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
        require_redis()  # skips without Redis, fails under CI=true
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
