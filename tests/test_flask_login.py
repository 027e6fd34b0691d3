"""Flask-Login on wsgisession's flask.session, on every store: as on Flask's own session.

Plus what Flask's own session cannot do on a server store: a login moves the session
to a new id, so an id an attacker planted before it is worthless after it.
"""

from __future__ import annotations

from typing import Any

import flask
import flask_login
import pytest
from flask.testing import FlaskClient

from wsgisession import ClientSessionStore, CsrfMiddleware, ServerSessionStore
from wsgisession.contrib.flask import init_app

from .conftest import SECRET

Store = ClientSessionStore | ServerSessionStore


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def make_app(store: Store | None, *, protection: str = "basic", csrf: bool = False) -> flask.Flask:
    """A Flask-Login app: /login?remember=1, /logout, /private, /fresh, /visit, /whoami."""
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config["TESTING"] = True
    manager = flask_login.LoginManager(app)
    manager.session_protection = protection

    @manager.user_loader
    def load(user_id: str) -> User:
        return User(user_id)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str:
        if flask.request.method == "GET":
            return flask.render_template_string("{{ csrf_token() }}") if csrf else ""
        remember = flask.request.args.get("remember") == "1"
        flask_login.login_user(User(flask.request.args.get("user", "alice")), remember=remember)
        flask.session.permanent = remember
        return "in"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "out"

    @app.get("/private")
    @flask_login.login_required
    def private() -> str:
        return f"private {flask_login.current_user.id}"

    @app.get("/fresh")
    @flask_login.fresh_login_required
    def fresh() -> str:
        return "fresh"

    @app.get("/visit")
    def visit() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        return "hello"

    @app.get("/whoami")
    def whoami() -> str:
        user = flask_login.current_user
        if not user.is_authenticated:
            return "anonymous"
        return f"{user.id} fresh={flask_login.login_fresh()}"

    if csrf:
        app.wsgi_app = CsrfMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    if store is not None:
        init_app(app, store=store)
    return app


def clients(store: Store | None, **options: Any) -> tuple[FlaskClient, FlaskClient]:
    app = make_app(store, **options)
    return app.test_client(), app.test_client()


def test_login_required_logs_in_and_out(store: Store) -> None:
    client, _ = clients(store)
    assert client.get("/private").status_code == 401
    client.post("/login")
    assert client.get("/private").text == "private alice"
    assert client.get("/whoami").text == "alice fresh=True"
    client.post("/logout")
    assert client.get("/private").status_code == 401


def test_remember_me_logs_back_in_after_the_browser_closes(store: Store) -> None:
    client, _ = clients(store)
    client.post("/login?remember=1")
    client.delete_cookie("session")  # the browser session ended (and the session too)
    assert client.get("/whoami").text == "alice fresh=False"
    assert client.get("/private").text == "private alice"
    assert client.get("/fresh").status_code == 401


def test_without_remember_me_closing_the_browser_logs_out(store: Store) -> None:
    client, _ = clients(store)
    client.post("/login")
    assert client.get_cookie("remember_token") is None
    session_cookie = client.get_cookie("session")
    assert session_cookie is not None
    assert session_cookie.expires is None  # a browser-session cookie
    client.delete_cookie("session")
    assert client.get("/whoami").text == "anonymous"


@pytest.mark.parametrize("flask_own", [False, True], ids=["wsgisession", "flask"])
def test_strong_protection_logs_out_a_session_replayed_elsewhere(
    store: Store, flask_own: bool
) -> None:
    victim, attacker = clients(None if flask_own else store, protection="strong")
    victim.post("/login", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    stolen = victim.get_cookie("session")
    assert stolen is not None
    attacker.set_cookie("session", stolen.value)
    replay = attacker.get("/whoami", environ_base={"REMOTE_ADDR": "192.0.2.66"})
    assert replay.text == "anonymous"
    # Flask-Login drops the login from the session the replay presented: a cookie
    # session only in the attacker's copy, a server-side one for both (revoked).
    expected = (
        "anonymous"
        if isinstance(store, ServerSessionStore) and not flask_own
        else ("alice fresh=True")
    )
    assert victim.get("/whoami", environ_base={"REMOTE_ADDR": "10.0.0.1"}).text == expected


def test_strong_protection_only_marks_a_permanent_session_not_fresh(store: Store) -> None:
    # Flask-Login's rule for permanent ("remember me") sessions, as on Flask's own.
    victim, attacker = clients(store, protection="strong")
    victim.post("/login?remember=1", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    stolen = victim.get_cookie("session")
    assert stolen is not None
    attacker.set_cookie("session", stolen.value)
    replay = attacker.get("/whoami", environ_base={"REMOTE_ADDR": "192.0.2.66"})
    assert replay.text == "alice fresh=False"


def test_a_planted_session_id_is_worthless_after_login_user(store: Store) -> None:
    attacker, victim = clients(store)
    attacker.get("/visit")  # a valid session the attacker knows the cookie of
    planted = attacker.get_cookie("session")
    assert planted is not None
    victim.set_cookie("session", planted.value)  # e.g. via a subdomain's cookie
    victim.post("/login?user=alice")
    after = victim.get_cookie("session")
    assert after is not None
    assert after.value != planted.value
    assert victim.get("/whoami").text == "alice fresh=True"
    assert attacker.get("/whoami").text == "anonymous"
    attacker.post("/logout")
    assert victim.get("/whoami").text == "alice fresh=True"


def test_a_csrf_token_from_before_login_stops_working(store: Store) -> None:
    client, _ = clients(store, csrf=True)
    token = client.get("/login").text
    assert client.post("/login", data={"csrf_token": token}).text == "in"
    assert client.post("/logout", data={"csrf_token": token}).status_code == 403
    fresh_token = client.get("/login").text
    assert client.post("/logout", data={"csrf_token": fresh_token}).text == "out"
