"""The demo site works as the README says, through its real middleware stack.

Every test runs against the three entry points (plain WSGI, Flask, Django) and
three stores.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse


def build(variant: str) -> Any:
    """The demo's WSGI app through one of its three entry points."""
    if variant == "wsgi":
        module: Any = importlib.import_module("demo.wsgi")
        return module.create_app()
    if variant == "flask":
        module = importlib.import_module("demo.flask_app")
        return module.create_app()
    from .djangoapp import django_app

    # Django is configured once per process (by the tests): serve the demo's own
    # URL patterns and middleware under those settings, wrapped as create_app() does.
    module = importlib.import_module("demo.django_app")
    return module.wrap_site(django_app(module.urlpatterns, module.MIDDLEWARE))


@pytest.fixture(params=["wsgi", "flask", "django"])
def variant(request: pytest.FixtureRequest) -> str:
    """Each entry point of the demo in turn."""
    return str(request.param)


@pytest.fixture(params=["sqlite", "cookie://", "memory://"])
def client(
    request: pytest.FixtureRequest, variant: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Client:
    """The demo with its default store (SQLite, here in a temporary file) or another."""
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", "demo-test-key-" + "d" * 32)
    url = f"sqlite:///{tmp_path}/demo.sqlite3" if request.param == "sqlite" else request.param
    monkeypatch.setenv("WSGISESSION_STORE", url)
    return Client(build(variant))


def test_the_demo_keeps_sessions_in_sqlite_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsgisession import SQLiteStore

    monkeypatch.delenv("WSGISESSION_STORE", raising=False)
    module: Any = importlib.import_module("demo.wsgi")
    assert isinstance(module.session_store(), SQLiteStore)


def token(client: Client, path: str = "/") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "every page with a form carries a CSRF token"
    return match.group(1)


def post(client: Client, path: str, **data: str) -> TestResponse:
    return client.post(path, data={"csrf_token": token(client), **data})


def log_in(client: Client, user: str, password: str) -> TestResponse:
    return post(client, "/login", username=user, password=password)


def test_counts_visits(client: Client) -> None:
    assert "visited this page 1 time " in client.get("/").text
    assert "visited this page 2 times" in client.get("/").text


def test_remembers_a_name_and_escapes_it(client: Client) -> None:
    assert post(client, "/name", name="<b>Ada</b>").status_code == 303
    page = client.get("/").text
    assert "Hello, &lt;b&gt;Ada&lt;/b&gt;!" in page
    assert "<b>Ada</b>" not in page


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "A name must not be empty."), ("x" * 101, "A name must have at most 100 characters.")],
)
def test_a_bad_name_is_refused_with_the_reason(client: Client, name: str, message: str) -> None:
    post(client, "/name", name=name)
    page = client.get("/").text
    assert message in page
    assert "Hello, stranger!" in page


def test_actions_are_confirmed_once_by_a_flash_message(client: Client) -> None:
    post(client, "/cart", item="<apple>")
    page = client.get("/cart").text
    assert '<p class="flash success">Added &lt;apple&gt; to your cart.</p>' in page
    assert "Added" not in client.get("/cart").text


def test_page_data_reaches_javascript_safely(client: Client) -> None:
    post(client, "/name", name="</script><script>alert(1)//")
    page = client.get("/").text
    assert "</script><script>alert(1)" not in page
    assert '"user": "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)//"}' in page


def test_forget_clears_the_session(client: Client) -> None:
    post(client, "/name", name="Ada")
    post(client, "/forget")
    assert "Hello, stranger!" in client.get("/").text


def test_a_form_posted_without_its_token_is_refused(client: Client) -> None:
    client.get("/")
    response = client.post("/name", data={"name": "Mallory"})
    assert response.status_code == 403
    assert "Hello, stranger!" in client.get("/").text


def test_cart_keeps_items_added_in_place(client: Client) -> None:
    post(client, "/cart", item="apple")
    post(client, "/cart", item="<pear>")
    page = client.get("/cart").text
    assert "<li>apple</li><li>&lt;pear&gt;</li>" in page


def test_the_json_api_takes_the_csrf_token_from_the_header(client: Client) -> None:
    page = client.get("/cart").text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match
    response = client.post(
        "/api/cart", json={"item": "surprise"}, headers={"X-CSRF-Token": match.group(1)}
    )
    assert response.status_code == 200
    assert response.json == {"cart": ["surprise"]}
    assert client.post("/api/cart", json={"item": "forged"}).status_code == 403
    invalid = client.post("/api/cart", json={"item": ""}, headers={"X-CSRF-Token": match.group(1)})
    assert invalid.status_code == 400
    assert invalid.json == {"errors": [{"field": "item", "message": "must not be empty"}]}


def test_admin_sends_a_visitor_to_log_in_and_back(client: Client) -> None:
    response = client.get("/admin")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    login_response = post(client, response.headers["Location"], username="alice", password="x")
    assert "Wrong user name or password" in login_response.text
    response = client.post(
        "/login?next=/admin",
        data={"csrf_token": token(client, "/login"), "username": "alice", "password": "wonderland"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"
    assert "All is well" in client.get("/admin").text


def test_admin_refuses_a_user_without_the_role(client: Client) -> None:
    log_in(client, "bob", "builder")
    assert client.get("/admin").status_code == 403


def test_login_changes_the_session_cookie_and_logout_ends_it(client: Client) -> None:
    post(client, "/name", name="Ada")
    before = client.get_cookie("session")
    log_in(client, "alice", "wonderland")
    after = client.get_cookie("session")
    assert before is not None
    assert after is not None
    assert before.value != after.value
    assert "Logged in as <b>Alice</b>" in client.get("/").text
    post(client, "/logout")
    assert "Log in</a>" in client.get("/").text


def test_a_wrong_method_is_refused_not_an_error(client: Client) -> None:
    assert client.get("/logout").status_code == 405


def test_the_flask_and_django_variants_use_the_framework_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from wsgisession.contrib.flask import WsgiSessionInterface

    monkeypatch.setenv("WSGISESSION_SECRET_KEY", "demo-test-key-" + "d" * 32)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{tmp_path}/demo.sqlite3")
    flask_app = build("flask")
    assert isinstance(flask_app.session_interface, WsgiSessionInterface)
    module: Any = importlib.import_module("demo.django_app")
    assert "wsgisession.contrib.django.SessionMiddleware" in module.MIDDLEWARE
    assert module.settings()["ROOT_URLCONF"] == "demo.django_app"
