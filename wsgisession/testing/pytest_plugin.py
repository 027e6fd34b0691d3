"""The wsgisession pytest plugin: fixtures for testing an app that uses sessions.

Installed with the package (entry point ``pytest11``), so the fixtures are there in
any project that has wsgisession:

- ``wsgisession_secret_key``: a random secret key for the test;
- ``wsgisession_store``: a throwaway :class:`~wsgisession.LRUStore`;
- ``wsgisession_sqlite_store``: a throwaway :class:`~wsgisession.SQLiteStore` in
  the test's ``tmp_path`` (sessions shared with other processes, a real file);
- ``wsgisession_client``: ``wsgisession_client(app, **options)`` gives a werkzeug
  ``Client`` for *app*, wrapped in :class:`~wsgisession.SessionMiddleware` (secret
  key and store from the fixtures above, unless *options* say otherwise) when it
  has no middleware of its own.

::

    def test_cart(wsgisession_client):
        client = wsgisession_client(my_app)
        with session_transaction(client) as saved:
            saved["cart"] = ["apple"]
        assert "apple" in client.get("/cart").text

Override ``wsgisession_store`` in a ``conftest.py`` to run the same tests against
another store.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from ..context import bind, unbind
from ..middleware import SessionMiddleware
from ..stores.base import ClientSessionStore, ServerSessionStore
from ..stores.memory import LRUStore
from ..stores.sqlite import SQLiteStore
from . import find_middleware

__all__ = [
    "wsgisession_client",
    "wsgisession_secret_key",
    "wsgisession_sqlite_store",
    "wsgisession_store",
]


@pytest.fixture
def wsgisession_secret_key() -> str:
    """A random secret key, new for each test."""
    return secrets.token_urlsafe(32)


@pytest.fixture
def wsgisession_store() -> Iterator[ClientSessionStore | ServerSessionStore]:
    """An empty in-memory store, closed after the test."""
    store = LRUStore()
    yield store
    store.close()


@pytest.fixture
def wsgisession_sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """An empty SQLite store in the test's temporary directory, closed after the test."""
    store = SQLiteStore(tmp_path / "wsgisession.sqlite3")
    yield store
    store.close()


@pytest.fixture
def wsgisession_client(
    wsgisession_secret_key: str, wsgisession_store: ClientSessionStore | ServerSessionStore
) -> Iterator[Callable[..., Client]]:
    """A factory: ``wsgisession_client(app, **options)`` gives a test ``Client``.

    An *app* without a :class:`~wsgisession.SessionMiddleware` is wrapped in one
    built from *options* (``secret_key`` and ``store`` default to the fixtures);
    an app that has one is used as it is, and *options* must be empty.
    """
    # A response a test never closes leaves its request bound to this thread;
    # undo that so the next test starts with no current request.
    token = bind(None)

    def make(app: Any, **options: Any) -> Client:
        try:
            find_middleware(app)
        except LookupError:
            options.setdefault("secret_key", wsgisession_secret_key)
            options.setdefault("store", wsgisession_store)
            return Client(SessionMiddleware(app, **options))
        if options:
            raise TypeError(
                f"{app!r} has its own SessionMiddleware; options {sorted(options)} cannot apply"
            )
        return Client(app)

    yield make
    unbind(token)
