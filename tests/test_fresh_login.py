"""Fresh login and remember me: sensitive pages ask for a recent login."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    FreshLogin,
    SessionMiddleware,
    current_user,
    fresh_login_required,
    login,
)
from wsgisession.errors import ConfigurationError

from .conftest import SECRET, Clock, text_app


def view(request: Request) -> Any:
    if request.path == "/login":
        remember = request.args.get("remember")
        login("ann", remember=None if remember is None else remember == "1")
        return "in"
    user = current_user()
    return "anon" if user is None else "ok"


def guarded_client(store: Any, **options: Any) -> Client:
    app = FreshLogin(text_app(view), max_age=600, paths=["/password"], **options)
    return Client(SessionMiddleware(app, secret_key=SECRET, store=store))


def test_a_recent_login_passes_an_old_one_must_log_in_again(store: Any, clock: Clock) -> None:
    client = guarded_client(store)
    client.get("/login")
    assert client.get("/password").text == "ok"
    clock.advance(601)
    refused = client.get("/password", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert refused.json == {"error": "login_not_fresh", "message": "Log in again to see this page."}
    assert client.get("/elsewhere").text == "ok"  # still logged in for ordinary pages
    client.get("/login")
    assert client.get("/password").text == "ok"


def test_a_stale_login_is_sent_to_the_login_page_and_back(store: Any, clock: Clock) -> None:
    client = guarded_client(store, location="/login")
    client.get("/login")
    clock.advance(601)
    refused = client.get("/password?step=2")
    assert refused.status_code == 303
    assert refused.headers["Location"] == "/login?next=%2Fpassword%3Fstep%3D2"


def test_not_logged_in_at_all_is_a_401(store: Any) -> None:
    assert guarded_client(store).get("/password").status_code == 401


def test_the_decorator_guards_one_view(store: Any, clock: Clock) -> None:
    @fresh_login_required(max_age=60)
    def pay(request: Request) -> str:
        return "paid"

    def routed(request: Request) -> Any:
        return pay(request) if request.path == "/pay" else view(request)

    client = Client(SessionMiddleware(text_app(routed), secret_key=SECRET, store=store))
    client.get("/login")
    assert client.get("/pay").text == "paid"
    clock.advance(61)
    assert client.get("/pay").status_code == 401


def test_the_decorator_can_redirect(store: Any, clock: Clock) -> None:
    @fresh_login_required(max_age=60, location="/login")
    def pay(request: Request) -> str:
        return "paid"

    client = Client(
        SessionMiddleware(
            text_app(lambda r: pay(r) if r.path == "/pay" else view(r)),
            secret_key=SECRET,
            store=store,
        )
    )
    client.get("/login")
    clock.advance(61)
    response = client.get("/pay")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fpay"


def test_max_age_must_be_positive_seconds() -> None:
    with pytest.raises(ConfigurationError):
        FreshLogin(text_app(view), max_age=0)
    with pytest.raises(ConfigurationError):
        fresh_login_required(max_age="10")  # type: ignore[arg-type]


def test_remember_me_gives_a_persistent_cookie(store: Any) -> None:
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600))
    response = client.get("/login?remember=1")
    assert "Max-Age=3600" in response.headers["Set-Cookie"]


def test_without_remember_me_the_cookie_ends_with_the_browser(store: Any) -> None:
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600))
    response = client.get("/login?remember=0")
    header = response.headers["Set-Cookie"]
    assert "Max-Age" not in header
    assert "Expires" not in header
    assert client.get("/me").text == "ok"  # still logged in while the browser is open


def test_remember_me_after_a_browser_session_makes_it_persistent_again(store: Any) -> None:
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600))
    client.get("/login?remember=0")
    assert "Max-Age=3600" in client.get("/login?remember=1").headers["Set-Cookie"]


def test_remember_me_without_a_middleware_max_age_lasts_thirty_days(store: Any) -> None:
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=None))
    response = client.get("/login?remember=1")
    assert f"Max-Age={30 * 86400}" in response.headers["Set-Cookie"]
