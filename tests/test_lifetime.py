"""Per-session lifetime ("remember me"), browser-session caps and cache headers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from werkzeug.wrappers import Request

from wsgisession import ServerSessionStore, Session, session
from wsgisession.cookies import MAX_COOKIE_AGE, set_signed_cookie

from .conftest import SECRET, Clock, session_client, set_cookies

DAY = 86400


def login_view(request: Request) -> str:
    """/login?remember=1 logs in for 30 days, else for the browser session; / reads."""
    if request.path == "/login":
        session["user"] = "alice"
        session.max_age = 30 * DAY if request.args.get("remember") else None
        return "in"
    if request.path == "/reset":
        session.reset_max_age()
        return "reset"
    if request.path == "/touch":
        session["n"] = session.get("n", 0) + 1
    return f"{session.get('user')} {session.max_age} {session.has_own_max_age}"


def test_remember_me_gives_a_long_lived_cookie(store: Any) -> None:
    client = session_client(login_view, store=store, max_age=3600)
    (header,) = set_cookies(client.get("/login?remember=1"))
    assert f"Max-Age={30 * DAY}" in header
    assert client.get("/").text == f"alice {30 * DAY} True"


def test_without_remember_me_the_cookie_ends_with_the_browser(store: Any) -> None:
    client = session_client(login_view, store=store, max_age=3600)
    (header,) = set_cookies(client.get("/login"))
    assert "Max-Age" not in header
    assert "Expires" not in header
    assert client.get("/").text == "alice None True"


def test_own_lifetime_survives_later_writes_and_renewals(store: Any, clock: Clock) -> None:
    client = session_client(login_view, store=store, max_age=3600)
    client.get("/login?remember=1")
    client.get("/touch")
    # Far past the middleware's max_age, well within the session's own; due for a
    # renewal (a tenth of its lifetime), which keeps the lifetime.
    clock.advance(4 * DAY)
    response = client.get("/")
    assert response.text == f"alice {30 * DAY} True"
    (header,) = set_cookies(response)
    assert f"Max-Age={30 * DAY}" in header


def test_own_short_lifetime_expires_the_session(store: Any, clock: Clock) -> None:
    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "alice"
            session.max_age = 60
        return repr(session.get("user"))

    client = session_client(view, store=store, max_age=3600)
    client.get("/login")
    clock.advance(30)
    assert client.get("/").text == "'alice'"
    clock.advance(61)
    assert client.get("/").text == "None"


def test_absolute_max_age_still_caps_an_own_lifetime(store: Any, clock: Clock) -> None:
    client = session_client(login_view, store=store, max_age=3600, absolute_max_age=2 * DAY)
    client.get("/login?remember=1")
    clock.advance(DAY)
    assert client.get("/").text.startswith("alice")
    clock.advance(DAY + 1)
    assert client.get("/").text.startswith("None")


def test_reset_max_age_goes_back_to_the_middlewares(store: Any) -> None:
    client = session_client(login_view, store=store, max_age=3600)
    client.get("/login")
    (header,) = set_cookies(client.get("/reset"))
    assert "Max-Age=3600" in header
    assert client.get("/").text == "alice 3600 False"


def test_max_age_must_be_positive_seconds_or_none() -> None:
    detached = Session()
    for bad in (0, -1, 1.5, "60", True):
        with pytest.raises(ValueError, match="max_age must be"):
            detached.max_age = bad  # type: ignore[assignment]


# -- lifetimes past what browsers keep (issue 25, item 9) ---------------------------


def test_max_cookie_age_is_the_400_days_browsers_keep() -> None:
    assert MAX_COOKIE_AGE == 400 * DAY


def test_an_absurd_remember_me_lifetime_is_clamped_to_400_days(store: Any) -> None:
    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "alice"
            session.max_age = 10**12  # "remember me forever"
        return f"{session.get('user')} {session.max_age}"

    client = session_client(view, store=store, max_age=3600)
    response = client.get("/login")
    assert response.status_code == 200
    assert response.text == f"alice {MAX_COOKIE_AGE}"
    (header,) = set_cookies(response)
    assert f"Max-Age={MAX_COOKIE_AGE}" in header
    assert client.get("/").text == f"alice {MAX_COOKIE_AGE}", "the session is kept"


def test_a_middleware_max_age_past_400_days_is_clamped_with_a_warning(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def view(request: Request) -> str:
        session["visits"] = session.get("visits", 0) + 1
        return f"{session['visits']} {session.max_age}"

    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        client = session_client(view, store=store, max_age=10 * 365 * DAY)
    assert "400 days" in caplog.text
    response = client.get("/")
    assert response.text == f"1 {MAX_COOKIE_AGE}"
    (header,) = set_cookies(response)
    assert f"Max-Age={MAX_COOKIE_AGE}" in header
    assert client.get("/").text == f"2 {MAX_COOKIE_AGE}"


def test_a_huge_absolute_max_age_still_stores_the_session(server_store: ServerSessionStore) -> None:
    # A browser-session cookie with no idle limit of its own: the record's TTL came
    # from absolute_max_age, out of range for PostgreSQL's integer and Redis' EX.
    client = session_client(login_view, store=server_store, max_age=None, absolute_max_age=10**20)
    assert client.get("/login").status_code == 200
    assert client.get("/").text == "alice None True"


def test_no_session_outlives_400_days_unused(store: Any, clock: Clock) -> None:
    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "alice"
            session.max_age = 10**12
        return repr(session.get("user"))

    client = session_client(view, store=store, max_age=None, absolute_max_age=10**12)
    client.get("/login")
    clock.advance(MAX_COOKIE_AGE - DAY)
    assert client.get("/").text == "'alice'", "used within 400 days: kept"
    clock.advance(MAX_COOKIE_AGE + 1)
    assert client.get("/").text == "None"


def test_a_signed_cookie_past_400_days_is_clamped() -> None:
    headers: list[tuple[str, str]] = []
    set_signed_cookie(headers, "theme", "dark", secret_key=SECRET, max_age=10**12)
    ((_, header),) = headers
    assert f"Max-Age={MAX_COOKIE_AGE}" in header
