"""The demo site works as the README says: it counts visits and remembers a name."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from werkzeug.test import Client


@pytest.fixture
def demo_client(monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", "demo-test-key-" + "d" * 32)
    module: Any = importlib.reload(importlib.import_module("demo.wsgi"))
    return Client(module.app)


def test_demo_counts_visits(demo_client: Client) -> None:
    assert "visited this page 1 time " in demo_client.get("/").text
    assert "visited this page 2 times" in demo_client.get("/").text


def test_demo_remembers_a_name_and_escapes_it(demo_client: Client) -> None:
    response = demo_client.post("/name", data={"name": "<b>Ada</b>"})
    assert response.status_code == 303
    page = demo_client.get("/").text
    assert "Hello, &lt;b&gt;Ada&lt;/b&gt;!" in page
    assert "<b>Ada</b>" not in page


def test_demo_forgets(demo_client: Client) -> None:
    demo_client.post("/name", data={"name": "Ada"})
    demo_client.post("/forget")
    assert "Hello, stranger!" in demo_client.get("/").text
