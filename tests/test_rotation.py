"""Rotation without breaking parallel requests, and id moves that a logout wins.

- ``session.regenerate(privilege_change=False)`` with ``rotation_grace=N``: a request
  the browser sent with the old cookie meanwhile still finds the session, for N
  seconds, on every server store; never after a login, logout, ``clear()``,
  ``invalidate()`` or a plain ``regenerate()`` (that would reopen fixation);
- a ``regenerate()`` racing a ``logout()`` never stores the session under a new id,
  with or without device tracking.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    CookieStore,
    CsrfMiddleware,
    ServerSessionStore,
    SessionMiddleware,
    csrf_token,
    current_user,
    login,
    logout,
    session,
)
from wsgisession.errors import ConfigurationError

from .conftest import SECRET, Clock, record_count, set_cookies, text_app

GRACE = 5


def view(request: Request) -> Any:
    path = request.path
    if path == "/login":
        login(request.args.get("user", "ann"))
        return "in"
    if path == "/logout":
        logout()
        return "out"
    if path == "/rotate":
        session.regenerate(privilege_change=False)
        session["step"] = "rotated"
        return "rotated"
    if path == "/regenerate":
        session.regenerate()
        return "regenerated"
    if path == "/clear":
        session.clear()
        session["step"] = "cleared"
        return "cleared"
    if path == "/invalidate":
        session.invalidate()
        session["step"] = "after"
        return "invalidated"
    if path == "/set":
        session[request.args["key"]] = request.args["value"]
        return "set"
    if path == "/csrf":
        return csrf_token()
    user = current_user()
    return f"{user.user_id if user else 'anon'} {session.get('step')} {session.get('b')}"


def app(store: Any, grace: int = GRACE, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(
        text_app(view), secret_key=SECRET, store=store, rotation_grace=grace, **options
    )


def cookie_of(client: Client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def with_cookie(middleware: Any, value: str) -> Client:
    """Another request of the same browser, sent with the cookie it held then."""
    other = Client(middleware)
    other.set_cookie("session", value)
    return other


# -- the grace period --------------------------------------------------------------------


def test_a_parallel_request_with_the_old_cookie_sees_the_rotated_session(
    server_store: ServerSessionStore,
) -> None:
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/login")
    old = cookie_of(browser)
    assert browser.get("/rotate").text == "rotated"
    assert cookie_of(browser) != old
    late = with_cookie(middleware, old)
    response = late.get("/")
    assert response.text == "ann rotated None"
    # It follows the forward, so it sets no cookie: the rotating response did.
    assert set_cookies(response) == []


def test_a_write_through_the_old_cookie_lands_in_the_rotated_session(
    server_store: ServerSessionStore,
) -> None:
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/login")
    old = cookie_of(browser)
    browser.get("/rotate")
    late = with_cookie(middleware, old)
    assert set_cookies(late.get("/set?key=b&value=late")) == []
    assert browser.get("/").text == "ann rotated late"


def test_after_the_grace_period_the_old_cookie_is_anonymous(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/login")
    old = cookie_of(browser)
    browser.get("/rotate")
    clock.advance(GRACE + 1)
    assert with_cookie(middleware, old).get("/").text == "anon None None"
    assert browser.get("/").text == "ann rotated None"


def test_without_a_grace_period_the_old_cookie_is_anonymous_at_once(
    server_store: ServerSessionStore,
) -> None:
    middleware = app(server_store, grace=0)
    browser = Client(middleware)
    browser.get("/login")
    old = cookie_of(browser)
    browser.get("/rotate")
    assert with_cookie(middleware, old).get("/").text == "anon None None"
    assert browser.get("/").text == "ann rotated None"


@pytest.mark.parametrize("action", ["login", "regenerate", "clear", "invalidate", "logout"])
def test_a_privilege_change_never_forwards_the_old_id(
    server_store: ServerSessionStore, action: str
) -> None:
    # Fixation: an id planted or seen before a login must be worthless right after
    # it, whatever rotation_grace says.
    middleware = app(server_store, grace=60)
    browser = Client(middleware)
    browser.get("/login?user=eve")
    old = cookie_of(browser)
    browser.get(f"/{action}")
    assert with_cookie(middleware, old).get("/").text == "anon None None"


def test_a_rotation_then_a_login_in_one_request_does_not_forward() -> None:
    def rotate_then_login(request: Request) -> str:
        if request.path == "/both":
            session.regenerate(privilege_change=False)
            login("ann")
            return "both"
        return view(request)

    from wsgisession import LRUStore

    middleware = SessionMiddleware(
        text_app(rotate_then_login), secret_key=SECRET, store=LRUStore(), rotation_grace=60
    )
    browser = Client(middleware)
    browser.get("/set?key=step&value=anonymous")
    old = cookie_of(browser)
    browser.get("/both")
    assert with_cookie(middleware, old).get("/").text == "anon None None"
    assert browser.get("/").text == "ann anonymous None"


def test_the_forward_is_followed_one_hop_only(server_store: ServerSessionStore) -> None:
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/login")
    first = cookie_of(browser)
    browser.get("/rotate")
    second = cookie_of(browser)
    browser.get("/rotate")
    assert with_cookie(middleware, second).get("/").text == "ann rotated None"
    assert with_cookie(middleware, first).get("/").text == "anon None None"


def test_logging_out_through_the_old_cookie_ends_the_rotated_session(
    server_store: ServerSessionStore,
) -> None:
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/login")
    old = cookie_of(browser)
    browser.get("/rotate")
    with_cookie(middleware, old).get("/logout")
    assert browser.get("/").text == "anon None None"
    assert record_count(server_store) <= 1  # at most the old id's marker, expiring


def test_a_rotation_keeps_the_csrf_token_a_login_does_not() -> None:
    from wsgisession import LRUStore

    def csrf_view(request: Request) -> str:
        return str(view(request))

    middleware = SessionMiddleware(
        CsrfMiddleware(text_app(csrf_view)),
        secret_key=SECRET,
        store=LRUStore(),
        rotation_grace=GRACE,
    )
    browser = Client(middleware)
    token = browser.get("/csrf").text
    browser.post("/rotate", data={"csrf_token": token})
    assert browser.post("/set?key=b&value=1", data={"csrf_token": token}).status_code == 200
    browser.post("/login", data={"csrf_token": token})
    assert browser.post("/set?key=b&value=2", data={"csrf_token": token}).status_code == 403


def test_rotation_grace_on_a_cookie_store_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="rotation_grace needs a server-side store"):
        app(CookieStore())
    with pytest.raises(ConfigurationError, match="rotation_grace must be"):
        app(None, grace=-1)


def test_session_data_under_the_marker_name_is_only_data(
    server_store: ServerSessionStore,
) -> None:
    # A value the app stores under the marker's field name is tagged JSON, which a
    # marker never is: it cannot redirect the session anywhere.
    middleware = app(server_store)
    browser = Client(middleware)
    browser.get("/set?key=_wsgisession.moved&value=-> 00 99999999999")
    browser.get("/set?key=step&value=kept")
    assert browser.get("/").text == "anon kept None"


# -- a move to a new id never outlives a logout ---------------------------------------


@pytest.mark.parametrize("privilege_change", [True, False])
def test_a_regenerate_racing_a_logout_does_not_store_the_session_under_a_new_id(
    server_store: ServerSessionStore, privilege_change: bool
) -> None:
    loaded, logged_out = threading.Event(), threading.Event()

    def slow(request: Request) -> Any:
        if request.path == "/slow":
            assert current_user() is not None  # loaded while still logged in
            loaded.set()
            assert logged_out.wait(10)
            session.regenerate(privilege_change=privilege_change)
            session["late"] = True
            return "done"
        return view(request)

    middleware = SessionMiddleware(
        text_app(slow), secret_key=SECRET, store=server_store, rotation_grace=GRACE
    )
    tab1 = Client(middleware)
    tab1.get("/login")
    tab2 = with_cookie(middleware, cookie_of(tab1))
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(tab2.get("/slow")))
    worker.start()
    assert loaded.wait(10)
    tab1.get("/logout")
    logged_out.set()
    worker.join(10)
    assert result[0].text == "done"
    # The slow tab's response ends its cookie rather than issue a live new id …
    assert tab2.get_cookie("session") is None
    assert tab2.get("/").text == "anon None None"
    # … and no record of the session is left to find (the old id's marker aside,
    # which leads nowhere and expires in a second).
    assert record_count(server_store) == 0
