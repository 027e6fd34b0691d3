"""Django's ``set_expiry`` with lifetimes past what browsers keep (issue 25, item 9).

Django accepts any ``int``, ``datetime`` or ``timedelta``; a view that passes an
absurd one must get a session that lasts the 400 days browsers allow, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.test import Client

from wsgisession import ClientSessionStore, ServerSessionStore
from wsgisession.cookies import MAX_COOKIE_AGE

from .conftest import SECRET
from .djangoapp import django_app

MIDDLEWARE = ["wsgisession.contrib.django.SessionMiddleware"]

#: What a "remember me" view may hand to set_expiry, by the name the test uses.
LIFETIMES: dict[str, Any] = {
    "forever": 10**12,
    "until-year-9999": datetime(9999, 12, 31, tzinfo=UTC),
    "longest-timedelta": timedelta.max,
    "a-million-days": timedelta(days=10**6),
}
#: Lifetimes that are already over: the session ends, quietly.
OVER: dict[str, Any] = {
    "long-ago": -(10**12),
    "before-year-1": timedelta.min,
    "year-1": datetime(1, 1, 1, tzinfo=UTC),
}


def project(store: ClientSessionStore | ServerSessionStore, **settings: Any) -> Client:
    """A Django project whose /login view calls set_expiry with ``?for=``."""
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def login(request: HttpRequest) -> HttpResponse:
        request.session["user"] = "ada"
        wanted = request.GET["for"]
        request.session.set_expiry(LIFETIMES.get(wanted, OVER.get(wanted)))
        return expiry(request)

    def expiry(request: HttpRequest) -> HttpResponse:
        s = request.session
        return HttpResponse(
            f"{s.get('user')} {s.get_expiry_age()} {s.get_expiry_date().year}"
            f" {s.get_expire_at_browser_close()}"
        )

    app = django_app(
        [path("login", login), path("expiry", expiry)],
        MIDDLEWARE,
        WSGISESSION={"store": store, "secret_key": SECRET},
        **settings,
    )
    return Client(app)


@pytest.mark.parametrize("wanted", list(LIFETIMES))
def test_set_expiry_past_400_days_keeps_the_session_for_400_days(
    store: ClientSessionStore | ServerSessionStore, wanted: str
) -> None:
    client = project(store)
    response = client.get(f"/login?for={wanted}")
    assert response.status_code == 200
    assert response.text.split() == [
        "ada",
        str(MAX_COOKIE_AGE),
        str((datetime.now(UTC) + timedelta(seconds=MAX_COOKIE_AGE)).year),
        "False",
    ]
    cookie = response.headers["Set-Cookie"]
    assert f"Max-Age={MAX_COOKIE_AGE}" in cookie
    assert client.get("/expiry").text.startswith(f"ada {MAX_COOKIE_AGE} ")


@pytest.mark.parametrize("wanted", list(OVER))
def test_set_expiry_long_past_ends_the_session_without_an_error(
    store: ClientSessionStore | ServerSessionStore, wanted: str
) -> None:
    client = project(store)
    assert client.get(f"/login?for={wanted}").status_code == 200
    assert client.get("/expiry").text.startswith("None "), "the session is over"


def test_a_session_cookie_age_past_400_days_is_clamped(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = project(store, SESSION_COOKIE_AGE=10**12)
    response = client.get("/login?for=forever")
    assert response.status_code == 200
    assert f"Max-Age={MAX_COOKIE_AGE}" in response.headers["Set-Cookie"]
    assert client.get("/expiry").text.startswith(f"ada {MAX_COOKIE_AGE} ")
