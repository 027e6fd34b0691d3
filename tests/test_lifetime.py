"""Per-session lifetime ("remember me"), browser-session caps and cache headers."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.wrappers import Request

from wsgisession import Session, session

from .conftest import Clock, session_client, set_cookies

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
