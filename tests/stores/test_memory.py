"""LRUStore: eviction, TTL, and the warning under a multi-process server."""

from __future__ import annotations

import logging

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, Clock, text_app
from wsgisession import LRUStore, SessionMiddleware, session
from wsgisession.errors import ConfigurationError


def test_least_recently_used_session_is_evicted_first() -> None:
    store = LRUStore(max_entries=2)
    store.save("a", {"x": b"1"}, (), 60, create=True)
    store.save("b", {"x": b"2"}, (), 60, create=True)
    store.load("a")  # "b" is now the least recently used
    store.save("c", {"x": b"3"}, (), 60, create=True)
    assert store.load("b") is None
    assert store.load("a") == {"x": b"1"}
    assert store.load("c") == {"x": b"3"}
    assert len(store) == 2


def test_a_full_store_drops_expired_short_lived_records_before_live_sessions(
    clock: Clock,
) -> None:
    store = LRUStore(max_entries=3)
    store.save("a", {"x": b"1"}, (), 3600, create=True)
    store.save("b", {"x": b"2"}, (), 3600, create=True)
    store.save("moved", {"m": b"-> b 0"}, (), 1, create=True)  # what regenerate() leaves
    clock.advance(2)
    store.save("c", {"x": b"3"}, (), 3600, create=True)
    assert [store.load(k) for k in "abc"] == [{"x": b"1"}, {"x": b"2"}, {"x": b"3"}]
    assert len(store) == 3


def test_short_lived_records_free_their_memory_once_expired(clock: Clock) -> None:
    store = LRUStore()
    for n in range(100):
        store.save(f"moved{n}", {"m": b"-> x 0"}, (), 1, create=True)
    clock.advance(2)
    store.save("live", {"x": b"1"}, (), 3600, create=True)
    assert len(store) == 1


def test_a_short_lived_record_saved_again_for_long_is_kept(clock: Clock) -> None:
    store = LRUStore()
    store.save("k", {"x": b"1"}, (), 1, create=True)
    store.save("k", {"x": b"2"}, (), 3600, create=False)
    store.touch("k", 3600)
    clock.advance(2)
    store.save("other", {"x": b"1"}, (), 3600, create=True)
    assert store.load("k") == {"x": b"2"}


def test_logins_that_regenerate_ids_do_not_push_out_live_sessions(clock: Clock) -> None:
    # Each login leaves its old id behind for a second; those dead records must not
    # count against the live sessions a full store keeps.
    def view(request: Request) -> str:
        if request.path == "/login":
            session.regenerate()
            session["user"] = request.args["name"]
        else:
            session["visits"] = session.get("visits", 0) + 1
        return session.get("user", "nobody")

    store = LRUStore(max_entries=21)  # 20 users, and the one whose login is under way
    app = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    clients = [Client(app) for _ in range(20)]
    for n, client in enumerate(clients):
        client.get("/")
        client.get(f"/login?name=user{n}")
        clock.advance(2)
    assert [client.get("/").text for client in clients] == [f"user{n}" for n in range(20)]


def test_record_expires_after_its_ttl(clock: Clock) -> None:
    store = LRUStore()
    store.save("k", {"x": b"1"}, (), 60, create=True)
    clock.advance(59)
    assert store.load("k") == {"x": b"1"}
    clock.advance(1)
    assert store.load("k") is None
    assert len(store) == 0


def test_expired_record_is_not_resurrected_by_a_save_without_create(clock: Clock) -> None:
    store = LRUStore()
    store.save("k", {"x": b"1"}, (), 60, create=True)
    clock.advance(61)
    assert store.save("k", {"y": b"2"}, (), 60, create=False) is False
    assert store.load("k") is None


def test_touch_extends_the_life_of_a_record(clock: Clock) -> None:
    store = LRUStore()
    store.save("k", {"x": b"1"}, (), 60, create=True)
    clock.advance(50)
    store.touch("k", 60)
    clock.advance(50)
    assert store.load("k") == {"x": b"1"}


def test_load_returns_a_copy_the_caller_cannot_change_the_store_through() -> None:
    store = LRUStore()
    store.save("k", {"x": b"1"}, (), 60, create=True)
    record = store.load("k")
    assert record is not None
    record["x"] = b"changed"
    assert store.load("k") == {"x": b"1"}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_max_entries_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_entries"):
        LRUStore(max_entries=bad)  # type: ignore[arg-type]


def test_sessions_are_kept_across_requests() -> None:
    def view(request: object) -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore()))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_a_multiprocess_server_gets_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = SessionMiddleware(text_app(lambda request: "ok"), secret_key=SECRET, store=LRUStore())
    client = Client(app)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        for _ in range(3):
            client.get("/", environ_overrides={"wsgi.multiprocess": True})
    warnings = [r for r in caplog.records if "several processes" in r.getMessage()]
    assert len(warnings) == 1
    assert "SQLiteStore" in warnings[0].getMessage()


def test_a_single_process_server_gets_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = SessionMiddleware(text_app(lambda request: "ok"), secret_key=SECRET, store=LRUStore())
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        Client(app).get("/", environ_overrides={"wsgi.multiprocess": False})
    assert caplog.records == []
