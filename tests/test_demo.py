"""The demo site works as the README says, through its real middleware stack.

Every test runs against the plain WSGI and the Flask entry points and three stores.
The Django project configures Django for itself, which a process can do only once
(the other tests configure it their way): its flows run in a process of their own,
``tests/demo_django_flows.py``, and so does ``tests/demo_contract.py``, which sends
the same requests to all three variants and expects the same answers; the last two
tests here start them.
"""

from __future__ import annotations

import html
import importlib
import os
import re
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse


def build(variant: str) -> Any:
    """The demo's WSGI app through one of its three entry points."""
    if variant == "wsgi":
        module: Any = importlib.import_module("demo.wsgi")
        return module.create_app()
    module = importlib.import_module("demo.flask_app")
    return module.create_app()


@pytest.fixture(params=["wsgi", "flask"])
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


def test_every_page_uses_the_layout_and_the_local_stylesheet(client: Client) -> None:
    for path in ("/", "/cart", "/login"):
        page = client.get(path).text
        assert '<link rel="stylesheet" href="/static/demo.css">' in page
        assert '<nav class="main">' in page
    css = client.get("/static/demo.css")
    assert (css.status_code, css.mimetype) == (200, "text/css")
    assert ".flash-success" in css.text
    css.close()


def test_pages_are_never_kept_by_the_browser_cache(client: Client) -> None:
    for path in ("/", "/cart", "/login"):
        assert client.get(path).headers["Cache-Control"] == "no-store"
    log_in(client, "alice", "wonderland")
    assert client.get("/admin").headers["Cache-Control"] == "no-store"


def test_the_profile_remembers_a_name_and_email_and_escapes_them(client: Client) -> None:
    answer = post(client, "/profile", name="<b>Ada</b>", email="ada@example.com")
    assert answer.status_code == 303
    page = client.get("/").text
    assert "Hello, &lt;b&gt;Ada&lt;/b&gt;!" in page
    assert "<b>Ada</b>" not in page
    assert 'value="ada@example.com"' in page


def field_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error" id="(\w+)-error">([^<]*)<', page))


@pytest.mark.parametrize(
    ("name", "email", "errors"),
    [
        ("   ", "ada@example.com", {"name": "Enter your name, up to 100 characters."}),
        ("x" * 101, "ada@example.com", {"name": "Enter your name, up to 100 characters."}),
        ("Ada", "not an address", {"email": "Enter an e-mail address, such as alice@example.com."}),
    ],
)
def test_a_bad_profile_shows_the_errors_by_the_fields_and_keeps_the_input(
    client: Client, name: str, email: str, errors: dict[str, str]
) -> None:
    answer = post(client, "/profile", name=name, email=email)
    assert answer.status_code == 400
    assert field_errors(answer.text) == errors
    assert f'value="{email}"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert "Hello, stranger!" in client.get("/").text


def test_a_blank_cart_item_is_a_field_error(client: Client) -> None:
    answer = post(client, "/cart", item="   ")
    assert answer.status_code == 400
    assert field_errors(answer.text) == {"item": "Enter an item, up to 50 characters."}
    assert "(empty)" in client.get("/cart").text


def test_actions_are_confirmed_once_by_a_flash_message_styled_by_level(client: Client) -> None:
    post(client, "/cart", item="<apple>")
    page = client.get("/cart").text
    assert (
        '<p class="flash flash-success" role="status">Added &lt;apple&gt; to your cart.</p>' in page
    )
    assert "Added" not in client.get("/cart").text


def test_page_data_reaches_javascript_safely(client: Client) -> None:
    post(client, "/profile", name="</script><script>alert(1)//", email="a@example.com")
    page = client.get("/").text
    assert "</script><script>alert(1)" not in page
    assert '"user": "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)//"}' in page


def test_forget_clears_the_session(client: Client) -> None:
    post(client, "/profile", name="Ada", email="ada@example.com")
    post(client, "/forget")
    assert "Hello, stranger!" in client.get("/").text


def test_a_form_posted_without_its_token_gets_the_sites_403_page(client: Client) -> None:
    client.get("/")
    response = client.post("/profile", data={"name": "Mallory", "email": "m@example.com"})
    assert (response.status_code, response.mimetype) == (403, "text/html")
    assert '<nav class="main">' in response.text
    assert "This form came without its security token" in response.text
    assert "Hello, stranger!" in client.get("/").text


def test_a_stale_form_after_logout_gets_a_friendly_page(client: Client) -> None:
    log_in(client, "alice", "wonderland")
    stale = token(client, "/cart")
    post(client, "/logout")
    answer = client.post("/cart", data={"csrf_token": stale, "item": "pear"})
    assert answer.status_code == 403
    assert "This form was out of date" in answer.text
    assert "Go to the home page" in answer.text
    assert "pear" not in client.get("/cart").text


def test_cart_keeps_items_added_in_place(client: Client) -> None:
    post(client, "/cart", item="apple")
    post(client, "/cart", item="<pear>")
    items = re.findall(r"<li>([^<]*)</li>", client.get("/cart").text)
    assert items == ["apple", "&lt;pear&gt;"]


def test_the_json_api_takes_the_csrf_token_from_the_header(client: Client) -> None:
    page = client.get("/cart").text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match
    assert '<meta name="csrf-header" content="X-CSRF-Token">' in page
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
    assert 'value="alice"' in login_response.text, "the user name is kept"
    response = client.post(
        "/login?next=/admin",
        data={"csrf_token": token(client, "/login"), "username": "alice", "password": "wonderland"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"
    assert "All is well" in client.get("/admin").text


def test_admin_answers_an_api_client_401_json_not_a_redirect(client: Client) -> None:
    response = client.get("/admin", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json == {"error": "not_logged_in", "message": "Log in to see this page."}


def test_admin_refuses_a_user_without_the_role_with_the_sites_403_page(client: Client) -> None:
    log_in(client, "bob", "builder")
    answer = client.get("/admin")
    assert (answer.status_code, answer.mimetype) == (403, "text/html")
    assert '<p class="error-code">403</p>' in answer.text
    assert "Logged in as <b>Bob</b>" in answer.text


def test_remember_me_gives_a_persistent_cookie_and_not_remembered_ends_with_the_browser(
    client: Client,
) -> None:
    post(client, "/login", username="bob", password="builder", remember="1")
    remembered = client.get_cookie("session")
    assert remembered is not None
    assert remembered.expires is not None
    post(client, "/logout")
    log_in(client, "bob", "builder")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.expires is None


def test_a_logged_in_user_is_greeted_by_name_and_only_a_visitor_is_a_stranger(
    client: Client,
) -> None:
    assert "<h1>Hello, stranger!</h1>" in client.get("/").text
    log_in(client, "bob", "builder")
    page = client.get("/").text
    assert "<h1>Hello, Bob!</h1>" in page, "no profile name: the name the login gave"
    assert "Logged in as <b>Bob</b>" in page
    post(client, "/profile", name="Robert", email="bob@example.com")
    assert "<h1>Hello, Robert!</h1>" in client.get("/").text, "the profile name wins"
    post(client, "/logout")
    assert "<h1>Hello, stranger!</h1>" in client.get("/").text


def test_login_changes_the_session_cookie_and_logout_ends_it(client: Client) -> None:
    post(client, "/profile", name="Ada", email="ada@example.com")
    before = client.get_cookie("session")
    log_in(client, "alice", "wonderland")
    after = client.get_cookie("session")
    assert before is not None
    assert after is not None
    assert before.value != after.value
    assert "Logged in as <b>Alice</b>" in client.get("/").text
    post(client, "/logout")
    assert '<a href="/login">Log in</a>' in client.get("/").text


@pytest.mark.parametrize(
    ("method", "path", "code"), [("GET", "/logout", 405), ("GET", "/nope", 404)]
)
def test_errors_are_pages_of_the_site(client: Client, method: str, path: str, code: int) -> None:
    answer = client.open(path, method=method)
    assert (answer.status_code, answer.mimetype) == (code, "text/html")
    assert f'<p class="error-code">{code}</p>' in answer.text
    assert '<nav class="main">' in answer.text
    if code == 405:
        allowed = {m.strip() for m in answer.headers["Allow"].split(",")}
        assert "POST" in allowed
        assert "GET" not in allowed


def test_the_flask_variant_uses_flask_session_and_jinja(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from wsgisession.contrib.flask import WsgiSessionInterface

    monkeypatch.setenv("WSGISESSION_SECRET_KEY", "demo-test-key-" + "d" * 32)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{tmp_path}/demo.sqlite3")
    flask_app = build("flask")
    assert isinstance(flask_app.session_interface, WsgiSessionInterface)
    with flask_app.test_client() as client:
        client.get("/")
        assert client.get("/").status_code == 200
        import flask

        assert flask.session["visits"] == 2


def flask_stage(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **variables: str) -> Any:
    """The Flask variant at the stage of the switch the WSGISESSION_DEMO_* *variables*
    name, on one key, store and WSGISESSION_DEMO_VAR whatever the stage."""
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", "demo-test-key-" + "d" * 32)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{tmp_path}/demo.sqlite3")
    monkeypatch.setenv("WSGISESSION_DEMO_VAR", str(tmp_path))
    for name in ("WSGISESSION_DEMO_SESSIONS", "WSGISESSION_DEMO_MIGRATE_FROM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return build("flask")


def test_before_the_switch_the_flask_variant_keeps_its_logins_in_flasks_own_cookie(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from flask.sessions import SecureCookieSessionInterface

    from demo.common import csrf_message

    app = flask_stage(monkeypatch, tmp_path, WSGISESSION_DEMO_SESSIONS="flask")
    assert type(app.session_interface) is SecureCookieSessionInterface
    client = Client(app)
    assert "the session is Flask&#39;s own." in client.get("/").text
    assert client.get("/devices").headers["Location"] == "/login?next=%2Fdevices"
    log_in(client, "bob", "builder")
    cookie = client.get_cookie("session")
    assert cookie is not None
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    assert (data["user_id"], data["_permanent"]) == ("bob", False)  # a plain Flask login
    assert "Logged in as <b>Bob</b>" in client.get("/").text
    assert client.get("/admin").status_code == 403
    forged = client.post("/cart", data={"csrf_token": "forged", "item": "pear"})
    assert forged.status_code == 403
    assert csrf_message("invalid") in html.unescape(forged.text)
    assert client.post("/cart", data={"item": "pear"}).status_code == 403
    assert post(client, "/cart", item="pear").status_code == 303
    post(client, "/logout")
    assert "Logged in as" not in client.get("/cart").text


def test_the_flask_switch_carries_the_login_and_the_cart_over_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from datetime import datetime, timedelta

    from wsgisession.testing import find_middleware, read_session

    before = Client(flask_stage(monkeypatch, tmp_path, WSGISESSION_DEMO_SESSIONS="flask"))
    log_in_form = {"username": "alice", "password": "wonderland", "remember": "1"}
    post(before, "/login", **log_in_form)
    post(before, "/cart", item="teapot")
    old = before.get_cookie("session")
    assert old is not None

    app = flask_stage(monkeypatch, tmp_path, WSGISESSION_DEMO_MIGRATE_FROM="flask")
    after = Client(app)
    after.set_cookie("session", old.value)
    page = after.get("/cart").text
    assert "Logged in as <b>Alice</b>" in page
    assert "<li>teapot</li>" in page
    ours = after.get_cookie("session")
    assert ours is not None
    assert ours.value != old.value
    assert ours.expires is not None, "'remember me' outlives the browser still"
    data = read_session(after)
    assert data["cart"] == ["teapot"]
    assert "user_id" not in data, "the old login became one of ours"
    assert "(this browser)" in after.get("/devices").text
    assert after.get("/admin").status_code == 200
    assert after.get_cookie("session").value == ours.value

    # migrate_until: the day of the first start with the migration on, plus Flask's
    # PERMANENT_SESSION_LIFETIME; the same at every restart.
    kept = tmp_path / "wsgisession-demo-flask-switched-at"
    day = datetime.fromisoformat(kept.read_text())
    until = day + timedelta(days=14)
    assert find_middleware(app).migration.until == until
    again = flask_stage(monkeypatch, tmp_path, WSGISESSION_DEMO_MIGRATE_FROM="flask")
    assert find_middleware(again).migration.until == until
    flask_stage(monkeypatch, tmp_path, WSGISESSION_DEMO_SESSIONS="flask")
    assert not kept.exists(), "back before the switch, the next switch has its own day"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"WSGISESSION_DEMO_SESSIONS": "django"}, "the Flask demo runs on 'flask'"),
        ({"WSGISESSION_DEMO_MIGRATE_FROM": "django"}, "carries over 'flask' sessions only"),
        (
            {"WSGISESSION_DEMO_SESSIONS": "flask", "WSGISESSION_DEMO_MIGRATE_FROM": "flask"},
            "set one of them",
        ),
    ],
)
def test_the_switch_variables_are_checked(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    from demo.common import switch_stage

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        switch_stage("flask")


def run_in_a_process_of_its_own(module: str, tmp_path: Any) -> None:
    """Run the test module *module* (which sets Django up its own way) in a new process."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    env = {
        **os.environ,
        "WSGISESSION_SECRET_KEY": "demo-test-key-" + "d" * 32,
        "WSGISESSION_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3",
        "WSGISESSION_DEMO_VAR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(root / "tests" / module),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_django_project_flows_in_a_process_of_its_own(tmp_path: Any) -> None:
    run_in_a_process_of_its_own("demo_django_flows.py", tmp_path)


def test_the_three_variants_are_one_site(tmp_path: Any) -> None:
    """tests/demo_contract.py: the same requests, the same answers, on all three."""
    run_in_a_process_of_its_own("demo_contract.py", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "app", ["demo.wsgi:app", "demo.flask_app:app", "demo.django_app:create_app()"]
)
def test_under_gunicorn_a_store_outage_is_logged_with_its_time_and_level(
    app: str, tmp_path: Any
) -> None:
    """demo/gunicorn.conf.py gives wsgisession's records a time and a level (Django's
    logging set-up keeps them), and the 503 is the site's page."""
    import http.client

    from tests.servers import free_port, gunicorn, running

    port, closed = free_port(), free_port()  # nothing listens on the second
    env = {
        "WSGISESSION_SECRET_KEY": "demo-test-key-" + "d" * 32,
        "WSGISESSION_STORE": f"redis://127.0.0.1:{closed}/0",
        "WSGISESSION_DEMO_VAR": str(tmp_path),
    }
    log = tmp_path / "gunicorn.log"
    with running(gunicorn(port, "--workers", "1", app=app), port, log, env):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/")
        answer = connection.getresponse()
        page = answer.read().decode()
        connection.close()
    assert answer.status == 503
    assert '<p class="error-code">503</p>' in page
    text = log.read_text()
    assert re.search(
        r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] wsgisession:"
        r" session store unavailable, answering 503: Redis at",
        text,
        re.MULTILINE,
    ), text
    assert not re.search(r"^session store unavailable", text, re.MULTILINE), "no bare line"
    assert "after the response headers" not in text, text
