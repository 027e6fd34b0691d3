"""Devices through Flask-Login and Django's auth: their own login, logout and password change.

With tracking on (``init_app(app, track_devices=True)``, ``WSGISESSION =
{"track_devices": True}``) the framework's own login feeds the per-user index, its
logout forgets the device, and Django's password change keeps only the current
session with ``logout_everywhere()`` — driven through Flask's and Django's test
clients, on every server store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import flask
import flask_login
import pytest

from wsgisession import CookieStore, ServerSessionStore, logout_everywhere, sessions_of
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError

from .conftest import SECRET
from .djangoapp import _UrlConf, configure, migrate


def listing() -> str:
    return json.dumps(
        [{"ua": d.user_agent, "current": d.current} for d in sessions_of()], sort_keys=True
    )


# -- Flask-Login -------------------------------------------------------------------------


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def flask_app(store: Any, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config["TESTING"] = True
    manager = flask_login.LoginManager(app)

    @manager.user_loader
    def load(user_id: str) -> User:
        return User(user_id)

    @app.post("/login")
    def login() -> str:
        remember = flask.request.args.get("remember") == "1"
        flask_login.login_user(User(flask.request.args["user"]), remember=remember)
        return "in"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "out"

    @app.get("/devices")
    @flask_login.login_required
    def devices() -> str:
        return listing()

    @app.post("/password")
    @flask_login.login_required
    def password() -> str:
        return str(logout_everywhere())

    @app.get("/whoami")
    def whoami() -> str:
        user = flask_login.current_user
        return str(user.id) if user.is_authenticated else "anonymous"

    init_app(app, store=store, **options)
    return app


def flask_browser(app: flask.Flask, agent: str) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def test_flask_login_logins_are_listed_and_its_logout_forgets_the_device(
    server_store: ServerSessionStore,
) -> None:
    app = flask_app(server_store, track_devices=True)
    laptop, phone = flask_browser(app, "laptop"), flask_browser(app, "phone")
    laptop.post("/login?user=ann")
    phone.post("/login?user=ann")
    assert sorted(json.loads(laptop.get("/devices").text), key=lambda d: d["ua"]) == [
        {"current": True, "ua": "laptop"},
        {"current": False, "ua": "phone"},
    ]
    phone.post("/logout")
    assert phone.get("/whoami").text == "anonymous"
    assert json.loads(laptop.get("/devices").text) == [{"current": True, "ua": "laptop"}]


def test_flask_log_out_everywhere_ends_the_other_sessions(
    server_store: ServerSessionStore,
) -> None:
    app = flask_app(server_store, track_devices={"client_ip": "none"})
    laptop, phone, tablet = (flask_browser(app, name) for name in ("laptop", "phone", "tablet"))
    for client in (laptop, phone, tablet):
        client.post("/login?user=ann")
    assert laptop.post("/password").text == "2"
    assert phone.get("/whoami").text == "anonymous"
    assert tablet.get("/whoami").text == "anonymous"
    assert laptop.get("/whoami").text == "ann"
    assert json.loads(laptop.get("/devices").text) == [{"current": True, "ua": "laptop"}]


def test_a_flask_login_without_tracking_records_nothing(server_store: ServerSessionStore) -> None:
    app = flask_app(server_store)
    client = flask_browser(app, "laptop")
    client.post("/login?user=ann")
    assert client.get("/whoami").text == "ann"
    with pytest.raises(ConfigurationError, match="track_devices"):
        client.get("/devices")


def test_flask_tracking_settings_are_checked_at_init_app() -> None:
    with pytest.raises(ConfigurationError, match="track_devices must be"):
        flask_app(None, track_devices="yes")
    with pytest.raises(ConfigurationError, match="revocation_store"):
        flask_app(CookieStore(), track_devices=True)


# -- Django ------------------------------------------------------------------------------

MIDDLEWARE = [
    "wsgisession.contrib.django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def django_urls() -> _UrlConf:
    from django.contrib import auth
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def login(request: HttpRequest) -> HttpResponse:
        user = auth.authenticate(
            request, username=request.GET["user"], password=request.GET["password"]
        )
        if user is None:
            return HttpResponse("refused", status=403)
        auth.login(request, user)
        return HttpResponse("in")

    def logout(request: HttpRequest) -> HttpResponse:
        auth.logout(request)
        return HttpResponse("out")

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    def devices(request: HttpRequest) -> HttpResponse:
        return HttpResponse(listing())

    def password(request: HttpRequest) -> HttpResponse:
        # The recipe: Django's own password change, then end every other session.
        user = request.user
        user.set_password(request.GET["new"])
        user.save()
        auth.update_session_auth_hash(request, user)
        return HttpResponse(str(logout_everywhere()))

    return _UrlConf(
        [
            path("login", login),
            path("logout", logout),
            path("whoami", whoami),
            path("devices", devices),
            path("password", password),
        ]
    )


@pytest.fixture
def django_user() -> str:
    migrate()
    from django.contrib.auth.models import User

    name = f"user-{uuid4().hex[:8]}"
    User.objects.create_user(name, password="first-password")
    return name


@pytest.fixture
def django_clients(server_store: ServerSessionStore) -> Iterator[Any]:
    """Make Django test clients, each with its own User-Agent, on a tracked project."""
    configure()
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(
        MIDDLEWARE=MIDDLEWARE,
        ROOT_URLCONF=django_urls(),
        WSGISESSION={"store": server_store, "secret_key": SECRET, "track_devices": True},
    ):
        yield lambda agent: Client(HTTP_USER_AGENT=agent)


def devices_seen_by(client: Any) -> list[dict[str, Any]]:
    return sorted(json.loads(client.get("/devices").text), key=lambda d: d["ua"])


def test_django_logins_are_listed_and_logout_forgets_the_device(
    django_clients: Any, django_user: str
) -> None:
    laptop, phone = django_clients("laptop"), django_clients("phone")
    assert laptop.get(f"/login?user={django_user}&password=first-password").text == "in"
    assert phone.get(f"/login?user={django_user}&password=first-password").text == "in"
    assert devices_seen_by(laptop) == [
        {"current": True, "ua": "laptop"},
        {"current": False, "ua": "phone"},
    ]
    phone.get("/logout")
    assert phone.get("/whoami").text == "anonymous"
    assert devices_seen_by(laptop) == [{"current": True, "ua": "laptop"}]


def test_django_test_client_login_is_a_device_too(django_clients: Any, django_user: str) -> None:
    from django.contrib.auth.models import User

    laptop, script = django_clients("laptop"), django_clients("script")
    laptop.get(f"/login?user={django_user}&password=first-password")
    assert script.login(username=django_user, password="first-password") is True
    # The test client logs in outside any request: no User-Agent is kept.
    assert devices_seen_by(laptop) == [
        {"current": False, "ua": ""},
        {"current": True, "ua": "laptop"},
    ]
    # Logging the same client in again replaces its device rather than add one.
    script.force_login(User.objects.get(username=django_user))
    assert [d["ua"] for d in devices_seen_by(laptop)] == ["", "laptop"]
    assert script.get("/whoami").text == django_user


def test_django_password_change_keeps_only_the_current_session(
    django_clients: Any, django_user: str
) -> None:
    laptop, phone, tablet = (django_clients(name) for name in ("laptop", "phone", "tablet"))
    for client in (laptop, phone, tablet):
        assert client.get(f"/login?user={django_user}&password=first-password").text == "in"
    assert laptop.get("/password?new=second-password").text == "2"
    assert laptop.get("/whoami").text == django_user
    assert phone.get("/whoami").text == "anonymous"
    assert tablet.get("/whoami").text == "anonymous"
    assert devices_seen_by(laptop) == [{"current": True, "ua": "laptop"}]
