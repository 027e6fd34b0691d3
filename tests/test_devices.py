"""A user's devices: listing, revoking one, revoking all, on every server store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    CookieStore,
    LRUStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
    current_user,
    login,
    logout,
    logout_everywhere,
    revoke,
    revoke_all,
    session,
    sessions_of,
    track_devices,
)
from wsgisession.access.devices import Devices, user_token
from wsgisession.errors import ConfigurationError
from wsgisession.stores import SessionIndex
from wsgisession.stores.postgres import PostgresStore

from .conftest import SECRET, Clock, postgres_sql, redis_record_name, text_app
from .fakes import DictStore


def view(request: Request) -> Any:
    path = request.path
    if path == "/login":
        remember = request.args.get("remember")
        login(request.args["user"], remember=None if remember is None else remember == "1")
        return "ok"
    if path == "/me":
        user = current_user()
        return "anon" if user is None else str(user.user_id)
    if path == "/devices":
        return Response(
            json.dumps(
                [
                    {
                        "handle": d.handle,
                        "ua": d.user_agent,
                        "ip": d.ip,
                        "current": d.current,
                        "seen": d.last_seen.timestamp(),
                        "logged_in": d.logged_in.timestamp(),
                    }
                    for d in sessions_of()
                ]
            ),
            content_type="application/json",
        )
    if path == "/revoke":
        return str(revoke(request.args["handle"]))
    if path == "/revoke_all":
        return str(revoke_all(except_current=request.args.get("keep") == "1"))
    if path == "/everywhere":
        return str(logout_everywhere())
    if path == "/logout":
        logout()
        return "bye"
    if path == "/write":
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])
    return "?"


def make(
    store: Any, app_view: Callable[[Request], Any] = view, **options: Any
) -> tuple[SessionMiddleware, Devices]:
    middleware = SessionMiddleware(text_app(app_view), secret_key=SECRET, store=store)
    return middleware, track_devices(middleware, **options)


class Browser(Client):
    """A test client that sends its own User-Agent from its own address."""

    def __init__(self, app: Any, agent: str, ip: str) -> None:
        super().__init__(app)
        self.base = {"HTTP_USER_AGENT": agent, "REMOTE_ADDR": ip}

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("environ_base", self.base)
        return super().open(*args, **kwargs)


def browser(app: Any, agent: str, ip: str = "203.0.113.7") -> Client:
    return Browser(app, agent, ip)


def devices_of(client: Client) -> list[dict[str, Any]]:
    return list(client.get("/devices").json or [])


def test_each_login_is_listed_with_its_browser_and_address(
    server_store: ServerSessionStore,
) -> None:
    app, _ = make(server_store)
    laptop, phone = (
        browser(app, "Firefox on laptop"),
        browser(app, "Safari on phone", "198.51.100.9"),
    )
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    listed = devices_of(laptop)
    assert sorted((d["ua"], d["ip"], d["current"]) for d in listed) == [
        ("Firefox on laptop", "203.0.113.7", True),
        ("Safari on phone", "198.51.100.9", False),
    ]
    # From the phone, the phone is the current one.
    assert [d["ua"] for d in devices_of(phone) if d["current"]] == ["Safari on phone"]


def test_the_handle_is_neither_the_session_id_nor_its_store_key(
    server_store: ServerSessionStore,
) -> None:
    app, _ = make(server_store)
    laptop = browser(app, "Firefox")
    laptop.get("/login?user=ann")
    handle = devices_of(laptop)[0]["handle"]
    cookie = laptop.get_cookie("session")
    assert cookie is not None
    sid = cookie.value.split(".")[0]
    assert handle not in cookie.value
    from wsgisession._backends import ServerBackend

    assert handle != ServerBackend.store_key(sid)
    # And it is no credential: a cookie made of it is refused.
    thief = browser(app, "curl")
    thief.set_cookie("session", handle)
    assert thief.get("/me").text == "anon"


def test_revoking_another_device_makes_its_next_request_anonymous(
    server_store: ServerSessionStore,
) -> None:
    app, _ = make(server_store)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    other = next(d for d in devices_of(laptop) if not d["current"])
    assert laptop.get(f"/revoke?handle={other['handle']}").text == "True"
    assert phone.get("/me").text == "anon"
    assert laptop.get("/me").text == "ann"
    assert [d["ua"] for d in devices_of(laptop)] == ["laptop"]
    # Revoking it again is a no-op.
    assert laptop.get(f"/revoke?handle={other['handle']}").text == "False"


def test_a_user_cannot_revoke_another_users_session(server_store: ServerSessionStore) -> None:
    app, _ = make(server_store)
    ann, bob = browser(app, "ann's"), browser(app, "bob's")
    ann.get("/login?user=ann")
    bob.get("/login?user=bob")
    bobs_handle = devices_of(bob)[0]["handle"]
    assert ann.get(f"/revoke?handle={bobs_handle}").text == "False"
    assert bob.get("/me").text == "bob"


def test_log_out_everywhere_keeps_only_this_session(server_store: ServerSessionStore) -> None:
    app, _ = make(server_store)
    clients = [browser(app, f"browser {n}") for n in range(3)]
    for client in clients:
        client.get("/login?user=ann")
    assert clients[0].get("/everywhere").text == "2"
    assert [c.get("/me").text for c in clients] == ["ann", "anon", "anon"]
    assert [d["ua"] for d in devices_of(clients[0])] == ["browser 0"]


def test_revoke_all_without_keep_logs_this_request_out_too(
    server_store: ServerSessionStore,
) -> None:
    app, _ = make(server_store)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    assert laptop.get("/revoke_all").text == "2"
    assert laptop.get("/me").text == "anon"
    assert phone.get("/me").text == "anon"


def test_logout_removes_the_device_from_the_list(server_store: ServerSessionStore) -> None:
    app, _ = make(server_store)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    phone.get("/logout")
    assert [d["ua"] for d in devices_of(laptop)] == ["laptop"]


def test_the_handle_is_stable_across_writes_and_id_changes(
    server_store: ServerSessionStore,
) -> None:
    def regenerating(request: Request) -> Any:
        if request.path == "/regen":
            session.regenerate()
            return "moved"
        return view(request)

    app, _ = make(server_store, regenerating)
    laptop = browser(app, "laptop")
    laptop.get("/login?user=ann")
    before = devices_of(laptop)
    laptop.get("/write")
    laptop.get("/regen")
    assert laptop.get("/me").text == "ann"
    after = devices_of(laptop)
    assert [d["handle"] for d in after] == [d["handle"] for d in before]
    assert after[0]["current"]


def test_last_seen_is_renewed_only_with_the_idle_timeout(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    assert isinstance(server_store, SessionIndex)
    puts: list[str] = []
    original = server_store.index_put

    def counting(*args: Any, **kwargs: Any) -> bool:
        puts.append(args[1])
        return original(*args, **kwargs)

    server_store.index_put = counting  # type: ignore[method-assign]
    middleware = SessionMiddleware(
        text_app(view), secret_key=SECRET, store=server_store, max_age=3600, refresh_interval=300
    )
    track_devices(middleware)
    laptop = browser(middleware, "laptop")
    laptop.get("/login?user=ann")
    assert len(puts) == 1
    seen = devices_of(laptop)[0]["seen"]
    for _ in range(5):
        clock.advance(30)
        assert laptop.get("/write").status_code == 200
    assert len(puts) == 1  # writes and reads inside refresh_interval: no index write
    clock.advance(300)
    laptop.get("/me")
    assert len(puts) == 2
    assert devices_of(laptop)[0]["seen"] >= seen + 450


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        pytest.param("full", "203.0.113.7", id="full"),
        pytest.param("prefix", "203.0.113.0/24", id="prefix"),
        pytest.param("none", None, id="none"),
    ],
)
def test_the_client_address_is_kept_as_configured(option: str, expected: str | None) -> None:
    app, _ = make(LRUStore(), client_ip=option)
    laptop = browser(app, "x" * 500)
    laptop.get("/login?user=ann")
    (device,) = devices_of(laptop)
    assert device["ip"] == expected
    assert device["ua"] == "x" * 160


def test_an_ipv6_prefix_keeps_the_network_part() -> None:
    app, _ = make(LRUStore(), client_ip="prefix")
    laptop = browser(app, "laptop", "2001:db8:1234:5678::1")
    laptop.get("/login?user=ann")
    assert devices_of(laptop)[0]["ip"] == "2001:db8:1234::/48"


def test_expired_sessions_drop_out_of_the_list(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    middleware = SessionMiddleware(
        text_app(view), secret_key=SECRET, store=server_store, max_age=600
    )
    devices = track_devices(middleware)
    assert devices.index is not None
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    clock.advance(400)
    phone.get("/login?user=ann")
    if isinstance(server_store, RedisStore | PostgresStore):
        # These servers keep their own clock: let the laptop's record expire for real.
        (laptops,) = [d for d in devices.sessions_of("ann") if d.user_agent == "laptop"]
        (entry,) = [e for e in devices.index.index_list("s:ann") if e.handle == laptops.handle]
        if isinstance(server_store, RedisStore):
            server_store.client.pexpire(redis_record_name(server_store, entry.key), 50)
            time.sleep(0.2)
        else:
            postgres_sql(
                f"UPDATE {server_store.qualified} SET expires = now() WHERE key = %s",  # noqa: S608
                entry.key,
            )
    clock.advance(300)  # the laptop's session has expired, the phone's has not
    assert [d.user_agent for d in devices.sessions_of("ann")] == ["phone"]
    # The dead entry is gone from the index itself, not just hidden.
    assert len(devices.index.index_list(user_token("ann"))) == 1
    if isinstance(server_store, RedisStore):
        name = server_store._user_key(user_token("ann"))
        assert server_store.client.hlen(name) == 1
        assert 0 < server_store.client.ttl(name) <= 2 * 600


def test_a_user_id_is_one_user_whatever_its_type() -> None:
    # Flask-Login records get_id() (a str), Django the primary key (an int): an admin
    # tool passing either form finds, and ends, the same sessions.
    middleware, devices = make(LRUStore())
    ann = browser(middleware, "a")
    ann.get("/login?user=42")  # a str "42"
    assert [d.user_agent for d in devices.sessions_of(42)] == ["a"]
    assert devices.revoke_all(42) == 1
    assert ann.get("/me").text == "anon"


def test_a_custom_store_without_the_index_still_works_and_tracking_says_why_not() -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=DictStore())
    client = Client(middleware)
    client.get("/login?user=ann")
    assert client.get("/me").text == "ann"
    with pytest.raises(ConfigurationError, match="SessionIndex"):
        track_devices(middleware)


def test_cookie_sessions_need_a_revocation_store() -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    with pytest.raises(ConfigurationError, match="cannot be revoked before they expire"):
        track_devices(middleware)


def test_device_functions_without_tracking_say_how_to_turn_it_on() -> None:
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore()))
    client.get("/login?user=ann")
    with pytest.raises(ConfigurationError, match="track_devices"):
        client.get("/devices")


# -- revocation is final, even for a request in flight ----------------------------------


@pytest.mark.parametrize("action", ["write", "regenerate", "refresh", "read"])
def test_a_revoked_sessions_request_in_flight_cannot_resurrect_it(
    server_store: ServerSessionStore, clock: Clock, action: str
) -> None:
    loaded, revoked = threading.Event(), threading.Event()

    def slow(request: Request) -> Any:
        if request.path == "/slow":
            assert current_user() is not None  # loaded while still valid
            loaded.set()
            assert revoked.wait(10)
            if action == "write":
                session["late"] = True
            elif action == "regenerate":
                session.regenerate()
            return "done"
        return view(request)

    middleware = SessionMiddleware(
        text_app(slow), secret_key=SECRET, store=server_store, max_age=3600, refresh_interval=60
    )
    track_devices(middleware)
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    phones = next(d["handle"] for d in devices_of(laptop) if not d["current"])
    if action == "refresh":
        clock.advance(120)  # the in-flight request will renew the idle timeout
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(phone.get("/slow")))
    worker.start()
    assert loaded.wait(10)
    assert laptop.get(f"/revoke?handle={phones}").text == "True"
    revoked.set()
    worker.join(10)
    assert result[0].text == "done"
    assert phone.get("/me").text == "anon"
    assert [d["ua"] for d in devices_of(laptop)] == ["laptop"]


def test_many_racing_requests_cannot_outlive_log_out_everywhere(
    server_store: ServerSessionStore,
) -> None:
    def busy(request: Request) -> Any:
        if request.path == "/busy":
            session["n"] = session.get("n", 0) + 1
            if session["n"] % 3 == 0:
                session.regenerate()
            return "ok"
        return view(request)

    middleware, _ = make(server_store, busy)
    keeper = browser(middleware, "keeper")
    keeper.get("/login?user=ann")
    others = [browser(middleware, f"other {n}") for n in range(4)]
    for client in others:
        client.get("/login?user=ann")
    go, stop = threading.Event(), threading.Event()
    answered = threading.Semaphore(0)

    def hammer(client: Client) -> None:
        go.wait()
        while not stop.is_set():
            client.get("/busy")
            answered.release()
            # A pause between requests, as a browser's. Threads that never block
            # starve the one sending the logout of the GIL (CPython keeps handing
            # it among threads that release it often): their regenerated ids then
            # fill the LRU store until it evicts the keeper's own session.
            time.sleep(0.001)

    threads = [threading.Thread(target=hammer, args=(c,)) for c in others]
    for thread in threads:
        thread.start()
    go.set()
    try:
        for _ in range(3 * len(others)):  # the race is on: requests are in flight
            assert answered.acquire(timeout=10)
        keeper.get("/everywhere")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert [c.get("/me").text for c in others] == ["anon"] * 4
    assert [d["ua"] for d in devices_of(keeper)] == ["keeper"]


# -- cookie sessions, with a revocation store ---------------------------------------


class CountingIndex(SQLiteStore):
    """An SQLiteStore used only for its stamps, counting the lookups."""

    def __init__(self, path: Path) -> None:
        super().__init__(path / "stamps.sqlite3")
        self.lookups = 0

    def get_not_before(self, user: str) -> float | None:
        self.lookups += 1
        return super().get_not_before(user)


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
def test_cookie_sessions_are_revoked_by_a_not_before_stamp(encrypt: bool, tmp_path: Path) -> None:
    stamps = CountingIndex(tmp_path)
    middleware = SessionMiddleware(
        text_app(view), secret_key=SECRET, store=CookieStore(encrypt=encrypt)
    )
    track_devices(middleware, revocation_store=stamps)
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    copied = phone.get_cookie("session")
    assert laptop.get("/everywhere").text == "-1"
    assert laptop.get("/me").text == "ann"
    assert phone.get("/me").text == "anon"
    # A copy of the phone's cookie made before the revocation is refused too.
    assert copied is not None
    thief = browser(middleware, "thief")
    thief.set_cookie("session", copied.value)
    assert thief.get("/me").text == "anon"
    # A new login afterwards works.
    phone.get("/login?user=ann")
    assert phone.get("/me").text == "ann"


def test_the_stamp_is_looked_up_once_per_logged_in_cookie_request_only(tmp_path: Path) -> None:
    stamps = CountingIndex(tmp_path)
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    track_devices(middleware, revocation_store=stamps)
    anonymous, laptop = browser(middleware, "a"), browser(middleware, "b")
    anonymous.get("/write")
    anonymous.get("/write")
    assert stamps.lookups == 0
    laptop.get("/login?user=ann")
    before = stamps.lookups
    laptop.get("/me")
    laptop.get("/write")
    assert stamps.lookups == before + 2


def test_listing_cookie_sessions_is_refused_with_a_reason(tmp_path: Path) -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    track_devices(middleware, revocation_store=SQLiteStore(tmp_path / "stamps.sqlite3"))
    laptop = browser(middleware, "laptop")
    laptop.get("/login?user=ann")
    with pytest.raises(ConfigurationError, match="server-side store"):
        laptop.get("/devices")


def test_a_schema_1_sqlite_file_gains_the_index_in_place(tmp_path: Path) -> None:
    import sqlite3

    from wsgisession.stores import sqlite as sqlite_module

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(sqlite_module._SCHEMA_1)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    app, devices = make(SQLiteStore(path))
    laptop = browser(app, "laptop")
    laptop.get("/login?user=ann")
    assert [d.user_agent for d in devices.sessions_of("ann")] == ["laptop"]


# -- sessions that logged in before tracking was turned on (issue 25, item 4) ----------


def tracked_after_restart(store: Any, tmp_path: Path) -> tuple[SessionMiddleware, Devices]:
    """The same app and store, restarted with tracking on (a stamp store for cookies)."""
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    if isinstance(store, CookieStore):
        stamps = SQLiteStore(tmp_path / "stamps.sqlite3")
        return middleware, track_devices(middleware, revocation_store=stamps)
    return middleware, track_devices(middleware)


def test_a_login_made_before_tracking_was_on_ends_with_log_out_everywhere(
    store: Any, tmp_path: Path
) -> None:
    untracked = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    old_laptop = browser(untracked, "old laptop")
    old_laptop.get("/login?user=ann")
    assert old_laptop.get("/me").text == "ann"
    # An incident: the app is restarted with tracking on, and ann logs out everywhere.
    tracked, _ = tracked_after_restart(store, tmp_path)
    old_laptop.application = tracked
    phone = browser(tracked, "phone")
    phone.get("/login?user=ann")
    phone.get("/everywhere")
    assert old_laptop.get("/me").text == "anon"
    assert phone.get("/me").text == "ann"
    # A login afterwards, in the same browser, is not caught by the stamp.
    old_laptop.get("/login?user=ann")
    assert old_laptop.get("/me").text == "ann"


def test_revoke_all_from_an_admin_tool_ends_a_login_made_before_tracking_was_on(
    store: Any, tmp_path: Path
) -> None:
    untracked = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    old_laptop = browser(untracked, "old laptop")
    old_laptop.get("/login?user=ann")
    tracked, devices = tracked_after_restart(store, tmp_path)
    old_laptop.application = tracked
    devices.revoke_all("ann")
    assert old_laptop.get("/me").text == "anon"


def test_a_login_made_before_tracking_is_listed_from_its_next_request_and_revocable(
    server_store: ServerSessionStore, tmp_path: Path
) -> None:
    untracked = SessionMiddleware(text_app(view), secret_key=SECRET, store=server_store)
    old_laptop = browser(untracked, "old laptop")
    old_laptop.get("/login?user=ann")
    tracked, devices = tracked_after_restart(server_store, tmp_path)
    old_laptop.application = tracked
    assert old_laptop.get("/me").text == "ann"  # still logged in, now a device
    phone = browser(tracked, "phone")
    phone.get("/login?user=ann")
    listed = devices_of(phone)
    assert sorted(d["ua"] for d in listed) == ["old laptop", "phone"]
    laptops = next(d["handle"] for d in listed if d["ua"] == "old laptop")
    assert phone.get(f"/revoke?handle={laptops}").text == "True"
    assert old_laptop.get("/me").text == "anon"
    assert [d.user_agent for d in devices.sessions_of("ann")] == ["phone"]


# -- one id form, and no success claimed for work not done (issue 25, item 6) -----------


def test_revoke_all_on_a_cookie_store_ends_the_sessions_of_the_id_in_either_form(
    tmp_path: Path,
) -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    devices = track_devices(middleware, revocation_store=SQLiteStore(tmp_path / "s.sqlite3"))
    laptop = browser(middleware, "laptop")
    laptop.get("/login?user=42")  # recorded as the str "42", as Flask-Login does
    assert devices.revoke_all(42) == -1  # the stamp is set; cookie sessions are not counted
    assert laptop.get("/me").text == "anon"


# -- a revocation store must be shared by every worker (issue 25, item 7) ---------------


def test_an_in_process_revocation_store_is_refused_with_the_way_out() -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    with pytest.raises(ConfigurationError, match="one worker only") as refused:
        track_devices(middleware, revocation_store=LRUStore())
    assert "SQLiteStore" in str(refused.value)
    with pytest.raises(ConfigurationError, match="revocation_store must be") as wrong:
        track_devices(middleware, revocation_store=CookieStore())  # type: ignore[arg-type]
    assert "LRUStore" not in str(wrong.value)
