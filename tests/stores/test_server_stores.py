"""What every server-side store (LRU, SQLite, Redis) must do, run against each.

The store contract (merge, ``create=False``, empty records) and the middleware
rules that depend on it: concurrent requests, logout in flight, unknown ids,
corrupt records, and keys that are hashes of ids.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from typing import Any

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, create_environ, run_wsgi_app
from werkzeug.wrappers import Request

from tests.conftest import SECRET, record_count, text_app
from wsgisession import ServerSessionStore, SessionMiddleware, session

PURPOSE = "wsgisession.session:session"


def middleware(view: Any, store: ServerSessionStore, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(text_app(view), secret_key=SECRET, store=store, **options)


def session_id(mw: SessionMiddleware, client: Client) -> str:
    """The session id inside *client*'s signed cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    sid, _, _ = mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")
    return sid.decode()


def store_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def counter_view(request: Request) -> str:
    key = request.args.get("key")
    if key is None:
        return f"a={session.get('a')} b={session.get('b')}"
    session[key] = session.get(key, 0) + 1
    return str(session[key])


# -- the store contract ----------------------------------------------------------


def test_save_merges_changed_fields_and_keeps_the_others(server_store: ServerSessionStore) -> None:
    assert server_store.save("k", {"a": b"1", "b": b"2"}, (), 60, create=True)
    assert server_store.save("k", {"b": b"3", "c": b"4"}, (), 60, create=False)
    assert server_store.load("k") == {"a": b"1", "b": b"3", "c": b"4"}


def test_removed_fields_are_dropped(server_store: ServerSessionStore) -> None:
    server_store.save("k", {"a": b"1", "b": b"2"}, (), 60, create=True)
    server_store.save("k", {}, ["a", "never-there"], 60, create=False)
    assert server_store.load("k") == {"b": b"2"}


def test_a_record_left_without_fields_is_deleted(server_store: ServerSessionStore) -> None:
    server_store.save("k", {"a": b"1"}, (), 60, create=True)
    server_store.save("k", {}, ["a"], 60, create=False)
    assert server_store.load("k") is None
    assert record_count(server_store) == 0


def test_save_without_create_writes_nothing_for_a_missing_record(
    server_store: ServerSessionStore,
) -> None:
    assert server_store.save("gone", {"a": b"1"}, (), 60, create=False) is False
    assert server_store.load("gone") is None
    assert record_count(server_store) == 0


def test_deleted_record_is_not_resurrected_by_a_later_save(
    server_store: ServerSessionStore,
) -> None:
    server_store.save("k", {"a": b"1"}, (), 60, create=True)
    server_store.delete("k")
    server_store.delete("k")  # deleting twice is no error
    assert server_store.save("k", {"b": b"2"}, (), 60, create=False) is False
    assert server_store.load("k") is None


def test_touch_never_creates_a_record(server_store: ServerSessionStore) -> None:
    server_store.touch("nothing", 60)
    assert server_store.load("nothing") is None
    assert record_count(server_store) == 0


def test_same_field_from_two_saves_last_write_wins(server_store: ServerSessionStore) -> None:
    server_store.save("k", {"a": b"1"}, (), 60, create=True)
    server_store.save("k", {"a": b"2"}, (), 60, create=False)
    assert server_store.load("k") == {"a": b"2"}


# -- through the middleware ---------------------------------------------------------


def test_two_threads_changing_different_keys_both_land(server_store: ServerSessionStore) -> None:
    mw = middleware(counter_view, server_store)
    starter = Client(mw)
    starter.get("/?key=start")
    cookie = starter.get_cookie("session")
    assert cookie is not None
    failures: list[str] = []

    def increment(key: str) -> None:
        client = Client(mw)
        client.set_cookie("session", cookie.value)
        for _ in range(500):
            response = client.get(f"/?key={key}")
            if response.status_code != 200:
                failures.append(response.status)

    threads = [threading.Thread(target=increment, args=(key,)) for key in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert starter.get("/").text == "a=500 b=500"


def test_request_that_started_before_logout_does_not_bring_the_session_back(
    server_store: ServerSessionStore,
) -> None:
    loaded, logged_out = threading.Event(), threading.Event()

    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "ann"
        elif request.path == "/logout":
            session.invalidate()
        elif request.path == "/slow":
            session.get("user")
            loaded.set()
            logged_out.wait(10)
            session["cart"] = ["book"]
        return "ok"

    mw = middleware(view, server_store)
    user = Client(mw)
    user.get("/login")
    cookie = user.get_cookie("session")
    assert cookie is not None
    slow = Client(mw)
    slow.set_cookie("session", cookie.value)
    responses: list[Any] = []
    thread = threading.Thread(target=lambda: responses.append(slow.get("/slow")))
    thread.start()
    assert loaded.wait(10)
    user.get("/logout")
    logged_out.set()
    thread.join()

    assert responses[0].status_code == 200
    assert record_count(server_store) == 0
    assert slow.get_cookie("session") is None  # the cookie was deleted, not re-issued


@pytest.mark.slow
def test_ten_thousand_unknown_ids_create_no_records(server_store: ServerSessionStore) -> None:
    mw = middleware(lambda request: session.get("user", "anonymous"), server_store)
    signer = mw.keyring.signer(PURPOSE)
    now = int(time.time())
    bodies = set()
    for i in range(10_000):
        sid = secrets.token_urlsafe(32)
        # Half are well signed (an id we never issued), half forged (no signature).
        value = signer.sign(f"{sid}.{now}".encode()).decode() if i % 2 else f"{sid}.{now}"
        # Straight to the WSGI app: a test Client per request would dominate the time.
        environ = create_environ("/", headers=[("Cookie", f"session={value}")])
        body, status, _ = run_wsgi_app(mw, environ, buffered=True)
        bodies.add((status, b"".join(body)))
    assert bodies == {("200 OK", b"anonymous")}
    assert record_count(server_store) == 0


def test_a_stored_key_is_the_sha256_of_the_id_never_the_id(
    server_store: ServerSessionStore,
) -> None:
    def view(request: Request) -> str:
        session["user"] = "ann"
        return "ok"

    mw = middleware(view, server_store)
    client = Client(mw)
    client.get("/")
    sid = session_id(mw, client)
    assert server_store.load(sid) is None
    assert server_store.load(store_key(sid)) == {"user": b'"ann"'}
    assert record_count(server_store) == 1


@pytest.mark.parametrize(
    "field",
    [
        pytest.param(b"\x80 not our format", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'"ann","bob"', id="two-values"),
        pytest.param(b'["ann"', id="unclosed"),
        pytest.param(b'"ann"]', id="stray-bracket"),
    ],
)
def test_corrupt_record_is_deleted_and_gives_a_fresh_session(
    server_store: ServerSessionStore, caplog: pytest.LogCaptureFixture, field: bytes
) -> None:
    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "ann"
        return str(session.get("user", "anonymous"))

    mw = middleware(view, server_store)
    client = Client(LintMiddleware(mw))
    client.get("/login")
    key = store_key(session_id(mw, client))
    server_store.save(key, {"user": field, "role": b'"admin"'}, (), 60, create=False)

    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "anonymous")
    assert "corrupt" in caplog.text
    assert server_store.load(key) is None


def test_regenerate_moves_the_data_and_retires_the_old_record(
    server_store: ServerSessionStore,
) -> None:
    def view(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "ann"
        elif request.path == "/regenerate":
            session.regenerate()
        return str(session.get("user"))

    mw = middleware(view, server_store)
    client = Client(mw)
    client.get("/login")
    old = session_id(mw, client)
    client.get("/regenerate")
    new = session_id(mw, client)
    assert new != old
    # The old record keeps none of the data: only a marker that the session moved
    # (checked and written in one save, so a logout racing the move wins), which
    # leads nowhere without rotation_grace and expires within a second.
    assert set(server_store.load(store_key(old)) or {}) <= {"_wsgisession.moved"}
    assert client.get("/").text == "ann"
    time.sleep(1.1)
    assert server_store.load(store_key(old)) is None
    assert server_store.load(store_key(new)) is not None


def test_a_session_that_stays_empty_writes_nothing(server_store: ServerSessionStore) -> None:
    client = Client(middleware(lambda request: session.get("user", "anonymous"), server_store))
    response = client.get("/")
    assert "Set-Cookie" not in response.headers
    assert record_count(server_store) == 0
