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
from pathlib import Path
from typing import Any
from uuid import uuid4

import flask
import flask_login
import pytest

from wsgisession import (
    CookieStore,
    ServerSessionStore,
    SQLiteStore,
    ended_elsewhere,
    logout_everywhere,
    revoke_all,
    sessions_of,
)
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

    @app.get("/messages")
    def messages() -> str:
        # Where a layout shows flash messages: first, why this browser was logged out.
        if ended_elsewhere():
            flask.flash("You were logged out: you logged in on another device.")
        return json.dumps(flask.get_flashed_messages())

    @app.post("/admin/revoke")
    @flask_login.login_required
    def admin_revoke() -> str:
        # An admin's page, with the user's id as the database has it: an int.
        return str(revoke_all(int(flask.request.args["user"])))

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


def tracked_options(store: Any, tmp_path: Path) -> dict[str, Any]:
    """``track_devices`` for *store*: with a stamp store when it is a cookie store."""
    if isinstance(store, CookieStore):
        return {"revocation_store": SQLiteStore(tmp_path / "stamps.sqlite3")}
    return {}


def forget_the_session(client: Any) -> None:
    """The browser ends its session (closed), keeping only its remember-me cookie."""
    client.delete_cookie("session")


# A cap on sessions per user (issue 29): Flask-Login's logins count, and are refused.


def test_flask_login_logins_beyond_the_cap_end_the_oldest_and_its_owner_is_told(
    server_store: ServerSessionStore,
) -> None:
    app = flask_app(server_store, track_devices={"max_per_user": 2})
    laptop, phone, tablet = (flask_browser(app, name) for name in ("laptop", "phone", "tablet"))
    for client in (laptop, phone, tablet):
        assert client.post("/login?user=ann").text == "in"
    assert laptop.get("/whoami").text == "anonymous"
    assert json.loads(laptop.get("/messages").text) == [
        "You were logged out: you logged in on another device."
    ]
    assert json.loads(laptop.get("/messages").text) == []
    assert sorted(d["ua"] for d in json.loads(tablet.get("/devices").text)) == ["phone", "tablet"]
    assert phone.get("/whoami").text == "ann"


def test_flask_login_login_beyond_the_cap_is_refused_with_409(
    server_store: ServerSessionStore,
) -> None:
    app = flask_app(server_store, track_devices={"max_per_user": 1, "when_full": "refuse"})
    laptop, phone = flask_browser(app, "laptop"), flask_browser(app, "phone")
    assert laptop.post("/login?user=ann&remember=1").text == "in"
    refused = phone.post("/login?user=ann&remember=1")
    assert refused.status_code == 409
    assert "log out on one of them" in refused.text
    assert phone.get_cookie("remember_token") is None  # not remembered either
    assert phone.get("/whoami").text == "anonymous"
    assert json.loads(laptop.get("/devices").text) == [{"current": True, "ua": "laptop"}]


def test_a_remember_cookie_does_not_log_back_in_a_browser_the_cap_ended(
    server_store: ServerSessionStore,
) -> None:
    # Else the ended browser would log in again at once, ending another in turn.
    app = flask_app(server_store, track_devices={"max_per_user": 1})
    laptop, phone = flask_browser(app, "laptop"), flask_browser(app, "phone")
    laptop.post("/login?user=ann&remember=1")
    phone.post("/login?user=ann")
    assert laptop.get("/whoami").text == "anonymous"
    assert laptop.get_cookie("remember_token") is None  # deleted by Flask-Login
    assert phone.get("/whoami").text == "ann"
    # Told why all the same, on the page that shows messages.
    assert len(json.loads(laptop.get("/messages").text)) == 1


# "Log out everywhere" against Flask-Login's remember-me cookie (issue 25, item 5).


def test_log_out_everywhere_defeats_the_remember_cookies_issued_before_it(
    store: Any, tmp_path: Path
) -> None:
    app = flask_app(store, track_devices=tracked_options(store, tmp_path))
    laptop, phone = flask_browser(app, "laptop"), flask_browser(app, "phone")
    laptop.post("/login?user=ann&remember=1")
    assert laptop.get_cookie("remember_token") is not None
    thief = flask_browser(app, "thief")  # copied the laptop's cookies, session excepted
    for cookie in ("remember_token", "remember_token_issued"):
        copied = laptop.get_cookie(cookie)
        assert copied is not None
        thief.set_cookie(cookie, copied.value)
    phone.post("/login?user=ann")
    assert phone.post("/password").text in ("1", "-1")
    # The laptop's session is revoked, and its remember cookie does not bring it back.
    assert laptop.get("/whoami").text == "anonymous"
    assert laptop.get_cookie("remember_token") is None  # deleted by Flask-Login
    assert laptop.get("/whoami").text == "anonymous"
    assert thief.get("/whoami").text == "anonymous"
    if not isinstance(store, CookieStore):
        assert json.loads(phone.get("/devices").text) == [{"current": True, "ua": "phone"}]
    # A remember-me login after the revocation remembers again.
    laptop.post("/login?user=ann&remember=1")
    forget_the_session(laptop)
    assert laptop.get("/whoami").text == "ann"


def test_the_browser_that_logged_out_everywhere_stays_remembered(
    store: Any, tmp_path: Path
) -> None:
    app = flask_app(store, track_devices=tracked_options(store, tmp_path))
    laptop, phone = flask_browser(app, "laptop"), flask_browser(app, "phone")
    laptop.post("/login?user=ann&remember=1")
    phone.post("/login?user=ann&remember=1")
    phone.post("/password")
    forget_the_session(phone)
    assert phone.get("/whoami").text == "ann"
    forget_the_session(laptop)
    assert laptop.get("/whoami").text == "anonymous"


def test_a_remember_cookie_without_a_revocation_logs_in_as_before(
    store: Any, tmp_path: Path
) -> None:
    app = flask_app(store, track_devices=tracked_options(store, tmp_path))
    laptop = flask_browser(app, "laptop")
    laptop.post("/login?user=ann&remember=1")
    forget_the_session(laptop)
    assert laptop.get("/whoami").text == "ann"
    if not isinstance(store, CookieStore):
        # A new device; the forgotten session is listed until it expires on the server.
        listed = json.loads(laptop.get("/devices").text)
        assert sorted(d["current"] for d in listed) == [False, True]


# One id form (issue 25, item 6): Flask-Login records get_id(), a str.


def test_revoke_all_with_the_int_id_ends_a_flask_login_session(store: Any, tmp_path: Path) -> None:
    app = flask_app(store, track_devices=tracked_options(store, tmp_path))
    user, admin = flask_browser(app, "user's"), flask_browser(app, "admin's")
    user.post("/login?user=1")  # Flask-Login records get_id(): "1"
    admin.post("/login?user=99")
    expected = "-1" if isinstance(store, CookieStore) else "1"
    assert admin.post("/admin/revoke?user=1").text == expected
    assert user.get("/whoami").text == "anonymous"
    assert admin.get("/whoami").text == "99"


# A Flask-Login session from before tracking was on (issue 25, item 4).


def test_a_flask_login_from_before_tracking_ends_with_log_out_everywhere(
    store: Any, tmp_path: Path
) -> None:
    before = flask_app(store)
    laptop = flask_browser(before, "laptop")
    laptop.post("/login?user=ann")
    session_cookie = laptop.get_cookie("session")
    assert session_cookie is not None
    after = flask_app(store, track_devices=tracked_options(store, tmp_path))  # restarted
    laptop, phone = flask_browser(after, "laptop"), flask_browser(after, "phone")
    laptop.set_cookie("session", session_cookie.value)
    phone.post("/login?user=ann")
    phone.post("/password")
    assert laptop.get("/whoami").text == "anonymous"
    assert phone.get("/whoami").text == "ann"


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

    def login_browser_session(request: HttpRequest) -> HttpResponse:
        # "Remember me" unticked, the way many Django login views do it: saved
        # explicitly, then made to end with the browser.
        response = login(request)
        request.session.save()
        request.session.set_expiry(0)
        return response

    def logout(request: HttpRequest) -> HttpResponse:
        auth.logout(request)
        return HttpResponse("out")

    def revoke_user(request: HttpRequest) -> HttpResponse:
        # An admin's view, with the id as a URL or form gives it: a str.
        return HttpResponse(str(revoke_all(request.GET["pk"])))

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    def devices(request: HttpRequest) -> HttpResponse:
        return HttpResponse(listing())

    def ended(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(ended_elsewhere()))

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
            path("login-browser-session", login_browser_session),
            path("revoke-user", revoke_user),
            path("logout", logout),
            path("whoami", whoami),
            path("devices", devices),
            path("ended", ended),
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
def tracking() -> Any:
    """The ``track_devices`` setting of the Django project (a test may override it)."""
    return True


@pytest.fixture
def django_clients(server_store: ServerSessionStore, tracking: Any) -> Iterator[Any]:
    """Make Django test clients, each with its own User-Agent, on a tracked project."""
    configure()
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(
        MIDDLEWARE=MIDDLEWARE,
        ROOT_URLCONF=django_urls(),
        WSGISESSION={"store": server_store, "secret_key": SECRET, "track_devices": tracking},
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


def test_a_django_login_saved_twice_in_its_request_stays_logged_in(
    django_clients: Any, django_user: str
) -> None:
    # Issue 25, item 8: the second save of the login request is the request's own.
    laptop, phone = django_clients("laptop"), django_clients("phone")
    answer = laptop.get(f"/login-browser-session?user={django_user}&password=first-password")
    assert (answer.status_code, answer.text) == (200, "in")
    assert laptop.get("/whoami").text == django_user
    assert devices_seen_by(laptop) == [{"current": True, "ua": "laptop"}]
    # A real revocation still ends it.
    phone.get(f"/login?user={django_user}&password=first-password")
    phone.get("/password?new=second-password")
    assert laptop.get("/whoami").text == "anonymous"


def test_django_revoke_all_with_the_pk_as_a_str_ends_the_users_sessions(
    django_clients: Any, django_user: str
) -> None:
    # Issue 25, item 6: Django records the primary key, an int.
    from django.contrib.auth.models import User

    laptop, admin = django_clients("laptop"), django_clients("admin")
    laptop.get(f"/login?user={django_user}&password=first-password")
    pk = User.objects.get(username=django_user).pk
    assert admin.get(f"/revoke-user?pk={pk}").text == "1"
    assert laptop.get("/whoami").text == "anonymous"


@pytest.mark.parametrize("tracking", [{"max_per_user": 1}])
def test_django_logins_beyond_the_cap_end_the_oldest(django_clients: Any, django_user: str) -> None:
    laptop, phone = django_clients("laptop"), django_clients("phone")
    assert laptop.get(f"/login?user={django_user}&password=first-password").text == "in"
    assert phone.get(f"/login?user={django_user}&password=first-password").text == "in"
    assert laptop.get("/whoami").text == "anonymous"
    assert laptop.get("/ended").text == "session cap"
    assert laptop.get("/ended").text == "None"
    assert devices_seen_by(phone) == [{"current": True, "ua": "phone"}]


@pytest.mark.parametrize("tracking", [{"max_per_user": 1, "when_full": "refuse"}])
def test_django_login_beyond_the_cap_is_refused_with_409(
    django_clients: Any, django_user: str
) -> None:
    laptop, phone = django_clients("laptop"), django_clients("phone")
    assert laptop.get(f"/login?user={django_user}&password=first-password").text == "in"
    refused = phone.get(f"/login?user={django_user}&password=first-password")
    assert refused.status_code == 409
    assert phone.get("/whoami").text == "anonymous"
    assert laptop.get("/whoami").text == django_user
    assert devices_seen_by(laptop) == [{"current": True, "ua": "laptop"}]
    # The test client's login() goes through the same signal: refused too.
    from wsgisession import TooManySessions

    with pytest.raises(TooManySessions):
        django_clients("script").login(username=django_user, password="first-password")
