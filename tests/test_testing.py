"""session_transaction, read_session and the pytest plugin, against every store."""

from __future__ import annotations

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    ClientSessionStore,
    CookieStore,
    CsrfMiddleware,
    ServerSessionStore,
    SessionMiddleware,
    current_user,
    session,
)
from wsgisession.testing import find_middleware, read_session, session_transaction

from .conftest import SECRET, record_count, text_app

pytest_plugins = ["pytester"]


def show(request: Request) -> str:
    """The session as "key=value" lines; /add?item= appends to the cart in place."""
    if request.path == "/add":
        session.setdefault("cart", []).append(request.args["item"])
    user = current_user()
    lines = [f"{key}={session[key]!r}" for key in sorted(session) if not key.startswith("_")]
    return "\n".join([f"user={user.user_id if user else None}", *lines])


def make(store: ClientSessionStore | ServerSessionStore) -> tuple[Client, SessionMiddleware]:
    middleware = SessionMiddleware(
        CsrfMiddleware(LintMiddleware(text_app(show))), secret_key=SECRET, store=store
    )
    return Client(middleware), middleware


def test_a_transaction_starts_a_session_the_app_then_sees(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client, _ = make(store)
    with session_transaction(client) as s:
        assert s.new
        s["name"] = "Ada"
        s["cart"] = ["apple"]
    assert client.get_cookie("session") is not None
    page = client.get("/add?item=pear").text
    assert "name='Ada'" in page
    assert "cart=['apple', 'pear']" in page
    assert read_session(client) == {"name": "Ada", "cart": ["apple", "pear"]}


def test_a_transaction_changes_an_existing_session_in_place(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client, _ = make(store)
    client.get("/add?item=apple")
    before = client.get_cookie("session")
    with session_transaction(client) as s:
        assert not s.new
        s["cart"].append("fig")
        del s["cart"][0]
    assert "cart=['fig']" in client.get("/").text
    after = client.get_cookie("session")
    assert before is not None
    assert after is not None
    if isinstance(store, ServerSessionStore):
        assert after.value == before.value, "a server-side session keeps its id"
        assert record_count(store) == 1


def test_clearing_in_a_transaction_deletes_the_cookie_and_the_record(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client, _ = make(store)
    client.get("/add?item=apple")
    with session_transaction(client) as s:
        s.clear()
    assert client.get_cookie("session") is None
    assert read_session(client) == {}
    if isinstance(store, ServerSessionStore):
        assert record_count(store) == 0


def test_a_login_set_in_a_transaction_is_a_real_login(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    from wsgisession.access.login import AUTH_KEY

    client, _ = make(store)
    with session_transaction(client) as s:
        s[AUTH_KEY] = {"id": "alice", "roles": ["admin"], "extra": {}}
    assert client.get("/").text.startswith("user=alice")


def test_read_session_writes_nothing(store: ClientSessionStore | ServerSessionStore) -> None:
    client, _ = make(store)
    assert read_session(client) == {}
    client.get("/add?item=apple")
    cookie = client.get_cookie("session")
    data = read_session(client)
    assert data == {"cart": ["apple"]}
    with pytest.raises(TypeError):
        data["cart"] = []  # type: ignore[index]
    assert client.get_cookie("session") == cookie


def test_nothing_is_saved_when_the_block_raises() -> None:
    client, _ = make(CookieStore())

    def fail_midway() -> None:
        with session_transaction(client) as s:
            s["name"] = "Ada"
            raise RuntimeError("the test failed here")

    with pytest.raises(RuntimeError, match="failed here"):
        fail_midway()
    assert client.get_cookie("session") is None


def test_find_middleware_follows_app_and_wsgi_app() -> None:
    import flask

    from wsgisession.contrib.flask import init_app

    app = flask.Flask(__name__)
    app.secret_key = SECRET
    sessions = init_app(app)
    assert find_middleware(LintMiddleware(app)) is sessions.session_middleware()
    with pytest.raises(LookupError, match="pass middleware= explicitly"):
        find_middleware(text_app(show))


def test_the_middleware_can_be_named_when_it_cannot_be_found() -> None:
    _, middleware = make(CookieStore())
    hidden = Client(lambda environ, start_response: middleware(environ, start_response))
    with session_transaction(hidden, middleware=middleware) as s:
        s["name"] = "Ada"
    assert read_session(hidden, middleware=middleware) == {"name": "Ada"}


def test_a_secure_cookie_is_made_for_an_https_base_url() -> None:
    middleware = SessionMiddleware(text_app(show), secret_key=SECRET, secure=True)
    client = Client(middleware)
    with session_transaction(client, base_url="https://localhost/") as s:
        s["name"] = "Ada"
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.secure
    assert "name='Ada'" in client.get("/", base_url="https://localhost/").text


PLUGIN_TEST = """
from werkzeug.wrappers import Request, Response

from wsgisession import LRUStore, SessionMiddleware, session
from wsgisession.testing import read_session, session_transaction


@Request.application
def app(request):
    session["visits"] = session.get("visits", 0) + 1
    return Response(str(session["visits"]))


def test_store_is_throwaway(wsgisession_store):
    assert isinstance(wsgisession_store, LRUStore)
    assert len(wsgisession_store) == 0


def test_client_wraps_the_app(wsgisession_client, wsgisession_store):
    client = wsgisession_client(app)
    assert client.get("/").text == "1"
    with session_transaction(client) as s:
        s["visits"] = 41
    assert client.get("/").text == "42"
    assert read_session(client) == {"visits": 42}
    assert len(wsgisession_store) == 1


def test_client_keeps_an_apps_own_middleware(wsgisession_client, wsgisession_sqlite_store):
    wrapped = SessionMiddleware(app, secret_key="k" * 32, store=wsgisession_sqlite_store)
    client = wsgisession_client(wrapped)
    assert client.get("/").text == "1"
    assert read_session(client) == {"visits": 1}


def test_options_for_an_app_with_its_own_middleware_are_an_error(wsgisession_client):
    import pytest

    with pytest.raises(TypeError, match="has its own SessionMiddleware"):
        wsgisession_client(SessionMiddleware(app, secret_key="k" * 32), max_age=60)
"""


@pytest.mark.slow
def test_the_pytest_plugin_is_installed_and_its_fixtures_work(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plugin=PLUGIN_TEST)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
