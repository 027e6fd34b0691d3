"""The Prometheus exporter: event counters and store latency, one process or many."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import prometheus_client  # the metrics extra, part of dev
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import LRUStore, ServerSessionStore, SessionMiddleware, current_user, login
from wsgisession.errors import ConfigurationError
from wsgisession.metrics import instrument, metrics_app

from .conftest import SECRET, text_app

ROOT = Path(__file__).resolve().parent.parent


def view(request: Request) -> Any:
    if request.path == "/login":
        login("ann")
    user = current_user()
    return "anon" if user is None else str(user.user_id)


def test_events_are_counted_and_store_calls_timed(server_store: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=server_store)
    instrument(middleware, registry=registry)
    client = Client(middleware)
    client.get("/login")
    client.get("/")
    client.set_cookie("session", "forged")
    client.get("/")

    def value(name: str, **labels: str) -> float:
        result = registry.get_sample_value(name, labels)
        return 0.0 if result is None else float(result)

    assert value("wsgisession_session_events_total", event="logged_in") == 1
    assert value("wsgisession_session_events_total", event="created") == 1
    assert value("wsgisession_session_events_total", event="tampered") == 1
    assert value("wsgisession_session_events_total", event="revoked") == 0
    assert value("wsgisession_store_seconds_count", operation="save") == 1
    assert value("wsgisession_store_seconds_count", operation="load") == 1


def test_the_metrics_app_serves_the_text_format() -> None:
    registry = prometheus_client.CollectorRegistry()
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore())
    instrument(middleware, registry=registry)
    Client(middleware).get("/login")
    body = Client(metrics_app(registry)).get("/").text
    assert 'wsgisession_session_events_total{event="logged_in"} 1.0' in body
    assert "wsgisession_store_seconds_bucket" in body


WORKER = """
import sys
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response
from wsgisession import LRUStore, SessionMiddleware, login
from wsgisession.metrics import instrument

@Request.application
def app(request):
    login("ann")
    return Response("ok")

middleware = SessionMiddleware(app, secret_key="k" * 40, store=LRUStore())
instrument(middleware)
for _ in range(int(sys.argv[1])):
    Client(middleware).get("/")
"""

REPORT = """
from werkzeug.test import Client
from wsgisession.metrics import metrics_app
print(Client(metrics_app()).get("/").text)
"""


def test_under_several_processes_the_counts_add_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for count in (3, 4):  # two "workers"
        subprocess.run([sys.executable, "-c", WORKER, str(count)], env=env, check=True)
    report = subprocess.run(
        [sys.executable, "-c", REPORT], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert 'wsgisession_session_events_total{event="logged_in"} 7.0' in report
    assert 'wsgisession_store_seconds_count{operation="save"} 7.0' in report


def test_instrumenting_twice_times_each_store_call_once() -> None:
    registry = prometheus_client.CollectorRegistry()
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore())
    instrument(middleware, registry=registry)
    instrument(middleware, registry=registry)
    Client(middleware).get("/login")
    assert registry.get_sample_value("wsgisession_store_seconds_count", {"operation": "save"}) == 1


def test_wrap_store_is_the_public_seam_for_observing_store_calls() -> None:
    calls: list[str] = []

    class Recording(LRUStore):
        def __init__(self, inner: ServerSessionStore) -> None:
            super().__init__()
            self.inner = inner

        def load(self, key: str) -> Any:
            calls.append("load")
            return self.inner.load(key)

        def save(self, key: str, *args: Any, **kwargs: Any) -> bool:
            calls.append("save")
            return self.inner.save(key, *args, **kwargs)

    store = LRUStore()
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    middleware.wrap_store(Recording)
    client = Client(middleware)
    client.get("/login")
    assert client.get("/").text == "ann"
    assert calls == ["save", "load"]
    assert middleware.store is store  # the device index and admin tools keep the real one
    assert len(store) == 1


def test_wrap_store_on_a_cookie_store_says_there_is_nothing_to_wrap() -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET)
    with pytest.raises(ConfigurationError, match="no store calls to wrap"):
        middleware.wrap_store(lambda store: store)
    with pytest.raises(ConfigurationError, match="returning a ServerSessionStore"):
        SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore()).wrap_store(
            lambda store: None  # type: ignore[arg-type,return-value]
        )


def test_a_new_registry_gets_its_own_metrics_even_after_others_were_freed() -> None:
    # CPython reuses the id() of a freed registry: metrics cached by id() went to
    # the dead registry and the new one reported nothing.
    for _ in range(50):
        registry = prometheus_client.CollectorRegistry()
        middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore())
        instrument(middleware, registry=registry)
        Client(middleware).get("/login")
        labels = {"event": "logged_in"}
        assert registry.get_sample_value("wsgisession_session_events_total", labels) == 1
        del registry, middleware
