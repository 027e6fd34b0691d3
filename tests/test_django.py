"""wsgisession.contrib.django: a real Django project with django.contrib.auth."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from wsgisession import (
    ClientSessionStore,
    CsrfMiddleware,
    LRUStore,
    ServerSessionStore,
    csrf_token,
    flash,
    get_flashed_messages,
    login_required,
    param,
    session,
)
from wsgisession.contrib.django import DjangoSession, to_django_response, wrap
from wsgisession.errors import NotLoggedIn, StoreUnavailable

from .conftest import SECRET, Clock, record_count
from .djangoapp import django_app, migrate

MIDDLEWARE = [
    "wsgisession.contrib.django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def views() -> list[Any]:
    """The project's URL patterns: Django auth login/logout and session pages."""
    from django.contrib.auth import authenticate, login, logout
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def do_login(request: HttpRequest) -> HttpResponse:
        user = authenticate(
            request, username=request.POST["username"], password=request.POST["password"]
        )
        if user is None:
            return HttpResponse("wrong password", status=403)
        login(request, user)
        return HttpResponse("ok")

    def do_logout(request: HttpRequest) -> HttpResponse:
        logout(request)
        return HttpResponse("bye")

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    def visit(request: HttpRequest) -> HttpResponse:
        request.session["visits"] = request.session.get("visits", 0) + 1
        request.session.setdefault("cart", []).append("x")
        request.session.modified = True
        return HttpResponse(str(request.session["visits"]))

    def number(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(param("n", int) * 2))

    @login_required
    def private(request: HttpRequest) -> HttpResponse:
        return HttpResponse("private")

    def api(request: HttpRequest) -> HttpResponse:
        s = request.session
        assert isinstance(s, DjangoSession)
        assert s.session is session._get_current_object()  # type: ignore[attr-defined]
        before = s.session_key
        s.cycle_key()
        s["k"] = "v"
        s.set_test_cookie()
        s.set_expiry(None)
        s.set_expiry(300)
        flash("hello")
        return HttpResponse(
            f"{before} {s.has_key('k')} {s.test_cookie_worked()} {s.get_expiry_age()}"
            f" {s.get_expire_at_browser_close()} {s.get_session_cookie_age()} {s.is_empty()}"
        )

    def api_next(request: HttpRequest) -> HttpResponse:
        s = request.session
        worked = s.test_cookie_worked()
        s.delete_test_cookie()
        messages = [str(m) for m in get_flashed_messages()]
        return HttpResponse(f"{worked} {s.session_key is not None} {s.accessed} {messages}")

    def token(request: HttpRequest) -> HttpResponse:
        return HttpResponse(csrf_token())

    return [
        path("login", do_login),
        path("logout", do_logout),
        path("whoami", whoami),
        path("visit", visit),
        path("number", number),
        path("private", private),
        path("api", api),
        path("api-next", api_next),
        path("token", token),
    ]


@pytest.fixture(scope="module")
def user() -> None:
    migrate()
    from django.contrib.auth.models import User

    if not User.objects.filter(username="ada").exists():
        User.objects.create_user("ada", password="lovelace")


def project(store: ClientSessionStore | ServerSessionStore, **wsgisession: Any) -> Client:
    """The Django project with our middleware alone (the drop-in way)."""
    app = django_app(
        views(), MIDDLEWARE, WSGISESSION={"store": store, "secret_key": SECRET, **wsgisession}
    )
    return Client(app)


def log_in(client: Client) -> str:
    return client.post("/login", data={"username": "ada", "password": "lovelace"}).text


@pytest.mark.usefixtures("user")
def test_auth_login_cycles_the_session_and_logout_ends_it(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = project(store)
    assert client.get("/visit").text == "1"
    before = client.get_cookie("sessionid")
    assert before is not None
    assert client.get("/whoami").text == "anonymous"
    assert log_in(client) == "ok"
    after = client.get_cookie("sessionid")
    assert after is not None
    assert after.value != before.value, "login() called cycle_key(): a new id"
    assert client.get("/whoami").text == "ada"
    assert client.get("/visit").text == "2", "the data moved with the session"

    replay = project(store)
    replay.set_cookie("sessionid", before.value)
    assert replay.get("/whoami").text == "anonymous", "the pre-login cookie is not logged in"

    assert client.get("/logout").text == "bye"
    assert client.get_cookie("sessionid") is None
    assert client.get("/whoami").text == "anonymous"
    if isinstance(store, ServerSessionStore):
        assert record_count(store) == 0, "flush() deleted the stored session"
        stolen = project(store)
        stolen.set_cookie("sessionid", after.value)
        assert stolen.get("/whoami").text == "anonymous"


@pytest.mark.usefixtures("user")
def test_a_wrong_password_leaves_no_session(store: ClientSessionStore | ServerSessionStore) -> None:
    client = project(store)
    response = client.post("/login", data={"username": "ada", "password": "nope"})
    assert response.status_code == 403
    assert client.get_cookie("sessionid") is None
    assert "Set-Cookie" not in response.headers


def test_a_request_that_never_touches_the_session_sets_nothing(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    response = project(store).get("/number?n=2")
    assert response.text == "4"
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_the_session_varies_on_cookie(store: ClientSessionStore | ServerSessionStore) -> None:
    response = project(store).get("/visit")
    assert "Cookie" in response.headers["Vary"]
    assert response.headers["Set-Cookie"].strip().startswith("sessionid=")


def test_werkzeug_errors_from_views_are_responses_not_500s(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = project(store)
    bad = client.get("/number?n=lots")
    assert bad.status_code == 400
    assert "n" in bad.text
    refused = client.get("/private", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert refused.mimetype == "application/json"


def test_the_session_api_django_code_uses(store: ClientSessionStore | ServerSessionStore) -> None:
    client = project(store, max_age=600)
    first = client.get("/api").text.split()
    assert first[0] == "None"
    assert first[1:] == ["True", "True", "300", "False", "600", "False"]
    assert client.get("/api-next").text == "True True True ['hello']"


def test_wrap_puts_the_session_at_the_wsgi_layer(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    from django.test.utils import override_settings

    with override_settings(WSGISESSION={"cookie_name": "sid"}):
        app = wrap(CsrfMiddleware(django_app(views(), MIDDLEWARE)), store=store, secret_key=SECRET)
    client = Client(app)
    assert app.cookie.name == "sid"
    assert client.post("/visit").status_code == 403, "CsrfMiddleware runs inside wrap()"
    token = client.get("/token").text
    assert client.post("/visit", data={"csrf_token": token}).text == "1"
    assert client.get("/visit").text == "2"
    assert client.get("/number?n=x").status_code == 400


def test_the_secret_key_defaults_to_djangos() -> None:
    from django.conf import settings

    from wsgisession import CookieStore

    client = Client(django_app(views(), MIDDLEWARE, WSGISESSION={"store": CookieStore()}))
    client.get("/visit")
    assert client.get("/visit").text == "2"
    same_key = Client(
        django_app(
            views(),
            MIDDLEWARE,
            WSGISESSION={"store": CookieStore(), "secret_key": settings.SECRET_KEY},
        )
    )
    cookie = client.get_cookie("sessionid")
    assert cookie is not None
    same_key.set_cookie("sessionid", cookie.value)
    assert same_key.get("/visit").text == "3"


def test_to_django_response_keeps_status_headers_and_cookies() -> None:
    from werkzeug.wrappers import Response

    response = Response("hi", status=201, headers={"X-A": "1"})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    converted = to_django_response(response)
    assert converted.status_code == 201
    assert converted["X-A"] == "1"
    assert converted.content == b"hi"
    cookies = {converted["Set-Cookie"].split("=")[0], *converted.cookies}
    assert cookies == {"a", "b"}
    refusal = to_django_response(NotLoggedIn())
    assert refusal.status_code == 401


class FlakyStore(LRUStore):
    """An LRUStore that can be switched off, as a Redis outage would."""

    down = False

    def load(self, key: str) -> dict[str, bytes]:
        if self.down:
            raise StoreUnavailable("the test store is down")
        return super().load(key)

    def save(self, *args: Any, **kwargs: Any) -> bool:
        if self.down:
            raise StoreUnavailable("the test store is down")
        return super().save(*args, **kwargs)


def test_a_store_outage_is_a_503_not_a_500(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    client = project(store)
    client.get("/visit")
    store.down = True
    with caplog.at_level("CRITICAL", logger="wsgisession"):
        loading = client.get("/visit")
    assert loading.status_code == 503
    assert "Retry-After" in loading.headers
    fresh = project(store)
    with caplog.at_level("CRITICAL", logger="wsgisession"):
        saving = fresh.get("/visit")
    assert saving.status_code == 503
    assert "Set-Cookie" not in saving.headers


def test_wraps_error_page_answers_an_outage_in_a_django_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from werkzeug.wrappers import Response

    def page(refusal: Any, environ: Any) -> Response:
        return Response("<p>Back soon.</p>", status=refusal.code, mimetype="text/html")

    store = FlakyStore()
    client = Client(
        wrap(django_app(views(), MIDDLEWARE), store=store, secret_key=SECRET, error_page=page)
    )
    client.get("/visit")
    store.down = True
    with caplog.at_level("CRITICAL", logger="wsgisession"):
        answer = client.get("/visit", headers={"Accept": "text/html"})
        api = client.get("/visit", headers={"Accept": "application/json"})
    assert (answer.status_code, answer.text) == (503, "<p>Back soon.</p>")
    assert answer.headers["Retry-After"] == "5"
    assert "Set-Cookie" not in answer.headers
    assert (api.status_code, api.json["error"]) == (503, "store_unavailable")
    store.down = False
    assert client.get("/visit").text == "2", "the session survived the outage"


# -- Django fidelity ------------------------------------------------------------


@pytest.mark.usefixtures("user")
def test_a_csrf_token_from_before_django_login_stops_validating(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    app = wrap(CsrfMiddleware(django_app(views(), MIDDLEWARE)), store=store, secret_key=SECRET)
    client = Client(app)
    before = client.get("/token").text
    assert client.post("/visit", data={"csrf_token": before}).status_code == 200
    login = client.post(
        "/login", data={"username": "ada", "password": "lovelace", "csrf_token": before}
    )
    assert login.text == "ok", "django.contrib.auth.login() ran (it calls cycle_key())"
    assert client.post("/visit", data={"csrf_token": before}).status_code == 403
    after = client.get("/token").text
    assert client.post("/visit", data={"csrf_token": after}).status_code == 200


#: Django's SECRET_KEY after a rotation in the tests below (the old one becomes a
#: SECRET_KEY_FALLBACKS entry).
ROTATED_KEY = "django-tests-rotated-" + "r" * 40


def logged_in_request(session_key: str | None) -> Any:
    """A Django request whose session is the one *session_key* names, as Django's tests build it."""
    from django.http import HttpRequest

    from wsgisession.contrib.django.engine import SessionStore

    request = HttpRequest()
    request.session = SessionStore(session_key)
    return request


@contextlib.contextmanager
def override_wsgisession(store: ClientSessionStore | ServerSessionStore) -> Iterator[None]:
    """``WSGISESSION`` as :func:`project` sets it, for the session engine."""
    from django.test.utils import override_settings

    with override_settings(WSGISESSION={"store": store, "secret_key": SECRET}):
        yield


@pytest.mark.usefixtures("user")
def test_get_user_upgrades_an_auth_hash_made_with_a_fallback_key_under_a_new_session_key(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    # Django's auth_tests.test_basic.TestGetUser.test_get_user_fallback_secret, on our
    # engine, then carried on: the key read right after get_user() (before any save)
    # must name the session with the upgraded hash. On the cookie store the key is the
    # signed data, and it named the data as cycle_key() had signed it: the old hash.
    from django.conf import settings
    from django.contrib.auth import get_user
    from django.test.utils import override_settings

    old_key = settings.SECRET_KEY
    with override_wsgisession(store):
        client = project(store)
        assert log_in(client) == "ok"
        cookie = client.get_cookie("sessionid")
        assert cookie is not None
        request = logged_in_request(cookie.value)
        before = request.session.session_key
        with override_settings(SECRET_KEY=ROTATED_KEY, SECRET_KEY_FALLBACKS=[old_key]):
            assert get_user(request).get_username() == "ada", "the fallback key verifies"
            key = request.session.session_key
            assert key != before, "get_user() cycled the key"
            request.session.save()  # what the response does
            assert request.session.session_key == key, "the key read before the save names it"
        with override_settings(SECRET_KEY=ROTATED_KEY):  # the fallback is retired
            assert get_user(logged_in_request(key)).get_username() == "ada"
            assert get_user(logged_in_request(before)).is_anonymous


@pytest.mark.usefixtures("user")
def test_a_session_key_read_in_user_logged_in_names_the_logged_in_session(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    # What apps that list a user's sessions do: login() cycles the key, then writes
    # the user into the session and sends user_logged_in.
    from django.contrib.auth import get_user
    from django.contrib.auth.signals import user_logged_in

    recorded: list[str | None] = []

    def record(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        recorded.append(request.session.session_key)

    user_logged_in.connect(record)
    try:
        assert log_in(project(store)) == "ok"
    finally:
        user_logged_in.disconnect(record)
    with override_wsgisession(store):
        assert get_user(logged_in_request(recorded[0])).get_username() == "ada"


@pytest.mark.usefixtures("user")
def test_rotating_djangos_secret_key_with_a_fallback_keeps_users_logged_in(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    # The project signs with Django's SECRET_KEY (the default): the rotation moves our
    # signatures and Django's auth hash together.
    from django.conf import settings
    from django.test.utils import override_settings

    old_key = settings.SECRET_KEY
    with override_settings(WSGISESSION={"store": store}):
        app = django_app(views(), MIDDLEWARE)
        client = Client(app)
        assert log_in(client) == "ok"
        before = client.get_cookie("sessionid")
        assert before is not None
        with override_settings(SECRET_KEY=ROTATED_KEY, SECRET_KEY_FALLBACKS=[old_key]):
            assert client.get("/whoami").text == "ada"
        upgraded = client.get_cookie("sessionid")
        assert upgraded is not None
        assert upgraded.value != before.value, "a new cookie, with the new hash and signature"
        with override_settings(SECRET_KEY=ROTATED_KEY):
            assert client.get("/whoami").text == "ada"
            replay = Client(app)
            replay.set_cookie("sessionid", before.value)
            assert replay.get("/whoami").text == "anonymous", "the old key verifies no more"


def session_views() -> list[Any]:
    """Views using Django's session API the way apps do."""
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from wsgisession.contrib.django.engine import SessionStore

    def keys(request: HttpRequest) -> HttpResponse:
        s = request.session
        s["a"] = 1
        s.save()
        first = s.session_key
        s.cycle_key()
        second = s.session_key
        assert first is not None
        assert second not in (None, first)
        assert SessionStore(first).is_empty(), "the old key is dead at once"
        assert SessionStore(second)["a"] == 1
        assert s.session_key == second
        return HttpResponse(second)

    def fail(request: HttpRequest) -> HttpResponse:
        request.session["lost"] = True
        return HttpResponse("boom", status=500)

    def touch(request: HttpRequest) -> HttpResponse:
        request.session["seen"] = True
        return HttpResponse("ok")

    def nothing(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(request.session.get("seen")))

    return [path("keys", keys), path("fail", fail), path("touch", touch), path("nothing", nothing)]


def test_save_gives_the_key_at_once_and_cycle_key_changes_it_at_once(
    server_store: ServerSessionStore,
) -> None:
    from django.test.utils import override_settings

    from wsgisession.contrib.django.engine import SessionStore

    wsgisession = {"store": server_store, "secret_key": SECRET}
    with override_settings(WSGISESSION=wsgisession):
        client = Client(django_app(session_views(), MIDDLEWARE))
        response = client.get("/keys")
        cookie = client.get_cookie("sessionid")
        assert cookie is not None
        assert SessionStore(cookie.value).session_key == response.text, (
            "the cookie opens the session of the final session_key"
        )
        assert record_count(server_store) == 1


def test_a_5xx_response_saves_nothing(store: ClientSessionStore | ServerSessionStore) -> None:
    client = Client(django_app(session_views(), MIDDLEWARE, WSGISESSION={"store": store}))
    response = client.get("/fail")
    assert response.status_code == 500
    assert "Set-Cookie" not in response.headers
    assert client.get_cookie("sessionid") is None


def test_django_session_settings_are_honoured(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = Client(
        django_app(
            session_views(),
            MIDDLEWARE,
            WSGISESSION={"store": store},
            SESSION_COOKIE_NAME="sid",
            SESSION_COOKIE_AGE=600,
            SESSION_COOKIE_DOMAIN="example.test",
            SESSION_COOKIE_PATH="/app",
            SESSION_COOKIE_HTTPONLY=False,
            SESSION_COOKIE_SAMESITE="Strict",
        )
    )
    header = client.get("/touch", base_url="http://example.test").headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert header.strip().startswith("sid=")
    assert "Max-Age=600" in header
    assert "Domain=example.test" in header
    assert "Path=/app" in header
    assert "SameSite=Strict" in header
    assert "httponly" not in attributes
    assert "secure" not in attributes, "plain HTTP"


def test_wsgisession_settings_win_over_djangos(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = Client(
        django_app(
            session_views(),
            MIDDLEWARE,
            WSGISESSION={"store": store, "cookie_name": "mine", "max_age": 90},
            SESSION_COOKIE_NAME="theirs",
            SESSION_COOKIE_AGE=600,
        )
    )
    header = client.get("/touch").headers["Set-Cookie"]
    assert header.strip().startswith("mine=")
    assert "Max-Age=90" in header


def test_browser_session_cookies_and_renewal_on_every_request() -> None:
    from django.test.utils import override_settings

    from wsgisession import LRUStore

    with override_settings(
        WSGISESSION={"store": LRUStore(), "secret_key": SECRET},
        SESSION_EXPIRE_AT_BROWSER_CLOSE=True,
        SESSION_SAVE_EVERY_REQUEST=True,
    ):
        client = Client(django_app(session_views(), MIDDLEWARE))
        first = client.get("/touch").headers["Set-Cookie"]
        assert "Max-Age" not in first
        assert "expires" not in first
        renewed = client.get("/nothing")
        assert renewed.text == "True"
        assert "Set-Cookie" in renewed.headers, "SESSION_SAVE_EVERY_REQUEST re-issues it"


def test_the_cookie_is_secure_behind_a_tls_proxy(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    from django.test.utils import override_settings

    with override_settings(
        WSGISESSION={"store": store, "secret_key": SECRET},
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    ):
        client = Client(django_app(session_views(), MIDDLEWARE))
        proxied = client.get("/touch", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in proxied.headers["Set-Cookie"]
        plain = Client(django_app(session_views(), MIDDLEWARE))
        assert "Secure" not in plain.get("/touch").headers["Set-Cookie"]


def test_request_factory_with_process_request_and_process_response() -> None:
    from django.http import HttpResponse
    from django.test import RequestFactory

    from wsgisession.contrib.django import SessionMiddleware

    request = RequestFactory().get("/")
    middleware = SessionMiddleware(lambda request: HttpResponse("unused"))
    middleware.process_request(request)
    request.session["cart"] = ["tea"]
    response = middleware.process_response(request, HttpResponse("ok"))
    value = response.cookies["sessionid"].value
    assert value == request.session.session_key
    follow_up = RequestFactory().get("/")
    follow_up.COOKIES["sessionid"] = value
    middleware.process_request(follow_up)
    assert follow_up.session["cart"] == ["tea"]
    middleware.process_response(follow_up, HttpResponse("ok"))


def test_manage_py_check_is_clean_with_the_admin_installed() -> None:
    from django.core import checks
    from django.test.utils import override_settings

    admin_middleware = [
        *MIDDLEWARE,
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    with override_settings(MIDDLEWARE=admin_middleware):
        assert [message.id for message in checks.run_checks()] == []
    with override_settings(
        MIDDLEWARE=admin_middleware, SESSION_ENGINE="django.contrib.sessions.backends.db"
    ):
        assert [message.id for message in checks.run_checks()] == ["wsgisession.W001"]


def key_views(recorded: dict[str, str]) -> list[Any]:
    """Pages of an app that lists a user's sessions by key, as django-allauth does."""
    from django.contrib.auth import authenticate, login
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from wsgisession.contrib.django.engine import SessionStore

    def do_login(request: HttpRequest) -> HttpResponse:
        user = authenticate(request, username="ada", password="lovelace")
        login(request, user)
        request.session.save()
        recorded[request.GET["device"]] = request.session.session_key
        return HttpResponse("ok")

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    def my_key(request: HttpRequest) -> HttpResponse:
        return HttpResponse(request.session.session_key)

    def end_others(request: HttpRequest) -> HttpResponse:
        mine = request.session.session_key
        for key in recorded.values():
            if key != mine:
                SessionStore(key).delete()
        return HttpResponse("ended")

    return [
        path("login", do_login),
        path("whoami", whoami),
        path("key", my_key),
        path("end-others", end_others),
    ]


@contextlib.contextmanager
def key_site(store: ServerSessionStore) -> Iterator[tuple[Any, dict[str, str]]]:
    """The key_views app on *store* (max_age one hour), and the keys it records."""
    from django.test.utils import override_settings

    recorded: dict[str, str] = {}
    wsgisession = {"store": store, "secret_key": SECRET, "max_age": 3600}
    with override_settings(WSGISESSION=wsgisession):
        yield django_app(key_views(recorded), MIDDLEWARE), recorded


@pytest.mark.usefixtures("user")
def test_a_session_key_recorded_at_login_names_the_session_for_its_whole_life(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    from wsgisession.contrib.django.engine import SessionStore

    with key_site(server_store) as (app, recorded):
        laptop = Client(app)
        assert laptop.get("/login?device=laptop").text == "ok"
        key = recorded["laptop"]
        first_cookie = laptop.get_cookie("sessionid")
        assert first_cookie is not None
        # Two hours of use, a request every twenty minutes: the cookie is re-signed as
        # it renews, and the recorded key is now older than max_age.
        for _ in range(6):
            clock.advance(1200)
            assert laptop.get("/whoami").text == "ada"
        cookie = laptop.get_cookie("sessionid")
        assert cookie is not None
        assert cookie.value != first_cookie.value, "the cookie was renewed"
        assert laptop.get("/key").text == key, "the key stayed the same"
        assert SessionStore().exists(key), "the store, not the key's age, answers"
        SessionStore().delete(key)
        assert laptop.get("/whoami").text == "anonymous", "deleting the key ended the session"


@pytest.mark.usefixtures("user")
def test_ending_my_other_sessions_by_key_keeps_the_current_one(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    with key_site(server_store) as (app, _):
        laptop, phone = Client(app), Client(app)
        assert laptop.get("/login?device=laptop").text == "ok"
        assert phone.get("/login?device=phone").text == "ok"
        clock.advance(1800)  # past refresh_interval: the next request renews the cookie
        assert laptop.get("/whoami").text == "ada"
        assert laptop.get("/end-others").text == "ended"
        assert laptop.get("/whoami").text == "ada", "the current session survives"
        assert phone.get("/whoami").text == "anonymous", "the other session ended"


def test_a_request_serializes_each_changed_value_once(
    server_store: ServerSessionStore, count_dumps: Callable[[], list[object]]
) -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def add(request: HttpRequest) -> HttpResponse:
        cart = request.session.get("cart")
        if cart is None:
            request.session["cart"] = cart = []
        cart.append("x")  # changed in place, found by content
        return HttpResponse(str(len(cart)))

    app = django_app(
        [path("add", add)], MIDDLEWARE, WSGISESSION={"store": server_store, "secret_key": SECRET}
    )
    client = Client(app)
    assert client.get("/add").text == "1"
    calls = count_dumps()
    assert client.get("/add").text == "2"
    assert calls == [["x", "x"]], "the changed value is serialized once, by the save"
