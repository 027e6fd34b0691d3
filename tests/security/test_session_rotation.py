"""Session rotation and lifetime hardening: what an old token or cookie can no longer do.

- any session-id change (wsgisession's login, Django's cycle_key(), a Flask-Login
  signal: all call regenerate()) rotates the CSRF secret;
- a browser-session cookie (no Max-Age) is refused by the server after 14 days
  unused, on every store, the cookie store included;
- a response that sets the session cookie carries Cache-Control: no-store.
"""

from __future__ import annotations

from typing import Any

from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import CsrfMiddleware, SessionMiddleware, csrf_token, get_session, session

from ..conftest import SECRET, Clock, session_client, set_cookies, text_app

DAY = 86400


def login_view(request: Request) -> str:
    if request.path == "/login":
        session["user"] = "alice"
        session.max_age = None
        return "in"
    if request.path == "/touch":
        session["n"] = session.get("n", 0) + 1
    return f"{session.get('user')} {session.max_age} {session.has_own_max_age}"


def test_any_session_id_change_rotates_the_secret() -> None:
    # Whatever performs the login (Django's cycle_key(), a Flask-Login signal …)
    # changes the id with regenerate(): tokens from before it must stop working.
    def view(request: Request) -> str:
        if request.path == "/cycle":
            get_session().regenerate()
            return csrf_token()
        if request.path == "/token":
            return csrf_token()
        return "ok"

    client = Client(SessionMiddleware(CsrfMiddleware(text_app(view)), secret_key=SECRET))
    before = client.get("/token").text
    after = client.get("/cycle").text
    refused = client.post("/p", data={"csrf_token": before})
    assert refused.status_code == 403
    assert "out of date or from another session" in refused.text
    assert client.post("/p", data={"csrf_token": after}).status_code == 200


def test_a_browser_session_is_refused_after_two_weeks_unused(store: Any, clock: Clock) -> None:
    # No Max-Age lets the browser keep the cookie as long as it runs; the server
    # must not honour a copy of it forever.
    client = session_client(login_view, store=store, max_age=None)
    client.get("/touch")
    clock.advance(13 * DAY)
    assert client.get("/").text == "None None False"
    clock.advance(14 * DAY + 1)
    assert client.get("/touch").text == "None None False"
    assert client.get("/").text == "None None False"


def test_a_browser_session_in_use_is_renewed_and_lives_on(store: Any, clock: Clock) -> None:
    client = session_client(login_view, store=store, max_age=None)
    client.get("/login")
    for _ in range(4):
        clock.advance(5 * DAY)
        assert client.get("/").text == "alice None True"


def test_a_response_that_sets_the_cookie_is_not_cacheable(store: Any) -> None:
    client = session_client(login_view, store=store)
    response = client.get("/login")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client.get("/").headers  # read only: no cookie


def test_the_apps_own_cache_control_is_kept(store: Any) -> None:
    def view(request: Request) -> Response:
        session["x"] = 1
        return Response("ok", headers={"Cache-Control": "private, max-age=60"})

    response = session_client(view, store=store).get("/")
    assert response.headers.getlist("Cache-Control") == ["private, max-age=60"]


def test_no_store_can_be_turned_off(store: Any) -> None:
    response = session_client(login_view, store=store, no_store=False).get("/login")
    assert set_cookies(response)
    assert "Cache-Control" not in response.headers
