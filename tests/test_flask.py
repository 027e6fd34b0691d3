"""wsgisession.contrib.flask: a real Flask app whose flask.session is ours."""

from __future__ import annotations

from typing import Any

import flask
import pytest
from werkzeug.test import Client

from wsgisession import (
    ClientSessionStore,
    CsrfMiddleware,
    LRUStore,
    ServerSessionStore,
    SQLiteStore,
    login_required,
    param,
    session,
)
from wsgisession.contrib.flask import FlaskSession, init_app
from wsgisession.errors import ConfigurationError
from wsgisession.testing import read_session, session_transaction

from .conftest import SECRET, record_count


def make_app(**options: Any) -> flask.Flask:
    """A small Flask app that uses flask.session the way Flask code does."""
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.before_request
    def permanent() -> None:
        flask.session.permanent = True  # common Flask code: must create no session

    @app.get("/")
    def home() -> str:
        return "home"

    @app.get("/count")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        flask.session.modified = True
        return str(flask.session["n"])

    @app.post("/cart")
    def add() -> str:
        flask.session.setdefault("cart", []).append(flask.request.form["item"])
        return ",".join(flask.session["cart"])

    @app.get("/same")
    def same() -> str:
        assert isinstance(flask.session, FlaskSession)
        assert flask.session.session is session._get_current_object()  # type: ignore[attr-defined]
        session["via"] = "wsgisession"
        return str(flask.session["via"])

    @app.post("/flash")
    def do_flash() -> flask.Response:
        flask.flash(flask.request.form["message"], "info")
        return flask.redirect("/messages")

    @app.get("/messages")
    def messages() -> str:
        return repr(flask.get_flashed_messages(with_categories=True))

    @app.post("/logout")
    def logout() -> str:
        flask.session.clear()
        return "bye"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return f"{item_id} {param('item_id', int) + 1}"

    @app.get("/private")
    @login_required
    def private() -> str:
        return "private"

    @app.get("/state")
    def state() -> str:
        s = flask.session
        return f"new={s.new} permanent={s.permanent} modified={s.modified}"

    init_app(app, **options)
    return app


@pytest.fixture
def client(store: ClientSessionStore | ServerSessionStore) -> Client:
    return make_app(store=store).test_client()


def test_flask_session_is_saved_in_our_store(client: Client) -> None:
    assert client.get("/count").text == "1"
    assert client.get("/count").text == "2"
    assert read_session(client) == {"n": 2}


def test_a_request_that_only_sets_permanent_creates_no_session(client: Client) -> None:
    response = client.get("/")
    assert response.text == "home"
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_nested_changes_are_saved_without_modified(client: Client) -> None:
    client.post("/cart", data={"item": "apple"})
    assert client.post("/cart", data={"item": "pear"}).text == "apple,pear"
    assert read_session(client)["cart"] == ["apple", "pear"]


def test_flask_session_and_wsgisession_session_are_one(client: Client) -> None:
    assert client.get("/same").text == "wsgisession"


def test_flask_flash_survives_our_serializer(client: Client) -> None:
    response = client.post("/flash", data={"message": "<saved>"})
    assert response.status_code == 302
    assert client.get("/messages").text == "[('info', '<saved>')]"
    assert client.get("/messages").text == "[]"


def test_clear_logs_out(client: Client) -> None:
    client.get("/count")
    assert client.get_cookie("session") is not None
    client.post("/logout")
    assert client.get_cookie("session") is None
    assert client.get("/count").text == "1"


def test_view_args_are_path_parameters(client: Client) -> None:
    assert client.get("/items/41").text == "41 42"


def test_werkzeug_refusals_render_natively(client: Client) -> None:
    assert client.get("/private").status_code == 401
    with session_transaction(client) as s:
        from wsgisession.access.login import AUTH_KEY

        s[AUTH_KEY] = {"id": "ada", "roles": []}
    assert client.get("/private").text == "private"


def test_flask_session_transaction_goes_through_our_store(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    app = make_app(store=store)
    client = app.test_client()
    with client.session_transaction() as s:
        s["n"] = 41
    assert client.get("/count").text == "42"
    with client.session_transaction() as s:
        assert s["n"] == 42
    if isinstance(store, ServerSessionStore):
        assert record_count(store) == 1


def test_session_attributes() -> None:
    client = make_app().test_client()
    assert client.get("/state").text == "new=True permanent=True modified=False"
    client.get("/count")
    assert client.get("/state").text == "new=False permanent=True modified=False"
    browser_session = make_app(max_age=None).test_client()
    assert "permanent=False" in browser_session.get("/state").text


def test_settings_come_from_config_then_options(tmp_path: Any) -> None:
    app = flask.Flask(__name__)
    app.config["WSGISESSION"] = {"cookie_name": "sid", "store": "memory://"}
    app.config["SECRET_KEY"] = SECRET.encode()
    app.config["SECRET_KEY_FALLBACKS"] = ["old-key-" + "o" * 32]
    middleware = init_app(app, store=SQLiteStore(tmp_path / "s.sqlite3"))
    assert middleware.cookie.name == "sid"
    assert isinstance(middleware.store, SQLiteStore)
    assert len(middleware.keyring.keys) == 2
    assert app.extensions["wsgisession"] is middleware
    assert app.wsgi_app is middleware


def test_a_missing_secret_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="secret_key is not set"):
        init_app(flask.Flask(__name__))


def test_csrf_middleware_goes_inside() -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.route("/form", methods=["GET", "POST"])
    def form() -> str:
        from wsgisession import csrf_token

        return csrf_token() if flask.request.method == "GET" else flask.request.form["x"]

    app.wsgi_app = CsrfMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    init_app(app, store=LRUStore())
    client = app.test_client()
    assert client.post("/form", data={"x": "1"}).status_code == 403
    token = client.get("/form").text
    assert client.post("/form", data={"x": "1", "csrf_token": token}).text == "1"


def test_a_forged_cookie_gives_a_fresh_session_not_an_error(client: Client) -> None:
    client.set_cookie("session", "forged.cookie.value")
    assert client.get("/count").text == "1"
