"""Switching to wsgisession without logging anyone out: the migration reader.

A plain WSGI app with a reader of its own for its old scheme (the documented
interface), on every store. The Flask and Django readers are tested with their
frameworks in test_migration_flask.py and test_migration_django.py.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import SessionEvent, SessionMiddleware, session, track_devices
from wsgisession.errors import ConfigurationError, StoreUnavailable
from wsgisession.events import EventName
from wsgisession.migration import OldCookie

from .conftest import SECRET, Clock, set_cookies, text_app


class LegacyStore:
    """The old system: sessions by id in a dict, read once (``pop``) as a store would."""

    cookie = OldCookie("legacy_sid", path="/", domain=None)
    client_side = False

    def __init__(self, sessions: dict[str, dict[str, Any]] | None = None) -> None:
        self.sessions = dict(sessions or {})
        self.reads = 0
        self.down = False
        self.lock = threading.Lock()

    def read(self, value: str) -> dict[str, Any] | None:
        self.reads += 1
        if self.down:
            raise StoreUnavailable("the legacy store is down")
        with self.lock:
            return self.sessions.pop(value, None)

    def remaining(self) -> int | None:
        return len(self.sessions)


class LegacyCookie:
    """An old client-side scheme: the cookie holds the data (here: 'key=value' pairs)."""

    cookie = OldCookie("session")
    client_side = True

    def read(self, value: str) -> dict[str, Any] | None:
        if not value.startswith("legacy|"):
            return None  # not one of its cookies: tampered, or not the old system's
        return dict(pair.split("=", 1) for pair in value[len("legacy|") :].split("&"))

    def remaining(self) -> int | None:
        return None


def cart(request: Request) -> str:
    if request.args.get("touch") == "no":
        return "untouched"
    if "add" in request.args:
        session.setdefault("cart", []).append(request.args["add"])
    return ",".join(session.get("cart", [])) + f"|user={session.get('_user_id')}"


def client_for(store: Any, reader: Any, **options: Any) -> tuple[Client, SessionMiddleware]:
    sessions = SessionMiddleware(
        text_app(cart), secret_key=SECRET, store=store, migrate_from=reader, **options
    )
    return Client(sessions), sessions


def test_an_old_session_is_carried_over_once_with_a_new_id_and_the_old_cookie_deleted(
    store: Any,
) -> None:
    legacy = LegacyStore({"old-id-1": {"cart": ["apple"], "_user_id": "7"}})
    browser, sessions = client_for(store, legacy)
    browser.set_cookie("legacy_sid", "old-id-1")

    first = browser.get("/")
    assert first.text == "apple|user=7"
    cookies = set_cookies(first)
    assert any(c.startswith("session=") and "Max-Age=1209600" in c for c in cookies)
    assert any(c.startswith("legacy_sid=;") and "Max-Age=0" in c for c in cookies)
    assert browser.get_cookie("legacy_sid") is None

    # Our cookie from now on: the session goes on, and it can change.
    assert browser.get("/?add=pear").text == "apple,pear|user=7"
    assert browser.get("/").text == "apple,pear|user=7"
    assert legacy.remaining() == 0
    assert sessions.migration is not None
    assert sessions.migration.status().done


def test_a_replayed_old_cookie_gets_a_fresh_session(store: Any) -> None:
    legacy = LegacyStore({"old-id-1": {"cart": ["apple"]}})
    victim, _ = client_for(store, legacy)
    victim.set_cookie("legacy_sid", "old-id-1")
    assert victim.get("/").text == "apple|user=None"

    # The same old cookie, sent again by a copy of the browser (or a thief).
    replay, _ = client_for(store, legacy)
    replay.set_cookie("legacy_sid", "old-id-1")
    assert replay.get("/").text == "|user=None"


def test_an_unknown_or_expired_old_session_is_not_carried_over(store: Any) -> None:
    browser, _ = client_for(store, LegacyStore())
    browser.set_cookie("legacy_sid", "expired-or-made-up")
    response = browser.get("/")
    assert response.text == "|user=None"
    assert set_cookies(response) == []  # nothing written: no cookie of ours either


def test_a_request_that_leaves_the_session_alone_does_not_read_the_old_one() -> None:
    legacy = LegacyStore({"old-id-1": {"cart": ["apple"]}})
    browser, _ = client_for(None, legacy)
    browser.set_cookie("legacy_sid", "old-id-1")
    assert browser.get("/?touch=no").text == "untouched"
    assert legacy.reads == 0
    assert browser.get("/").text == "apple|user=None"


def test_a_value_the_session_cannot_hold_is_left_out_and_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    legacy = LegacyStore({"old-id-1": {"cart": ["apple"], "connection": object()}})
    browser, _ = client_for(None, legacy)
    browser.set_cookie("legacy_sid", "old-id-1")
    with caplog.at_level(logging.INFO, logger="wsgisession"):
        assert browser.get("/").text == "apple|user=None"
    assert "left out the old session key 'connection'" in caplog.text
    assert "carried a session over from LegacyStore (1 by this process)" in caplog.text


def test_an_old_store_outage_answers_503_and_keeps_the_old_session() -> None:
    legacy = LegacyStore({"old-id-1": {"cart": ["apple"]}})
    legacy.down = True
    browser, _ = client_for(None, legacy)
    browser.set_cookie("legacy_sid", "old-id-1")
    response = browser.get("/")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    legacy.down = False
    assert browser.get("/").text == "apple|user=None"


def test_an_old_cookie_of_our_cookie_s_name_is_replaced_by_ours(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    until = datetime.now(UTC) + timedelta(days=30)
    browser, _ = client_for(store, LegacyCookie(), migrate_until=until)
    browser.set_cookie("session", "legacy|cart=apple&_user_id=7")
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        first = browser.get("/")
    # The old value is a cart string (the old scheme's), carried over as it was.
    assert first.text == "a,p,p,l,e|user=7"
    (ours,) = set_cookies(first)
    assert ours.startswith("session=")
    assert "Max-Age=0" not in ours
    assert "invalid session cookie" not in caplog.text
    assert browser.get("/").text == "a,p,p,l,e|user=7"

    # A cookie that is neither ours nor the old system's is refused as before.
    stranger, _ = client_for(store, LegacyCookie(), migrate_until=until)
    stranger.set_cookie("session", "garbage")
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        assert stranger.get("/").text == "|user=None"
    assert "ignored an invalid session cookie" in caplog.text


def test_a_client_side_reader_needs_an_end_date_and_stops_after_it(clock: Clock) -> None:
    with pytest.raises(ConfigurationError, match="migrate_until is required"):
        SessionMiddleware(text_app(cart), secret_key=SECRET, migrate_from=LegacyCookie())
    with pytest.raises(ConfigurationError, match="more than 400 days away"):
        SessionMiddleware(
            text_app(cart),
            secret_key=SECRET,
            migrate_from=LegacyCookie(),
            migrate_until=datetime.now(UTC) + timedelta(days=500),
        )
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        SessionMiddleware(
            text_app(cart),
            secret_key=SECRET,
            migrate_from=LegacyCookie(),
            migrate_until=datetime(2027, 1, 1),
        )
    until = datetime.fromtimestamp(clock.now, UTC) + timedelta(days=14)
    browser, _ = client_for(None, LegacyCookie(), migrate_until=until)
    clock.advance(14 * 86400 + 1)
    browser.set_cookie("session", "legacy|cart=apple")
    assert browser.get("/").text == "|user=None"


def test_migrate_until_without_a_reader_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="migrate_until was given without"):
        SessionMiddleware(text_app(cart), secret_key=SECRET, migrate_until=datetime.now(UTC))


def test_a_carried_over_login_is_a_login_for_events_and_devices(server_store: Any) -> None:
    legacy = LegacyStore({"old-id-1": {"_user_id": "7"}, "old-id-2": {"_user_id": "7"}})
    browser, sessions = client_for(server_store, legacy)
    events: list[SessionEvent] = []
    sessions.on_event(events.append)
    devices = track_devices(sessions)
    browser.set_cookie("legacy_sid", "old-id-1")
    assert browser.get("/").text == "|user=7"
    assert [(e.name, e.user_id, e.reason) for e in events if e.reason == "migrated"] == [
        (EventName.MIGRATED, "7", "migrated"),
        (EventName.LOGGED_IN, "7", "migrated"),
    ]
    assert len(devices.sessions_of("7")) == 1

    # "Log out everywhere" covers it.
    devices.revoke_all("7")
    assert browser.get("/").text == "|user=None"


def test_the_reader_must_have_the_interface() -> None:
    with pytest.raises(ConfigurationError, match="must be a migration reader"):
        SessionMiddleware(text_app(cart), secret_key=SECRET, migrate_from=object())  # type: ignore[arg-type]


#: An app that still reads the old system's sessions, as a deployment would hold it.
MIGRATING_APP = """
from datetime import datetime, timedelta, timezone

from wsgisession import SessionMiddleware
from wsgisession.migration import OldCookie


class Legacy:
    cookie = OldCookie("legacy_sid")
    client_side = {client_side}

    def __init__(self):
        self.sessions = {{"a": {{"n": 1}}, "b": {{"n": 2}}}}

    def read(self, value):
        return self.sessions.pop(value, None)

    def remaining(self):
        return None if self.client_side else len(self.sessions)


def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]


app = SessionMiddleware(
    app,
    secret_key="{secret}",
    migrate_from=Legacy(),
    migrate_until=datetime.now(timezone.utc) + timedelta(days={days}),
)
"""


@pytest.mark.parametrize(
    ("client_side", "days", "expected"),
    [
        (False, 7, ["old sessions not carried over yet: 2", "not done: keep the reader"]),
        (True, 7, ["old cookies honoured until: ", "not done: keep the reader"]),
        (True, -1, ["done: the reader can be removed"]),
    ],
)
def test_the_command_line_says_when_the_reader_can_be_removed(
    client_side: bool,
    days: int,
    expected: list[str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wsgisession.cli import main

    module = f"migrating_{'client' if client_side else 'server'}_{days + 1}"
    (tmp_path / f"{module}.py").write_text(
        MIGRATING_APP.format(client_side=client_side, secret=SECRET, days=days)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["migration-status", f"{module}:app"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reading: Legacy ('legacy_sid' cookies)")
    for line in expected:
        assert line in out
