"""wsgisession.contrib.flask: a real Flask app whose flask.session is ours, on every store."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient
from markupsafe import Markup
from werkzeug.exceptions import NotFound

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
from wsgisession.contrib.flask import FlaskSession, FlaskSessionMiddleware, init_app
from wsgisession.testing import read_session, session_transaction

from .conftest import SECRET, Clock, record_count

Store = ClientSessionStore | ServerSessionStore
DAY = 86400


def make_app(**options: Any) -> flask.Flask:
    """A small Flask app that uses flask.session the way Flask code does."""
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config["TESTING"] = True

    @app.get("/")
    def home() -> str:
        return "home"

    @app.get("/count")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        flask.session.modified = True
        return str(flask.session["n"])

    @app.get("/read")
    def read() -> str:
        return repr(flask.session.get("n"))

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
        flask.flash(Markup("<em>saved</em>"), "html")
        return flask.redirect("/messages")

    @app.get("/messages")
    def messages() -> str:
        return flask.render_template_string(
            "{% for c, m in get_flashed_messages(with_categories=true) %}{{ c }}:{{ m }};"
            "{% endfor %}"
        )

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

    @app.get("/login")
    def login() -> str:
        flask.session["user"] = "alice"
        flask.session.permanent = flask.request.args.get("remember") == "1"
        return "in"

    @app.get("/state")
    def state() -> str:
        s = flask.session
        return f"new={s.new} permanent={s.permanent} modified={s.modified}"

    init_app(app, **options)
    return app


@pytest.fixture
def client(store: Store) -> FlaskClient:
    return make_app(store=store).test_client()


def cookie_header(response: Any) -> str:
    (header,) = response.headers.getlist("Set-Cookie")
    return str(header)


# -- the basics --------------------------------------------------------------


def test_flask_session_is_saved_in_our_store(client: FlaskClient) -> None:
    assert client.get("/count").text == "1"
    assert client.get("/count").text == "2"
    assert read_session(client) == {"n": 2}


def test_a_request_that_never_uses_the_session_sends_no_cookie(client: FlaskClient) -> None:
    response = client.get("/")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_setting_permanent_on_every_request_creates_no_session(store: Store) -> None:
    app = make_app(store=store)

    @app.before_request
    def permanent() -> None:
        flask.session.permanent = True  # common Flask code

    client = app.test_client()
    assert "Set-Cookie" not in client.get("/").headers
    if isinstance(store, ServerSessionStore):
        assert record_count(store) == 0
    assert "Max-Age=" in cookie_header(client.get("/count"))
    assert "Set-Cookie" in client.get("/count").headers


def test_nested_changes_are_saved_without_modified(client: FlaskClient) -> None:
    client.post("/cart", data={"item": "apple"})
    assert client.post("/cart", data={"item": "pear"}).text == "apple,pear"
    assert read_session(client)["cart"] == ["apple", "pear"]


def test_flask_session_and_wsgisession_session_are_one(client: FlaskClient) -> None:
    assert client.get("/same").text == "wsgisession"


def test_flashed_markup_stays_markup_and_text_is_escaped(client: FlaskClient) -> None:
    assert client.post("/flash", data={"message": "<saved>"}).status_code == 302
    assert client.get("/messages").text == "info:&lt;saved&gt;;html:<em>saved</em>;"
    assert client.get("/messages").text == ""


def test_clear_logs_out(client: FlaskClient) -> None:
    client.get("/count")
    assert client.get_cookie("session") is not None
    client.post("/logout")
    assert client.get_cookie("session") is None
    assert client.get("/count").text == "1"


def test_view_args_are_path_parameters(client: FlaskClient) -> None:
    assert client.get("/items/41").text == "41 42"


def test_werkzeug_refusals_render_natively(client: FlaskClient) -> None:
    assert client.get("/private").status_code == 401
    with session_transaction(client) as s:
        from wsgisession.access.login import AUTH_KEY

        s[AUTH_KEY] = {"id": "ada", "roles": []}
    assert client.get("/private").text == "private"


def test_flask_session_transaction_goes_through_our_store(store: Store) -> None:
    client = make_app(store=store).test_client()
    with client.session_transaction() as s:
        s["n"] = 41
    assert client.get("/count").text == "42"
    with client.session_transaction() as s:
        assert s["n"] == 42
    if isinstance(store, ServerSessionStore):
        assert record_count(store) == 1


def test_a_forged_cookie_gives_a_fresh_session_not_an_error(client: FlaskClient) -> None:
    client.set_cookie("session", "forged.cookie.value")
    assert client.get("/count").text == "1"


#: What a session holds across requests, with the types Flask's tagged JSON keeps.
TYPED_VALUES: dict[str, Any] = {
    "markup": Markup("<b>bold</b>"),
    "tuple": (1, "two", (3,)),
    "bytes": b"\x00\xff",
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "datetime": datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC),
    "tag_t": {" t": "not-a-tuple"},
    "tag_di": {" di": "not-a-dict"},
    "tag_h": {" h": "not-markup"},
}


def test_values_keep_their_types_on_the_next_request(store: Store) -> None:
    app = make_app(store=store)

    @app.get("/put")
    def put() -> str:
        flask.session.update(TYPED_VALUES)
        return ""

    @app.get("/types")
    def types() -> str:
        got = {key: flask.session[key] for key in TYPED_VALUES}
        assert got == TYPED_VALUES
        return " ".join(f"{key}={type(value).__name__}" for key, value in got.items())

    client = app.test_client()
    client.get("/put")
    assert client.get("/types").text == (
        "markup=Markup tuple=tuple bytes=bytes uuid=UUID datetime=datetime"
        " tag_t=dict tag_di=dict tag_h=dict"
    )


# -- Flask's configuration, read per request -------------------------------------


def test_cookie_settings_come_from_flask_config(store: Store) -> None:
    app = make_app(store=store)
    app.config.update(
        SESSION_COOKIE_NAME="app_session",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/shop",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    client = app.test_client()
    header = cookie_header(client.get("/count", "http://www.example.com/shop"))
    assert header.startswith("app_session=")
    assert "Domain=example.com" in header
    assert "Path=/shop" in header
    assert "HttpOnly" not in header
    assert "Secure" in header  # on plain HTTP: behind a TLS proxy, say
    assert "SameSite=Strict" in header
    assert "Partitioned" in header


def test_two_apps_under_application_roots_keep_their_own_cookies(store: Store) -> None:
    app = make_app(store=store)
    app.config["APPLICATION_ROOT"] = "/app1"
    header = cookie_header(app.test_client().get("/count"))
    assert "Path=/app1" in header


def test_init_app_arguments_win_over_flask_config(store: Store) -> None:
    app = make_app(store=store, cookie_name="sid", samesite="Lax")
    app.config.update(SESSION_COOKIE_NAME="ignored", SESSION_COOKIE_SAMESITE="Strict")
    header = cookie_header(app.test_client().get("/count"))
    assert header.startswith("sid=")
    assert "SameSite=Lax" in header


def test_a_bad_samesite_raises_value_error_as_in_flask(client: FlaskClient) -> None:
    flask_app = client.application
    assert isinstance(flask_app, flask.Flask)
    flask_app.config["SESSION_COOKIE_SAMESITE"] = "sometimes"
    with pytest.raises(ValueError, match="samesite"):
        client.get("/count")


def test_the_secret_key_may_be_set_after_init_app_and_rotated(store: Store) -> None:
    app = flask.Flask(__name__)
    init_app(app, store=store)

    @app.get("/")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    app.secret_key = "first key " * 4
    client = app.test_client()
    assert client.get("/").text == "1"
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "second key " * 4
    assert client.get("/").text == "2"
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/").text == "3"  # re-issued under the second key


def test_without_a_secret_key_reads_are_empty_and_writes_raise(store: Store) -> None:
    app = flask.Flask(__name__)
    init_app(app, store=store)

    @app.get("/read")
    def read() -> str:
        return repr(flask.session.get("n"))

    @app.get("/write")
    def write() -> str:
        flask.session["n"] = 1
        return ""

    client = app.test_client()
    assert client.get("/read").text == "None"
    app.testing = True
    with pytest.raises(RuntimeError, match="session is unavailable"):
        client.get("/write")


def test_a_cookie_signed_with_an_unknown_key_survives_a_read_only_request(store: Store) -> None:
    # A rolling key rotation: a worker still on the old key must not log users out.
    new = make_app(store=store)
    client = new.test_client()
    client.get("/count")
    cookie = client.get_cookie("session")
    assert cookie is not None
    old = make_app(store=store)
    old.secret_key = "an old key that signed nothing here " * 2
    other = old.test_client()
    other.set_cookie("session", cookie.value)
    response = other.get("/read")
    assert response.text == "None"
    assert "Set-Cookie" not in response.headers
    assert client.get("/read").text == "1"


# -- permanent sessions and PERMANENT_SESSION_LIFETIME ---------------------------


def test_a_session_is_a_browser_session_unless_permanent(client: FlaskClient) -> None:
    header = cookie_header(client.get("/login"))
    assert "Max-Age" not in header
    assert "Expires" not in header
    assert client.get("/state").text == "new=False permanent=False modified=False"


def test_remember_me_lasts_permanent_session_lifetime(store: Store, clock: Clock) -> None:
    app = make_app(store=store)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=30)
    client = app.test_client()
    header = cookie_header(client.get("/login?remember=1"))
    assert f"Max-Age={30 * DAY}" in header
    clock.advance(20 * DAY)
    assert client.get("/state").text == "new=False permanent=True modified=False"
    clock.advance(20 * DAY)  # renewed on the last request: 20 days idle is fine
    assert "permanent=True" in client.get("/state").text
    clock.advance(31 * DAY)
    assert "new=True" in client.get("/state").text


def test_refresh_each_request_renews_permanent_sessions_only(store: Store) -> None:
    app = make_app(store=store)
    client = app.test_client()
    client.get("/login?remember=1")
    response = client.get("/")  # does not even use the session
    assert "Max-Age=" in cookie_header(response)
    assert response.headers["Vary"] == "Cookie"
    client.get("/login")
    assert "Set-Cookie" not in client.get("/").headers
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    client.get("/login?remember=1")
    assert "Set-Cookie" not in client.get("/read").headers


# -- Flask's session attributes, headers and errors -------------------------------


def test_modified_is_true_in_after_request_and_after_the_save(client: FlaskClient) -> None:
    flask_app = client.application
    assert isinstance(flask_app, flask.Flask)
    seen: list[bool] = []

    @flask_app.after_request
    def record(response: flask.Response) -> flask.Response:
        seen.append(flask.session.modified)
        return response

    with client:
        client.get("/count")
        assert flask.session.modified
    client.get("/read")
    assert seen == [True, False]


def test_vary_cookie_is_merged_into_the_apps_vary(client: FlaskClient) -> None:
    flask_app = client.application
    assert isinstance(flask_app, flask.Flask)

    @flask_app.get("/negotiated")
    def negotiated() -> flask.Response:
        response = flask.Response(str(flask.session.get("n")))
        response.vary.add("Accept-Encoding")
        return response

    response = client.get("/negotiated")
    assert response.headers.getlist("Vary") == ["Accept-Encoding, Cookie"]


def test_trapped_http_exceptions_reach_the_caller(client: FlaskClient) -> None:
    flask_app = client.application
    assert isinstance(flask_app, flask.Flask)

    @flask_app.get("/missing")
    def missing() -> str:
        flask.session["seen"] = True
        raise NotFound()

    assert client.get("/missing").status_code == 404
    flask_app.config["TRAP_HTTP_EXCEPTIONS"] = True
    with pytest.raises(NotFound):
        client.get("/missing")


def test_csrf_token_is_a_template_global(store: Store) -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.route("/form", methods=["GET", "POST"])
    def form() -> str:
        if flask.request.method == "POST":
            return flask.request.form["x"]
        return flask.render_template_string("{{ csrf_token() }}")

    app.wsgi_app = CsrfMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    init_app(app, store=store)
    client = app.test_client()
    assert client.post("/form", data={"x": "1"}).status_code == 403
    token = client.get("/form").text
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    assert client.post("/form", data={"x": "1", "csrf_token": token}).text == "1"


def test_the_middleware_is_found_by_test_helpers(tmp_path: Any) -> None:
    app = flask.Flask(__name__)
    app.config["WSGISESSION"] = {"cookie_name": "sid", "store": "memory://"}
    app.config["SECRET_KEY"] = SECRET.encode()
    sessions = init_app(app, store=SQLiteStore(tmp_path / "s.sqlite3"))
    assert isinstance(sessions, FlaskSessionMiddleware)
    assert app.wsgi_app is sessions
    assert app.extensions["wsgisession"] is sessions
    assert isinstance(sessions.store, SQLiteStore)
    middleware = sessions.session_middleware()
    assert middleware is not None
    assert middleware.cookie.name == "sid"


def test_a_store_outage_while_saving_answers_503() -> None:
    store = LRUStore()
    client = make_app(store=store).test_client()

    def down(*args: Any, **kwargs: Any) -> Any:
        from wsgisession.errors import StoreUnavailable

        raise StoreUnavailable("down for the test")

    store.save = down  # type: ignore[method-assign]
    response = client.get("/count")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "Set-Cookie" not in response.headers


def test_a_save_that_met_an_outage_is_not_retried_after_the_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client was told 503: its change is dropped, as the core middleware and the
    Django integration drop it, not saved after the body once the store answers again
    (the client's retry would then count twice) nor logged as a change made late."""
    store = LRUStore()
    client = make_app(store=store).test_client()
    assert client.get("/count").text == "1"
    save = store.save
    calls: list[object] = []

    def down_once(*args: Any, **kwargs: Any) -> Any:
        from wsgisession.errors import StoreUnavailable

        calls.append(args)
        if len(calls) == 1:
            raise StoreUnavailable("down for the test")
        return save(*args, **kwargs)

    store.save = down_once  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="wsgisession"):
        response = client.get("/count")
        response.close()  # the end of the response, where a late change would be saved
    assert response.status_code == 503
    assert len(calls) == 1, "no second save after the 503"
    assert "after the response headers" not in caplog.text
    assert "after the headers" not in caplog.text
    assert client.get("/count").text == "2", "the change the 503 refused was dropped"


def test_a_request_serializes_each_changed_value_once(
    server_store: ServerSessionStore, count_dumps: Callable[[], list[object]]
) -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.get("/add")
    def add() -> str:
        cart = flask.session.setdefault("cart", [])
        cart.append("x")  # changed in place: no session.modified = True
        return str(len(cart))

    init_app(app, store=server_store)
    client = app.test_client()
    assert client.get("/add").text == "1"
    calls = count_dumps()
    assert client.get("/add").text == "2"
    assert calls == [["x", "x"]], "the changed value is serialized once, by the save"
