"""A cap on concurrent sessions per user: ``track_devices(max_per_user=N, when_full=...)``.

At each login the user's sessions are counted and the new one indexed in one atomic
step per store (LRU's lock, SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock,
one Redis script): ``"end_oldest"`` ends the least recently seen sessions so that N
remain, and tells their owners why on their next request; ``"refuse"`` answers the
login with a ``409``. Eight logins at once never leave more than N sessions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    CookieStore,
    LRUStore,
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionEvent,
    SessionMiddleware,
    SQLiteStore,
    TooManySessions,
    current_user,
    ended_elsewhere,
    flash,
    from_config,
    get_flashed_messages,
    login,
    logout,
    session,
    sessions_of,
    track_devices,
)
from wsgisession.access.devices import Devices, tracking_options, user_token
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError, HTTPError
from wsgisession.events import EventName
from wsgisession.stores import IndexEntry, SessionIndex

from .conftest import (
    SECRET,
    Clock,
    drop_store,
    postgres_sql,
    postgres_test_store,
    redis_records,
    redis_test_store,
    text_app,
)
from .djangoapp import django_app

#: What the app of these tests flashes to a browser whose login the cap ended.
ENDED = "You were logged out: you logged in on another device."


def view(request: Request) -> Any:
    path = request.path
    if path == "/login":
        try:
            login(request.args["user"])
        except TooManySessions as refused:
            # The app's own page for the refusal, with the 409 kept.
            return Response(f"refused: {refused.limit}", status=refused.code)
        return "in"
    if path == "/logout":
        logout()
        return "out"
    if path == "/devices":
        listed = [{"ua": d.user_agent, "current": d.current} for d in sessions_of()]
        return Response(json.dumps(listed), content_type="application/json")
    if path == "/visit":
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])
    if ended_elsewhere():
        flash(ENDED)
    if path == "/page":  # the flash shows on the page after
        return "page"
    user = current_user()
    shown = " | ".join(str(message) for message in get_flashed_messages())
    return f"{'anon' if user is None else user.user_id} [{shown}]"


def make(store: Any, **options: Any) -> tuple[SessionMiddleware, Devices]:
    middleware = SessionMiddleware(
        text_app(view), secret_key=SECRET, store=store, max_age=3600, refresh_interval=60
    )
    return middleware, track_devices(middleware, **options)


class Browser(Client):
    """A test client that sends its own User-Agent."""

    def __init__(self, app: Any, agent: str) -> None:
        super().__init__(app)
        self.agent = agent

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("environ_base", {"HTTP_USER_AGENT": self.agent})
        return super().open(*args, **kwargs)


def browser(app: Any, agent: str) -> Browser:
    return Browser(app, agent)


def agents(client: Client) -> list[str]:
    return sorted(device["ua"] for device in client.get("/devices").json or [])


# -- "end_oldest" ----------------------------------------------------------------------


def test_a_login_beyond_the_cap_ends_the_least_recently_seen_session(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    app, _ = make(server_store, max_per_user=2)
    laptop, phone, tablet = (browser(app, name) for name in ("laptop", "phone", "tablet"))
    laptop.get("/login?user=ann")
    clock.advance(10)
    phone.get("/login?user=ann")
    clock.advance(120)
    assert laptop.get("/").text == "ann []"  # due for renewal: the laptop is seen now
    tablet.get("/login?user=ann")
    # The phone logged in after the laptop, but was seen last before it.
    assert phone.get("/").text.startswith("anon")
    assert laptop.get("/").text == "ann []"
    assert tablet.get("/").text == "ann []"
    assert agents(laptop) == ["laptop", "tablet"]


def test_the_cap_keeps_n_sessions_with_the_new_one_when_it_was_lowered(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    before, _ = make(server_store)  # no cap yet
    clients = [browser(before, f"device {n}") for n in range(4)]
    for client in clients:
        client.get("/login?user=ann")
        clock.advance(10)
    after, _ = make(server_store, max_per_user=2)  # restarted with a cap
    newest = browser(after, "newest")
    newest.get("/login?user=ann")
    for client in clients:
        client.application = after  # type: ignore[misc]
    assert [c.get("/").text.split()[0] for c in clients] == ["anon", "anon", "anon", "ann"]
    assert agents(newest) == ["device 3", "newest"]


def test_logging_in_again_on_the_same_browser_does_not_count_twice(
    server_store: ServerSessionStore,
) -> None:
    app, _ = make(server_store, max_per_user=2)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    phone.get("/login?user=ann")
    assert laptop.get("/").text == "ann []"
    assert agents(phone) == ["laptop", "phone"]


def test_other_users_do_not_count(server_store: ServerSessionStore) -> None:
    app, _ = make(server_store, max_per_user=1)
    ann, bob = browser(app, "ann's"), browser(app, "bob's")
    ann.get("/login?user=ann")
    bob.get("/login?user=bob")
    assert (ann.get("/").text, bob.get("/").text) == ("ann []", "bob []")


def test_the_owner_of_an_ended_session_is_told_why_once_in_a_fresh_session(
    server_store: ServerSessionStore, clock: Clock
) -> None:
    app, _ = make(server_store, max_per_user=1)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    ended = laptop.get_cookie("session")
    assert ended is not None
    clock.advance(10)
    phone.get("/login?user=ann")
    # The next request, whatever it is, is anonymous and learns why.
    assert laptop.get("/page").text == "page"
    fresh = laptop.get_cookie("session")
    assert fresh is not None
    assert fresh.value.split(".")[0] != ended.value.split(".")[0]  # a new id
    assert laptop.get("/").text == f"anon [{ENDED}]"
    assert laptop.get("/").text == "anon []"  # said once
    # The ended id leads nowhere now: not to the session, not to the note again.
    thief = browser(app, "thief")
    thief.set_cookie("session", ended.value)
    assert thief.get("/").text == "anon []"
    assert phone.get("/").text == "ann []"  # the new login is not told anything


def test_the_note_waits_until_the_app_reads_it(server_store: ServerSessionStore) -> None:
    # A guard may refuse the ended session's next requests before the page that
    # shows flash messages runs: the note stays until ended_elsewhere() reads it.
    def guarded(request: Request) -> Any:
        if request.path == "/private":
            return "ok" if current_user() else Response("log in", status=401)
        return view(request)

    middleware = SessionMiddleware(text_app(guarded), secret_key=SECRET, store=server_store)
    track_devices(middleware, max_per_user=1)
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    assert laptop.get("/private").status_code == 401
    assert laptop.get("/private").status_code == 401
    assert laptop.get("/").text == f"anon [{ENDED}]"
    assert laptop.get("/private").status_code == 401


def test_a_session_ended_by_the_cap_gives_a_revoked_event_with_the_reason(
    server_store: ServerSessionStore,
) -> None:
    app, devices = make(server_store, max_per_user=1)
    events: list[SessionEvent] = []
    app.on_event(events.append)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    (laptops,) = devices.sessions_of("ann")
    phone.get("/login?user=ann")
    revoked = [event for event in events if event.name is EventName.REVOKED]
    assert revoked == [SessionEvent(EventName.REVOKED, "ann", laptops.handle, "session cap")]


@pytest.mark.parametrize("action", ["write", "regenerate", "refresh", "read"])
def test_a_request_in_flight_cannot_bring_back_a_session_the_cap_ended(
    server_store: ServerSessionStore, clock: Clock, action: str
) -> None:
    loaded, ended = threading.Event(), threading.Event()

    def slow(request: Request) -> Any:
        if request.path == "/slow":
            assert current_user() is not None  # loaded while still logged in
            loaded.set()
            assert ended.wait(10)
            if action == "write":
                session["late"] = True
            elif action == "regenerate":
                session.regenerate()
            return "done"
        return view(request)

    middleware = SessionMiddleware(
        text_app(slow), secret_key=SECRET, store=server_store, max_age=3600, refresh_interval=60
    )
    track_devices(middleware, max_per_user=1)
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    if action == "refresh":
        clock.advance(120)  # the request in flight will renew the idle timeout
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(laptop.get("/slow")))
    worker.start()
    assert loaded.wait(10)
    phone.get("/login?user=ann")  # ends the laptop's session
    ended.set()
    worker.join(10)
    assert result[0].text == "done"
    assert laptop.get("/").text.startswith("anon")
    assert agents(phone) == ["phone"]


def test_ended_elsewhere_says_nothing_to_a_session_that_was_not_ended(
    server_store: ServerSessionStore,
) -> None:
    untracked = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=server_store))
    assert untracked.get("/").text == "anon []"
    app, _ = make(server_store, max_per_user=2)
    laptop = browser(app, "laptop")
    laptop.get("/login?user=ann")
    assert laptop.get("/").text == "ann []"


ENCRYPTING = {
    "sqlite": lambda tmp_path: SQLiteStore(tmp_path / "sessions.sqlite3", encrypt=True),
    "redis": lambda tmp_path: redis_test_store(encrypt=True),
    "postgres": lambda tmp_path: postgres_test_store(encrypt=True),
}


def raw_values(store: ServerSessionStore) -> list[bytes]:
    """Every stored session value, as the store keeps it."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            return [bytes(v) for (v,) in conn.execute("SELECT value FROM wsgisession_fields")]
    if isinstance(store, RedisStore):
        return [value for fields in redis_records(store).values() for value in fields.values()]
    assert isinstance(store, PostgresStore)
    rows = postgres_sql(f"SELECT data::text FROM {store.qualified}")  # noqa: S608
    return [str(data).encode() for (data,) in rows]


@pytest.mark.parametrize("name", list(ENCRYPTING))
def test_the_note_is_sealed_like_the_records_on_an_encrypting_store(
    name: str, tmp_path: Path, clock: Clock
) -> None:
    # The note is written through the store the middleware calls, the view that seals
    # each value: read back like any record, and never kept in the clear.
    store = ENCRYPTING[name](tmp_path)
    try:
        app, _ = make(store, max_per_user=1)
        laptop, phone = browser(app, "laptop"), browser(app, "phone")
        laptop.get("/login?user=ann")
        clock.advance(10)
        phone.get("/login?user=ann")
        values = raw_values(store)
        assert values
        assert not any(b"session cap" in value for value in values)
        assert laptop.get("/").text == f"anon [{ENDED}]"
        assert phone.get("/").text == "ann []"
    finally:
        drop_store(store)


# -- "refuse" --------------------------------------------------------------------------


def test_refuse_answers_a_login_beyond_the_cap_with_409_and_stays_logged_out(
    server_store: ServerSessionStore,
) -> None:
    app, devices = make(server_store, max_per_user=2, when_full="refuse")
    laptop, phone, tablet = (browser(app, name) for name in ("laptop", "phone", "tablet"))
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    tablet.get("/visit")  # an anonymous session, before the login
    answer = tablet.get("/login?user=ann")
    assert (answer.status_code, answer.text) == (409, "refused: 2")
    assert tablet.get_cookie("session") is None  # the session ended with the login
    assert tablet.get("/").text == "anon []"
    assert [d.user_agent for d in devices.sessions_of("ann")].count("tablet") == 0
    assert (laptop.get("/").text, phone.get("/").text) == ("ann []", "ann []")
    # Room is made by logging out elsewhere; then the login goes through.
    phone.get("/logout")
    assert tablet.get("/login?user=ann").text == "in"
    assert agents(tablet) == ["laptop", "tablet"]


def test_refuse_lets_the_app_offer_to_end_the_other_sessions(
    server_store: ServerSessionStore,
) -> None:
    def here(request: Request) -> Any:
        if request.path == "/login-here":  # after checking the password again
            devices.revoke_all(request.args["user"])
            login(request.args["user"])
            return "in"
        return view(request)

    middleware = SessionMiddleware(text_app(here), secret_key=SECRET, store=server_store)
    devices = track_devices(middleware, max_per_user=1, when_full="refuse")
    laptop, phone = browser(middleware, "laptop"), browser(middleware, "phone")
    laptop.get("/login?user=ann")
    assert phone.get("/login?user=ann").status_code == 409
    assert phone.get("/login-here?user=ann").text == "in"
    assert (laptop.get("/").text, phone.get("/").text) == ("anon []", "ann []")


def test_the_refusal_renders_as_a_409_page_or_json() -> None:
    def bare(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        login("ann")  # the refusal escapes to the middleware, which renders it
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"in"]

    middleware = SessionMiddleware(bare, secret_key=SECRET, store=LRUStore())
    track_devices(middleware, max_per_user=1, when_full="refuse")
    assert Client(middleware).get("/").text == "in"
    refused = Client(middleware).get("/")
    assert refused.status_code == 409
    assert refused.text.startswith("409 Conflict: You are logged in on 1 device already")
    as_json = Client(middleware).get("/", headers={"Accept": "application/json"})
    assert as_json.status_code == 409
    assert as_json.json is not None
    assert as_json.json["error"] == "too_many_sessions"
    error = TooManySessions(3)
    assert isinstance(error, HTTPError)
    assert error.code == 409
    assert "3 devices" in error.description


# -- concurrent logins -----------------------------------------------------------------


@pytest.mark.parametrize("when_full", ["end_oldest", "refuse"])
def test_eight_logins_at_once_never_leave_more_sessions_than_the_cap(
    server_store: ServerSessionStore, when_full: str
) -> None:
    app, devices = make(server_store, max_per_user=3, when_full=when_full)
    clients = [browser(app, f"device {n}") for n in range(8)]
    for client in clients:
        client.get("/visit")  # each has a session already, as a login form gives it
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def log_in(client: Client) -> None:
        start.wait(10)
        statuses.append(client.get("/login?user=ann").status_code)

    threads = [threading.Thread(target=log_in, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == ([200] * 8 if when_full == "end_oldest" else [200] * 3 + [409] * 5)
    assert len(devices.sessions_of("ann")) == 3
    assert [client.get("/").text.split()[0] for client in clients].count("ann") == 3


# -- what it takes -----------------------------------------------------------------------


def test_the_cap_needs_a_store_that_can_count_sessions(tmp_path: Path) -> None:
    cookies = SessionMiddleware(text_app(view), secret_key=SECRET, store=CookieStore())
    with pytest.raises(ConfigurationError, match="can neither count a user's sessions"):
        track_devices(
            cookies, revocation_store=SQLiteStore(tmp_path / "stamps.sqlite3"), max_per_user=3
        )

    class NoAdmit(LRUStore):
        index_admit = SessionIndex.index_admit  # the base class's: not implemented

    custom = SessionMiddleware(text_app(view), secret_key=SECRET, store=NoAdmit())
    with pytest.raises(ConfigurationError, match=r"implement SessionIndex\.index_admit"):
        track_devices(custom, max_per_user=3)
    track_devices(custom)  # without a cap, the index suffices


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_per_user": 0}, "max_per_user must be a positive whole number or None, not 0"),
        ({"max_per_user": True}, "max_per_user must be"),
        ({"max_per_user": "3"}, "max_per_user must be"),
        ({"when_full": "oldest"}, 'when_full must be "end_oldest" or "refuse"'),
    ],
)
def test_bad_cap_options_fail_at_start_up(options: dict[str, Any], message: str) -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore())
    with pytest.raises(ConfigurationError, match=message):
        track_devices(middleware, **options)


def test_the_track_devices_setting_names_the_option_it_does_not_know() -> None:
    assert tracking_options({"max_per_user": 3, "when_full": "refuse"}) == {
        "max_per_user": 3,
        "when_full": "refuse",
    }
    with pytest.raises(ConfigurationError, match="did you mean 'max_per_user'"):
        tracking_options({"max_per_users": 3})


class ConflictingIndex(LRUStore):
    """An LRUStore whose second admission fails once, as when another login got in."""

    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def index_admit(
        self,
        user: str,
        handle: str,
        key: str,
        info: bytes,
        ttl: int,
        *,
        limit: int,
        evict: Collection[str] = (),
    ) -> list[IndexEntry] | None:
        self.tries += 1
        if self.tries == 2:
            return None
        return super().index_admit(user, handle, key, info, ttl, limit=limit, evict=evict)


def test_a_login_that_lost_a_race_counts_again_and_makes_room() -> None:
    store = ConflictingIndex()
    app, _ = make(store, max_per_user=2)
    laptop, phone = browser(app, "laptop"), browser(app, "phone")
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    assert store.tries == 3
    assert len(store.index_list(user_token("ann"))) == 2
    assert phone.get("/").text == "ann []"


# -- the same options from every settings surface ----------------------------------------

CAP = {"max_per_user": 3, "when_full": "refuse"}


@pytest.fixture
def trackers(monkeypatch: pytest.MonkeyPatch) -> list[Devices]:
    """Every Devices made meanwhile, by any surface."""
    made: list[Devices] = []
    original = Devices.__init__

    def spy(self: Devices, store: object, **options: Any) -> None:
        original(self, store, **options)
        made.append(self)

    monkeypatch.setattr(Devices, "__init__", spy)
    return made


def build(surface: str, tracking: Any, tmp_path: Path) -> None:
    """A middleware with the ``track_devices`` setting *tracking*, through *surface*."""
    settings = {"secret_key": SECRET, "store": "memory://", "track_devices": tracking}
    if surface == "dict":
        from_config(plain_app, settings, environ={})
    elif surface == "toml":
        options = ", ".join(f"{name} = {json.dumps(value)}" for name, value in tracking.items())
        path = tmp_path / "sessions.toml"
        path.write_text(
            f'[wsgisession]\nsecret_key = "{SECRET}"\nstore = "memory://"\n'
            f"track_devices = {{{options}}}\n"
        )
        from_config(plain_app, path, environ={})
    elif surface == "env":
        environ = {"WSGISESSION_TRACK_DEVICES": json.dumps(tracking)}
        from_config(plain_app, {"secret_key": SECRET, "store": "memory://"}, environ=environ)
    elif surface == "flask":
        flask_app = flask.Flask(__name__)
        flask_app.secret_key = SECRET
        init_app(flask_app, store="memory://", track_devices=tracking).session_middleware()
    else:
        django_app(
            [],
            ["wsgisession.contrib.django.SessionMiddleware"],
            WSGISESSION={"store": "memory://", "track_devices": tracking},
        )


def plain_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


SURFACES = ["dict", "toml", "env", "flask", "django"]


@pytest.mark.parametrize("surface", SURFACES)
def test_every_settings_surface_takes_the_cap(
    surface: str, trackers: list[Devices], tmp_path: Path
) -> None:
    build(surface, CAP, tmp_path)
    assert (trackers[-1].max_per_user, trackers[-1].when_full) == (3, "refuse")


@pytest.mark.parametrize("surface", SURFACES)
def test_every_settings_surface_names_a_misspelt_option(surface: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'max_per_user'"):
        build(surface, {"max_per_users": 3}, tmp_path)


@pytest.mark.parametrize("surface", SURFACES)
def test_every_settings_surface_checks_the_cap(surface: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match='when_full must be "end_oldest" or "refuse"'):
        build(surface, {"max_per_user": 3, "when_full": "reject"}, tmp_path)
