"""login(), logout() and current_user(): the login state a guard relies on."""

from __future__ import annotations

import contextvars
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    AuthInfo,
    ClientSessionStore,
    ServerSessionStore,
    SessionMiddleware,
    current_user,
    login,
    logout,
    session,
)
from wsgisession.access.login import AUTH_KEY

from .conftest import MOVED, SECRET, session_client, text_app
from .fakes import DictStore


def auth_view(request: Request) -> str:
    """/login?user=…&roles=a,b logs in; /logout logs out; /cart adds to a cart; / says who."""
    if request.path == "/login":
        roles = [r for r in request.args.get("roles", "").split(",") if r]
        login(request.args["user"], roles=roles, name=request.args.get("name", ""))
        return "logged in"
    if request.path == "/logout":
        logout()
        return "logged out"
    if request.path == "/cart":
        session.setdefault("cart", []).append(request.args["item"])
        return ",".join(session["cart"])
    user = current_user()
    if user is None:
        return "anonymous"
    return f"{user.user_id} roles={','.join(sorted(user.roles))} name={user.extra.get('name')}"


def cookie_value(client: Client) -> str | None:
    cookie = client.get_cookie("session")
    return None if cookie is None else cookie.value


def replay(client_app: Any, value: str, path: str = "/") -> str:
    """The body of *path* for a fresh client that presents session cookie *value*."""
    other = Client(client_app)
    other.set_cookie("session", value)
    return other.get(path).get_data(as_text=True)


def test_login_records_user_roles_extra_and_time(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = session_client(auth_view, store=store)
    assert client.get("/").text == "anonymous"
    client.get("/login?user=alice&roles=editor,admin&name=Alice")
    assert client.get("/").text == "alice roles=admin,editor name=Alice"


def test_login_returns_what_current_user_reads() -> None:
    seen: list[tuple[AuthInfo, AuthInfo | None]] = []

    def view(request: Request) -> str:
        info = login(7, roles="admin", team="red")
        seen.append((info, current_user()))
        return ""

    session_client(view).get("/")
    info, read = seen[0]
    assert info == read
    assert info.user_id == 7
    assert info.roles == frozenset({"admin"})
    assert dict(info.extra) == {"team": "red"}
    assert isinstance(info.logged_in_at, datetime)
    assert info.logged_in_at.tzinfo is not None


def test_login_accepts_uuid_user_ids() -> None:
    uid = UUID("12345678-1234-5678-1234-567812345678")

    def view(request: Request) -> str:
        if request.path == "/login":
            login(uid)
        user = current_user()
        return repr(user.user_id if user else None)

    client = session_client(view)
    client.get("/login")
    assert client.get("/").text == repr(uid)


def test_login_gives_a_new_cookie_and_the_old_one_stays_anonymous(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    client = session_client(auth_view, store=store)
    client.get("/cart?item=book")  # an anonymous session: the cookie a fixer would plant
    planted = cookie_value(client)
    assert planted is not None
    client.get("/login?user=alice")
    assert cookie_value(client) != planted
    assert client.get("/").text.startswith("alice")
    assert replay(client.application, planted) == "anonymous"


def test_server_store_retires_the_pre_login_record() -> None:
    store = DictStore()
    client = session_client(auth_view, store=store)
    client.get("/cart?item=book")
    assert len(store.records) == 1
    before = set(store.records)
    client.get("/login?user=alice")
    live = {key for key, (_, record) in store.records.items() if set(record) != {MOVED}}
    assert len(live) == 1
    assert live.isdisjoint(before)
    # The pre-login id keeps no data: only the marker of the move, for a second.
    (old,) = before
    assert set(store.records[old][1]) == {MOVED}
    assert store.records[old][0] <= time.time() + 1


def test_login_keeps_the_visitors_data_for_the_same_user() -> None:
    client = session_client(auth_view)
    client.get("/cart?item=book")
    client.get("/login?user=alice")
    assert client.get("/cart?item=pen").text == "book,pen"


def test_login_as_another_user_drops_the_previous_users_data() -> None:
    client = session_client(auth_view)
    client.get("/login?user=alice&roles=admin")
    client.get("/cart?item=secret-plans")
    client.get("/login?user=bob")
    assert client.get("/").text == "bob roles= name="
    assert client.get("/cart?item=pen").text == "pen"


def test_logout_deletes_the_cookie_with_its_attributes() -> None:
    client = Client(
        SessionMiddleware(text_app(auth_view), secret_key=SECRET, path="/", samesite="Strict")
    )
    client.get("/login?user=alice")
    response = client.get("/logout")
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("session=;")
    assert "Max-Age=0" in set_cookie
    assert "Path=/" in set_cookie
    assert "SameSite=Strict" in set_cookie
    assert client.get("/").text == "anonymous"


def test_logout_on_a_server_store_makes_the_old_cookie_worthless() -> None:
    store = DictStore()
    client = session_client(auth_view, store=store)
    client.get("/login?user=alice")
    logged_in = cookie_value(client)
    assert logged_in is not None
    client.get("/logout")
    assert store.records == {}
    assert replay(client.application, logged_in) == "anonymous"


@pytest.mark.parametrize(
    "record",
    [
        pytest.param("alice", id="not-a-dict"),
        pytest.param({"roles": []}, id="no-id"),
        pytest.param({"id": True, "roles": []}, id="bool-id"),
        pytest.param({"id": ["alice"], "roles": []}, id="list-id"),
        pytest.param({"id": "alice", "roles": "admin"}, id="roles-a-str"),
        pytest.param({"id": "alice", "roles": [1, 2]}, id="roles-not-str"),
        pytest.param({"id": "alice", "roles": {"admin": 1}}, id="roles-a-dict"),
        pytest.param({"id": "alice", "roles": [], "extra": ["x"]}, id="extra-a-list"),
        pytest.param({"id": "alice", "roles": [], "at": "yesterday"}, id="at-a-str"),
    ],
)
def test_a_login_record_of_the_wrong_shape_is_not_logged_in(record: Any) -> None:
    def view(request: Request) -> str:
        if request.path == "/plant":
            session[AUTH_KEY] = record
            return ""
        return repr(current_user())

    client = session_client(view)
    client.get("/plant")
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "None"


@pytest.mark.parametrize("user_id", [None, True, 1.5, ["alice"], b"alice"])
def test_login_refuses_a_user_id_of_the_wrong_type(user_id: Any) -> None:
    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="user_id must be"):
            login(user_id)
        return "refused"

    assert session_client(view).get("/").text == "refused"


def test_login_refuses_roles_that_are_not_strings() -> None:
    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="roles must be a non-empty str"):
            login("alice", roles=["admin", 3])  # type: ignore[list-item]
        return "refused"

    assert session_client(view).get("/").text == "refused"


def test_login_outside_the_middleware_says_how_to_fix_it() -> None:
    # A fresh context: an unclosed test response may still have a request bound here.
    outside = contextvars.Context()
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        outside.run(login, "alice")
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        outside.run(current_user)


def test_auth_info_role_checks() -> None:
    info = AuthInfo("alice", frozenset({"editor", "admin"}))
    assert info.has_role("admin")
    assert not info.has_role("owner")
    assert info.has_roles([])
    assert info.has_roles(["owner", "admin"])
    assert not info.has_roles(["owner", "admin"], require_all=True)
    assert info.has_roles(["editor", "admin"], require_all=True)
