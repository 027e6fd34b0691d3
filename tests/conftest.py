"""Shared fixtures: a secret key, a controllable clock and tiny WSGI apps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import CookieStore, ServerSessionStore, SessionMiddleware, SessionStore
from wsgisession.context import _environ

SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def text_app(view: Callable[[Request], Any]) -> Any:
    """A WSGI app whose *view* gets the werkzeug Request and returns a str or a Response."""

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        result = view(request)
        if isinstance(result, Response):
            return result
        return Response("" if result is None else str(result), content_type="text/plain")

    return app


def session_client(view: Callable[[Request], Any], **options: Any) -> Client:
    """A test client for *view* wrapped in SessionMiddleware(**options)."""
    options.setdefault("secret_key", SECRET)
    return Client(SessionMiddleware(text_app(view), **options))


#: Every store the shared session suite runs against, by parametrize id. Each entry
#: builds a fresh, empty store for one test (tmp_path is the test's own directory).
STORES: dict[str, Callable[[Path], SessionStore | ServerSessionStore]] = {
    "cookie": lambda tmp_path: CookieStore(),
    "encrypted-cookie": lambda tmp_path: CookieStore(encrypt=True),
}


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore | ServerSessionStore:
    """Each store in turn: tests using it run once per store."""
    return STORES[request.param](tmp_path)


@pytest.fixture(autouse=True)
def _no_request_bound() -> Iterator[None]:
    # A response a test never closed leaves its request bound in this thread; start
    # every test from a clean context so "unbound after close" means what it says.
    token = _environ.set(None)
    yield
    _environ.reset(token)


class Clock:
    """Stands in for time.time(), so expiry can be tested without sleeping."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c
