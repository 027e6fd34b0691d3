"""wsgisession.contrib.django through Django's own test client, as a Django team tests.

Every test runs on every store, with our middleware and engine configured the way
the README says (``MIDDLEWARE``, ``SESSION_ENGINE``, ``WSGISESSION``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from wsgisession import ClientSessionStore, ServerSessionStore
from wsgisession.context import current_environ
from wsgisession.errors import ConfigurationError

from .conftest import SECRET
from .djangoapp import _UrlConf, configure, django_app, migrate
from .test_django import FlakyStore

ENGINE = "wsgisession.contrib.django.engine"
MIDDLEWARE = [
    "wsgisession.contrib.django.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def urls() -> _UrlConf:
    """Views a project has: who am I, a session value, "remember me", messages, admin."""
    from django.contrib import admin, messages
    from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
    from django.urls import path

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")

    def read(request: HttpRequest) -> HttpResponse:
        return HttpResponse(repr(request.session.get(request.GET["key"])))

    def remember(request: HttpRequest) -> HttpResponse:
        request.session["seen"] = True
        request.session.set_expiry(0 if request.GET.get("remember") != "1" else 3600)
        return HttpResponse("ok")

    def expiry(request: HttpRequest) -> HttpResponse:
        s = request.session
        return HttpResponse(f"{s.get_expire_at_browser_close()} {s.get_expiry_age()}")

    def save(request: HttpRequest) -> HttpResponse:
        messages.success(request, "Saved.")
        messages.warning(request, "Check the totals.")
        return HttpResponseRedirect("/shown")

    def shown(request: HttpRequest) -> HttpResponse:
        return HttpResponse(" | ".join(str(m) for m in messages.get_messages(request)))

    return _UrlConf(
        [
            path("whoami", whoami),
            path("read", read),
            path("remember", remember),
            path("expiry", expiry),
            path("save", save),
            path("shown", shown),
            path("admin/", admin.site.urls),
        ]
    )


@pytest.fixture(scope="module")
def users() -> None:
    migrate()
    from django.contrib.auth.models import User

    if not User.objects.filter(username="grace").exists():
        User.objects.create_user("grace", password="hopper")
        User.objects.create_superuser("root", password="admin-password")


@pytest.fixture
def client(store: ClientSessionStore | ServerSessionStore, users: None) -> Iterator[Any]:
    """Django's test Client on a project using our middleware, engine and *store*."""
    configure()
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(
        MIDDLEWARE=MIDDLEWARE,
        SESSION_ENGINE=ENGINE,
        ROOT_URLCONF=urls(),
        WSGISESSION={"store": store, "secret_key": SECRET},
    ):
        yield Client()


def test_client_login_keeps_the_user_logged_in(client: Any) -> None:
    assert client.get("/whoami").text == "anonymous"
    assert client.login(username="grace", password="hopper") is True
    assert client.get("/whoami").text == "grace"
    assert client.get("/whoami").text == "grace", "the session lasts"
    assert client.login(username="grace", password="wrong") is False


def test_force_login_and_logout_ends_the_session(
    client: Any, store: ClientSessionStore | ServerSessionStore
) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    client.force_login(User.objects.get(username="grace"))
    assert client.get("/whoami").text == "grace"
    logged_in = client.cookies["sessionid"].value
    client.logout()
    assert client.get("/whoami").text == "anonymous"
    if isinstance(store, ClientSessionStore):
        return  # a cookie session cannot be revoked (README, "Choosing a store")
    replay = Client()
    replay.cookies["sessionid"] = logged_in
    assert replay.get("/whoami").text == "anonymous", "the session is over, not just forgotten"


def test_client_session_edits_are_seen_by_the_next_request(
    client: Any, store: ClientSessionStore | ServerSessionStore
) -> None:
    session = client.session
    session["plan"] = "pro"
    session.save()
    if isinstance(store, ClientSessionStore):
        # The data is the cookie: as with Django's signed_cookies engine, the test
        # client must be given the new value (README, "Differences from Django").
        client.cookies["sessionid"] = session.session_key
    assert client.get("/read?key=plan").text == "'pro'"
    assert client.session["plan"] == "pro", "client.session reads the same session"


def test_set_expiry_zero_gives_a_browser_session_cookie(client: Any) -> None:
    response = client.get("/remember")
    cookie = response.cookies["sessionid"]
    assert cookie.value
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""
    assert client.get("/expiry").text == "True 1209600", "kept with the session"
    assert client.get("/read?key=seen").text == "True"


def test_set_expiry_seconds_sets_the_cookie_lifetime(client: Any) -> None:
    response = client.get("/remember?remember=1")
    cookie = response.cookies["sessionid"]
    assert cookie["max-age"] == 3600
    assert cookie["expires"]
    assert client.get("/expiry").text == "False 3600"


def test_messages_survive_a_redirect_once(client: Any) -> None:
    response = client.get("/save", follow=True)
    assert response.redirect_chain == [("/shown", 302)]
    assert response.text == "Saved. | Check the totals."
    assert client.get("/shown").text == "", "a message is shown once"


def test_admin_login_works(client: Any) -> None:
    assert client.get("/admin/").status_code == 302, "the admin wants a login"
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "admin-password", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "Site administration" in index.text


def test_the_test_client_and_a_request_share_one_memory_store() -> None:
    configure()
    from django.test import Client
    from django.test.utils import override_settings

    migrate()
    from django.contrib.auth.models import User

    User.objects.get_or_create(username="memo")
    with override_settings(
        MIDDLEWARE=MIDDLEWARE,
        SESSION_ENGINE=ENGINE,
        ROOT_URLCONF=urls(),
        WSGISESSION={"store": "memory://", "secret_key": SECRET},
    ):
        client = Client()
        client.force_login(User.objects.get(username="memo"))
        assert client.get("/whoami").text == "memo"


def test_clearsessions_purges_expired_sqlite_sessions(
    client: Any, store: ClientSessionStore | ServerSessionStore, clock: Any
) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test.utils import modify_settings

    from wsgisession import SQLiteStore

    from .conftest import record_count

    client.force_login(User.objects.get(username="grace"))
    # The command comes with django.contrib.sessions (its table stays unused).
    with modify_settings(INSTALLED_APPS={"append": "django.contrib.sessions"}):
        call_command("clearsessions")
        assert client.get("/whoami").text == "grace", "a live session is kept"
        if isinstance(store, SQLiteStore):
            assert record_count(store) >= 1
            clock.advance(15 * 86400)
            call_command("clearsessions")
            assert record_count(store) == 0, "clearsessions ran the store's gc"


# -- WSGISESSION["error_page"]: the site's own page for a store outage -------------

#: What outage_page() saw: the refusal's status, and whether a session was current.
PAGES: list[tuple[int, bool]] = []


def outage_page(refusal: HTTPException, environ: dict[str, Any]) -> Response:
    """The site's 503 page (``WSGISESSION["error_page"]`` of the tests below)."""
    try:
        current_environ()
    except RuntimeError:
        PAGES.append((refusal.code or 0, False))
    else:
        PAGES.append((refusal.code or 0, True))
    return Response(
        f"<h1>{refusal.code}</h1><p>Back in a moment.</p>",
        status=refusal.code,
        mimetype="text/html",
    )


class CountingStore(FlakyStore):
    """A FlakyStore that counts the saves asked of it, failed ones included."""

    saves = 0

    def save(self, *args: Any, **kwargs: Any) -> bool:
        self.saves += 1
        return super().save(*args, **kwargs)


@contextmanager
def outage_project(page: object) -> Iterator[CountingStore]:
    """Our middleware on a store that can go down, with *page* as the error page."""
    configure()
    from django.test.utils import override_settings

    store = CountingStore()
    PAGES.clear()
    with override_settings(
        MIDDLEWARE=MIDDLEWARE,
        SESSION_ENGINE=ENGINE,
        ROOT_URLCONF=urls(),
        WSGISESSION={"store": store, "secret_key": SECRET, "error_page": page},
    ):
        yield store


@pytest.mark.usefixtures("users")
def test_the_error_page_setting_answers_an_outage_in_a_view() -> None:
    from django.test import Client

    with outage_project("tests.test_django_client.outage_page") as store:
        client = Client()
        client.get("/remember")
        store.down = True
        page = client.get("/read?key=seen", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert page["Content-Type"].startswith("text/html")
        assert "<h1>503</h1>" in page.text
        assert page["Retry-After"] == "5", "kept from the default answer"
        assert page["Cache-Control"] == "no-store"
        assert "sessionid" not in page.cookies, "the client keeps its session"
        assert PAGES == [(503, False)], "the page ran with no current session"
        api = client.get("/read?key=seen", headers={"Accept": "application/json"})
        assert api.status_code == 503
        assert api.json()["error"] == "store_unavailable", "JSON clients get JSON"
        assert api["Retry-After"] == "5"
        assert len(PAGES) == 1, "the page is for people"
        store.down = False
        assert client.get("/read?key=seen").text == "True", "the session survived"


@pytest.mark.usefixtures("users")
def test_the_error_page_setting_answers_a_failed_save_and_saves_nothing() -> None:
    from django.test import Client

    with outage_project(outage_page) as store:
        store.down = True
        page = Client().get("/remember", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert "<h1>503</h1>" in page.text
        assert page["Retry-After"] == "5"
        assert "sessionid" not in page.cookies
        assert "Set-Cookie" not in page
        assert PAGES == [(503, False)]
        assert store.saves == 1, "no second try after the outage"
        store.down = False
        assert len(store) == 0


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("tests.test_django_client.no_such_page", "has no 'no_such_page'"),
        ("outage_page", "could not be imported"),
        ("tests.test_django_client.ENGINE", "not callable"),
        (42, "not callable"),
    ],
)
def test_a_bad_error_page_setting_fails_at_start_up(page: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as failed:
        django_app(
            [],
            ["wsgisession.contrib.django.SessionMiddleware"],
            WSGISESSION={"secret_key": SECRET, "error_page": page},
        )
    assert str(failed.value).startswith("error_page "), "the same message as from_config's"
    assert "dotted path" in str(failed.value), "the message says how to fix it"
