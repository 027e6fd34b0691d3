"""Sessions carried in a request header (``SessionMiddleware(header="X-Auth-Token")``).

API, mobile and command-line clients send the session in a header instead of the
cookie; a response gives a new value back in the same header, an empty one when the
session ended. Driven on every store through werkzeug's test ``Client``, through
Flask and Django, and against a real gunicorn with ``http.client``.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request, Response

from wsgisession import (
    ClientSessionStore,
    CookieStore,
    CsrfMiddleware,
    EventName,
    FreshLogin,
    LRUStore,
    ServerSessionStore,
    SessionEvent,
    SessionMiddleware,
    SQLiteStore,
    csrf_token,
    current_user,
    login,
    logout,
    revoke,
    revoke_all,
    session,
    sessions_of,
    track_devices,
)
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError
from wsgisession.testing import HeaderClient, read_session, session_transaction

from .conftest import SECRET, Clock, record_count, text_app
from .djangoapp import django_app, migrate
from .servers import Gunicorn

HEADER = "X-Auth-Token"
Store = ClientSessionStore | ServerSessionStore


def view(request: Request) -> Any:
    """Log in and out, show who is logged in, keep a cart, list and end devices."""
    path = request.path
    if path == "/login":
        login(request.form["user"])
        return "welcome"
    if path == "/logout":
        logout()
        return "bye"
    if path == "/cart":
        if request.method == "POST":
            session.setdefault("cart", []).append(request.form["item"])
        return ",".join(session.get("cart", []))
    if path == "/token":
        return csrf_token()
    user = current_user()
    if user is None:
        return Response("anonymous", status=401)
    if path == "/devices":
        return "\n".join(
            f"{d.handle} {d.user_agent}{' (current)' if d.current else ''}" for d in sessions_of()
        )
    if path == "/revoke":
        return str(revoke(request.form["handle"]))
    if path == "/revoke-all":
        return str(revoke_all())
    return str(user.user_id)


def api(store: Store, **options: Any) -> SessionMiddleware:
    """The view behind CSRF checks and a fresh-login guard, with the session header."""
    options.setdefault("header", HEADER)
    guarded = FreshLogin(CsrfMiddleware(text_app(view)), max_age=600, paths=["/revoke-all"])
    return SessionMiddleware(LintMiddleware(guarded), secret_key=SECRET, store=store, **options)


def send(client: Client, method: str, path: str, token: str | None, **kwargs: Any) -> TestResponse:
    """One request carrying *token* in the header ("" for none yet)."""
    headers = {HEADER: token if token is not None else "", **kwargs.pop("headers", {})}
    return client.open(path, method=method, headers=headers, **kwargs)


def log_in(client: Client, user: str = "ada", token: str = "") -> str:
    response = send(client, "POST", "/login", token, data={"user": user})
    assert response.status_code == 200, response.text
    assert "Set-Cookie" not in response.headers
    assert response.headers[HEADER]
    return response.headers[HEADER]


# -- the transport, on every store ---------------------------------------------------


def test_a_login_sends_the_token_in_the_header_and_the_token_names_the_session(
    store: Store,
) -> None:
    app = api(store)
    client = Client(app)
    response = send(client, "POST", "/login", "", data={"user": "ada"})
    token = response.headers[HEADER]
    assert response.headers.getlist("Set-Cookie") == []
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == f"Cookie, {HEADER}"
    assert send(client, "GET", "/", token).text == "ada"
    assert client.get("/").status_code == 401  # the cookie jar holds nothing
    # The value is what the cookie's would be: it reads as a session cookie.
    assert app.read_cookie(token).created > 0


def test_a_response_sends_a_value_only_when_the_client_needs_a_new_one(store: Store) -> None:
    client = Client(api(store))
    token = log_in(client)
    read = send(client, "GET", "/", token)
    assert HEADER not in read.headers
    assert HEADER in read.headers["Vary"]
    written = send(client, "POST", "/cart", token, data={"item": "apple"})
    if isinstance(store, CookieStore):  # the data is the value: any change sends it
        assert written.headers[HEADER] not in ("", token)
        token = written.headers[HEADER]
    else:  # the id did not change, nor does the value
        assert HEADER not in written.headers
    assert send(client, "GET", "/cart", token).text == "apple"


def test_a_renewal_sends_the_renewed_value(store: Store, clock: Clock) -> None:
    client = Client(api(store, max_age=600, refresh_interval=60))
    token = log_in(client)
    clock.advance(61)
    renewed = send(client, "GET", "/", token).headers[HEADER]
    assert renewed not in ("", token)
    clock.advance(599)  # past the first value's idle timeout, not the renewed one's
    assert send(client, "GET", "/", renewed).text == "ada"
    assert send(client, "GET", "/", token).status_code == 401


def test_login_moves_a_header_session_to_a_new_value(store: Store) -> None:
    client = Client(api(store))
    anonymous = send(client, "POST", "/cart", "", data={"item": "pear"}).headers[HEADER]
    token = log_in(client, token=anonymous)
    assert token != anonymous
    assert send(client, "GET", "/cart", token).text == "pear"  # the data went along
    if isinstance(store, ServerSessionStore):  # the old id names nothing any more
        assert send(client, "GET", "/cart", anonymous).text == ""


def test_logout_sends_the_header_empty(store: Store) -> None:
    client = Client(api(store))
    token = log_in(client)
    out = send(client, "POST", "/logout", token)
    assert out.text == "bye"
    assert out.headers[HEADER] == ""
    assert out.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in out.headers
    if isinstance(store, ServerSessionStore):
        assert send(client, "GET", "/", token).status_code == 401
        assert record_count(store) == 0


def test_a_forged_or_garbled_token_is_a_fresh_session_never_an_error(store: Store) -> None:
    client = Client(api(store))
    token = log_in(client)
    for bad in (token[:-2] + "xx", "x" * 5000, "é", token + "," + token):
        assert send(client, "GET", "/", bad).status_code == 401


def test_browsers_keep_the_cookie_on_the_same_app(store: Store) -> None:
    browser = Client(api(store))
    page = browser.get("/token")
    assert "Set-Cookie" in page.headers
    assert HEADER not in page.headers
    done = browser.post("/login", data={"user": "bob"}, headers={"X-CSRF-Token": page.text})
    assert "session=" in done.headers["Set-Cookie"]
    assert browser.get("/").text == "bob"


def test_both_the_cookie_and_the_header_is_a_400_not_a_guess(store: Store) -> None:
    client = Client(api(store))
    token = log_in(client)
    client.set_cookie("session", token)
    refused = send(client, "GET", "/", token)
    assert refused.status_code == 400
    assert "both the 'X-Auth-Token' header and the 'session' cookie" in refused.text
    assert "Set-Cookie" not in refused.headers
    assert HEADER not in refused.headers
    as_json = send(client, "GET", "/", "", headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.json is not None
    assert as_json.json["error"] == "ambiguous_session"


def test_a_session_opened_outside_the_middleware_trusts_neither_of_two(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # What Django's middleware or a test helper opens without the 400 check first.
    app = api(store)
    token = log_in(Client(app))
    both = {"HTTP_X_AUTH_TOKEN": token, "HTTP_COOKIE": f"session={token}"}
    opened = app.open_session(both)
    assert opened.new
    assert dict(opened) == {}
    assert "trusting neither" in caplog.text
    assert dict(app.open_session({"HTTP_X_AUTH_TOKEN": token})) != {}


def test_without_a_cookie_every_session_travels_in_the_header(store: Store) -> None:
    client = Client(api(store, cookie_name=None))
    response = client.post("/login", data={"user": "ada"})  # no header sent at all
    token = response.headers[HEADER]
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == HEADER
    assert send(client, "GET", "/", token).text == "ada"
    assert send(client, "POST", "/logout", token).headers[HEADER] == ""


def test_a_header_session_too_large_for_a_cookie_is_refused_as_one() -> None:
    from wsgisession.errors import SessionTooLarge

    def big(request: Request) -> str:
        session["blob"] = secrets.token_urlsafe(4000)  # random: no compression saves it
        return "stored"

    client = Client(SessionMiddleware(text_app(big), secret_key=SECRET, header=HEADER))
    with pytest.raises(SessionTooLarge):
        send(client, "GET", "/", "")


def test_bad_header_settings_fail_at_start_up() -> None:
    for name in ("Cookie", "authorization", "X_Auth", "X Auth", ""):
        with pytest.raises(ConfigurationError):
            SessionMiddleware(text_app(view), secret_key=SECRET, header=name)
    with pytest.raises(ConfigurationError, match="sessions need a header"):
        SessionMiddleware(text_app(view), secret_key=SECRET, cookie_name=None)


def test_the_signing_purpose_keeps_a_header_only_app_apart_from_a_cookie_app() -> None:
    store = LRUStore()
    cookies = Client(api(store))
    header_only = Client(api(store, cookie_name=None))
    token = log_in(cookies)
    assert send(header_only, "GET", "/", token).status_code == 401
    assert send(cookies, "GET", "/", token).text == "ada"


def test_vary_merges_with_the_apps_own_and_the_responses_pass_the_wsgi_lint() -> None:
    def own_vary(request: Request) -> Response:
        if request.path == "/logout":
            logout()
        else:
            session["seen"] = True
        return Response("ok", headers={"Vary": "Accept"})

    # The lint outside: it checks the headers the middleware adds, the empty one too.
    app = LintMiddleware(
        SessionMiddleware(text_app(own_vary), secret_key=SECRET, store=LRUStore(), header=HEADER)
    )
    client = Client(app)
    first = send(client, "GET", "/", "")
    assert first.headers["Vary"] == f"Accept, Cookie, {HEADER}"
    assert first.headers.getlist("Vary") == [f"Accept, Cookie, {HEADER}"]
    ended = send(client, "GET", "/logout", first.headers[HEADER])
    assert ended.headers[HEADER] == ""


def test_the_session_and_the_middleware_say_how_the_session_travels() -> None:
    seen: list[str] = []

    def which(request: Request) -> str:
        seen.append(session.transport)
        return "ok"

    both = SessionMiddleware(text_app(which), secret_key=SECRET, header=HEADER)
    Client(both).get("/")
    send(Client(both), "GET", "/", "")
    header_only = SessionMiddleware(
        text_app(which), secret_key=SECRET, header=HEADER, cookie_name=None
    )
    Client(header_only).get("/")
    cookie_only = SessionMiddleware(text_app(which), secret_key=SECRET)
    send(Client(cookie_only), "GET", "/", "")  # a header no one configured: ignored
    assert seen == ["cookie", "header", "header", "cookie"]
    assert both.transport({"HTTP_X_AUTH_TOKEN": ""}) == "header"
    assert both.transport({}) == "cookie"


def test_a_session_key_opens_a_header_only_session_again(server_store: ServerSessionStore) -> None:
    app = api(server_store, cookie_name=None)
    token = log_in(Client(app))
    opened = app.open_session_by_key(token)
    assert current_user(opened.environ) is not None
    key = app.session_key(opened)
    assert key is not None
    again = app.open_session_by_key(key)
    assert dict(again) == dict(opened)


def test_a_header_clients_request_may_name_the_header_itself() -> None:
    client = HeaderClient(api(LRUStore()))
    client.post("/login", data={"user": "ada"})
    assert client.get("/").text == "ada"
    assert client.get("/", headers={HEADER: ""}).status_code == 401  # this request's own
    assert client.get("/").text == "ada"  # the token is kept


# -- CSRF: the header is no ambient credential --------------------------------------


def test_a_header_session_post_needs_no_csrf_token(store: Store) -> None:
    client = Client(api(store))
    token = log_in(client)  # a POST without a CSRF token, already
    added = send(client, "POST", "/cart", token, data={"item": "plum"})
    assert added.status_code == 200
    assert added.text == "plum"


def test_the_same_app_still_refuses_a_cookie_session_post_without_a_token(store: Store) -> None:
    browser = Client(api(store))
    page = browser.get("/token")
    browser.post("/login", data={"user": "bob"}, headers={"X-CSRF-Token": page.text})
    refused = browser.post("/cart", data={"item": "plum"})
    assert refused.status_code == 403
    assert (
        browser.post(
            "/cart", data={"item": "plum"}, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    # Sending the victim's cookie with a made-up header value is no way around it.
    assert send(browser, "POST", "/cart", "anything", data={"item": "plum"}).status_code == 400


# -- guards, devices, fresh login, events ----------------------------------------------


def test_a_header_session_is_listed_and_revocable_like_any(
    server_store: ServerSessionStore,
) -> None:
    app = api(server_store)
    track_devices(app)
    phone = Client(app)
    agent = {"User-Agent": "phone-app/1"}
    token = send(phone, "POST", "/login", "", data={"user": "ada"}, headers=agent).headers[HEADER]
    browser = Client(app)
    page = browser.get("/token")
    browser.post("/login", data={"user": "ada"}, headers={"X-CSRF-Token": page.text})
    lines = send(phone, "GET", "/devices", token).text.splitlines()
    assert len(lines) == 2
    (current,) = [line for line in lines if line.endswith("(current)")]
    assert current.split()[1] == "phone-app/1"
    ended = send(phone, "POST", "/revoke", token, data={"handle": current.split()[0]})
    assert ended.text == "True"
    assert ended.headers[HEADER] == ""  # this request's own session ended
    assert send(phone, "GET", "/", token).status_code == 401
    assert browser.get("/").text == "ada"  # the browser's session lives on


def test_a_revoked_header_session_is_told_by_an_empty_header(
    server_store: ServerSessionStore,
) -> None:
    app = api(server_store)
    track_devices(app)
    phone, laptop = Client(app), Client(app)
    phone_token, laptop_token = log_in(phone), log_in(laptop)
    handle = next(
        line.split()[0]
        for line in send(laptop, "GET", "/devices", laptop_token).text.splitlines()
        if not line.endswith("(current)")
    )
    assert send(laptop, "POST", "/revoke", laptop_token, data={"handle": handle}).text == "True"
    anonymous = send(phone, "GET", "/", phone_token)
    assert anonymous.status_code == 401
    assert anonymous.headers[HEADER] == ""  # forget the token


def test_a_cookie_store_header_session_is_ended_by_revoke_all(tmp_path: Path) -> None:
    app = api(CookieStore())
    revocations = SQLiteStore(tmp_path / "revoked.sqlite3")
    track_devices(app, revocation_store=revocations)
    phone, tablet = Client(app), Client(app)
    phone_token, tablet_token = log_in(phone), log_in(tablet)
    assert send(tablet, "POST", "/revoke-all", tablet_token).text == "-1"
    assert send(phone, "GET", "/", phone_token).status_code == 401
    revocations.close()


def test_fresh_login_holds_for_header_sessions(store: Store, clock: Clock) -> None:
    client = Client(api(store))
    token = log_in(client)
    clock.advance(601)
    stale = send(client, "POST", "/revoke-all", token, headers={"Accept": "application/json"})
    assert stale.status_code == 401
    assert stale.json == {"error": "login_not_fresh", "message": "Log in again to see this page."}


def test_events_are_the_same_for_header_sessions(store: Store) -> None:
    app = api(store)
    events: list[SessionEvent] = []
    app.on_event(events.append)
    client = Client(app)
    token = log_in(client)
    send(client, "POST", "/logout", token)
    names = [event.name for event in events]
    assert EventName.LOGGED_IN in names
    assert EventName.LOGGED_OUT in names
    assert names[0] in (EventName.CREATED, EventName.LOGGED_IN)


# -- the test helpers ----------------------------------------------------------------


def test_the_test_helpers_read_and_write_a_header_clients_session(store: Store) -> None:
    client = HeaderClient(api(store))
    assert client.header == HEADER
    with session_transaction(client) as saved:
        saved["cart"] = ["fig"]
    assert client.token is not None
    assert client.get("/cart").text == "fig"
    client.post("/cart", data={"item": "kiwi"})
    assert read_session(client)["cart"] == ["fig", "kiwi"]
    client.post("/login", data={"user": "ada"})
    assert client.get("/").text == "ada"
    client.post("/logout")
    assert client.token is None
    assert read_session(client) == {}
    assert HeaderClient(client.application).get("/cart").text == ""  # another client, no session


def test_a_header_client_needs_a_middleware_with_a_header() -> None:
    client = HeaderClient(SessionMiddleware(text_app(view), secret_key=SECRET))
    with pytest.raises(LookupError, match="no session header"):
        client.get("/")
    plain = Client(api(LRUStore(), cookie_name=None))
    with pytest.raises(LookupError, match="use a HeaderClient"):
        read_session(plain)


# -- Flask and Django --------------------------------------------------------------------


def flask_api(store: Store, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.post("/login")
    def do_login() -> str:
        login(flask.request.form["user"])
        flask.session["via"] = "flask"
        return "welcome"

    @app.get("/")
    def whoami() -> str:
        user = current_user()
        return f"{user.user_id} {flask.session.get('via')}" if user else "anonymous"

    @app.post("/logout")
    def do_logout() -> str:
        logout()
        return "bye"

    app.wsgi_app = CsrfMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    init_app(app, store=store, header=HEADER, **options)
    return app


def test_flask_sessions_travel_in_the_header(store: Store) -> None:
    client = flask_api(store).test_client()
    response = client.post("/login", data={"user": "ada"}, headers={HEADER: ""})
    token = response.headers[HEADER]
    assert token
    assert "Set-Cookie" not in response.headers
    assert set(response.vary) >= {"Cookie", HEADER}
    assert response.headers["Cache-Control"] == "no-store"
    fresh = flask_api(store).test_client()  # no cookie jar to lean on
    assert fresh.get("/", headers={HEADER: token}).text == "ada flask"
    out = fresh.post("/logout", headers={HEADER: token})
    assert out.headers[HEADER] == ""
    fresh.set_cookie("session", token)
    assert fresh.get("/", headers={HEADER: token}).status_code == 400


def test_flask_without_a_cookie(store: Store) -> None:
    app = flask_api(store, cookie_name=None)
    client = HeaderClient(app)
    client.post("/login", data={"user": "ada"})
    assert client.token is not None
    assert client.get("/").text == "ada flask"
    assert client.get_cookie("session") is None
    assert read_session(client)["via"] == "flask"


@pytest.fixture(scope="module")
def django_user() -> None:
    migrate()
    from django.contrib.auth.models import User

    if not User.objects.filter(username="ada").exists():
        User.objects.create_user("ada", password="lovelace")


def django_views() -> list[Any]:
    from django.contrib.auth import authenticate
    from django.contrib.auth import login as django_login
    from django.contrib.auth import logout as django_logout
    from django.http import HttpRequest, HttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def do_login(request: HttpRequest) -> HttpResponse:
        user = authenticate(
            request, username=request.POST["username"], password=request.POST["password"]
        )
        assert user is not None
        django_login(request, user)
        return HttpResponse("ok")

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    @csrf_exempt
    def do_logout(request: HttpRequest) -> HttpResponse:
        django_logout(request)
        return HttpResponse("bye")

    return [path("login", do_login), path("whoami", whoami), path("logout", do_logout)]


@pytest.mark.usefixtures("django_user")
@pytest.mark.parametrize("cookie", [True, False], ids=["with-cookie", "header-only"])
def test_django_sets_the_header_on_its_own_response(store: Store, cookie: bool) -> None:
    settings: dict[str, Any] = {"store": store, "secret_key": SECRET, "header": HEADER}
    if not cookie:
        settings["cookie_name"] = None
    app = django_app(
        django_views(),
        [
            "wsgisession.contrib.django.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        WSGISESSION=settings,
    )
    client = Client(app)
    response = send(client, "POST", "/login", "", data={"username": "ada", "password": "lovelace"})
    token = response.headers[HEADER]
    assert token
    assert "Set-Cookie" not in response.headers
    assert HEADER in response.headers["Vary"]
    assert ("Cookie" in response.headers["Vary"]) is cookie
    assert send(client, "GET", "/whoami", token).text == "ada"
    out = send(client, "POST", "/logout", token)
    assert out.headers[HEADER] == ""
    if isinstance(store, ServerSessionStore):  # a cookie store's value lives on
        assert send(client, "GET", "/whoami", token).text == "anonymous"
    if cookie:
        client.set_cookie("sessionid", token)
        assert send(client, "GET", "/whoami", token).status_code == 400


# -- a real gunicorn, a plain http.client client ---------------------------------------

#: The gunicorn app: ``tests.header_app:app``, configured by WSGISESSION_* variables.
GUNICORN_APP = "tests.header_app:app"


class ApiClient:
    """What a mobile app or a script does: keep the token, send it, replace it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.token = ""

    def request(
        self, method: str, path: str, form: str | None = None, **headers: str
    ) -> tuple[int, str, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {HEADER: self.token, "User-Agent": "api-client/1.0", **headers}
            if form is not None:
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=form, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
            new = response.getheader(HEADER)
            if new is not None:
                self.token = new  # "" when the session ended
            return response.status, text, response
        finally:
            conn.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    env = {
        "WSGISESSION_SECRET_KEY": SECRET,
        "WSGISESSION_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3",
        "WSGISESSION_HEADER": HEADER,
        "WSGISESSION_TRACK_DEVICES": "true",
    }
    server = Gunicorn(GUNICORN_APP, tmp_path / "gunicorn.log", args=("--workers", "2"), env=env)
    try:
        server.wait_ready("/whoami")
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_an_api_client_logs_in_uses_lists_and_revokes_its_token_under_gunicorn(
    gunicorn: Gunicorn,
) -> None:
    client = ApiClient(gunicorn.port)
    status, text, response = client.request("POST", "/login", "user=ada")
    assert (status, text) == (200, "welcome ada")
    assert client.token
    assert response.getheader("Set-Cookie") is None
    assert HEADER in (response.getheader("Vary") or "")
    assert client.request("GET", "/whoami")[1] == "ada"
    status, text, _ = client.request("GET", "/devices")
    devices = json.loads(text)
    (mine,) = [device for device in devices if device["current"]]
    assert mine["user_agent"] == "api-client/1.0"
    # A POST without a CSRF token: the header is no ambient credential.
    status, text, response = client.request("POST", "/revoke", f"handle={mine['handle']}")
    assert (status, text) == (200, "True")
    assert client.token == ""
    assert client.request("GET", "/whoami")[:2] == (401, "anonymous")
    # A browser's cookie session on the same server is still CSRF-checked.
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=30)
    conn.request("GET", "/token")
    page = conn.getresponse()
    cookie = (page.getheader("Set-Cookie") or "").split(";")[0]
    page.read()
    conn.request(
        "POST",
        "/login",
        body="user=bob",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    refused = conn.getresponse()
    assert refused.status == 403
    refused.read()
    conn.close()
    assert "Traceback" not in gunicorn.output()
