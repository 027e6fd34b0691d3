"""Session events: what a callback sees, and that it never sees a secret."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    EventName,
    SessionEvent,
    SessionMiddleware,
    current_user,
    login,
    logout,
    session,
    track_devices,
)
from wsgisession.errors import ConfigurationError, StoreUnavailable

from .conftest import SECRET, Clock, text_app
from .fakes import DictStore


def view(request: Request) -> Any:
    if request.path == "/login":
        login(request.args.get("user", "ann"))
    elif request.path == "/logout":
        logout()
    elif request.path == "/regen":
        session.regenerate()
    elif request.path == "/write":
        session["n"] = 1
    user = current_user()
    return "anon" if user is None else str(user.user_id)


def recorded(store: Any, **options: Any) -> tuple[Client, list[SessionEvent], SessionMiddleware]:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=store, **options)
    events: list[SessionEvent] = []
    middleware.on_event(events.append)
    return Client(middleware), events, middleware


def names(events: list[SessionEvent]) -> list[str]:
    return [event.name.value for event in events]


def test_a_login_lifecycle_gives_its_events_with_the_user(store: Any) -> None:
    client, events, _ = recorded(store)
    client.get("/write")
    client.get("/login")
    client.get("/regen")
    client.get("/logout")
    assert names(events) == ["created", "logged_in", "regenerated", "regenerated", "logged_out"]
    assert [e.user_id for e in events] == [None, "ann", "ann", "ann", "ann"]


def test_events_carry_the_device_handle_when_tracked(server_store: Any) -> None:
    client, events, middleware = recorded(server_store)
    track_devices(middleware)
    client.get("/login")
    handles = {e.handle for e in events if e.name is not EventName.CREATED}
    assert len(handles) == 1
    assert None not in handles


def test_no_event_ever_carries_the_session_id_or_its_data(store: Any) -> None:
    client, events, _ = recorded(store)
    client.get("/login")
    client.get("/regen")
    cookie = client.get_cookie("session")
    assert cookie is not None
    secret_parts = {part for part in cookie.value.split(".") if len(part) > 8}
    for event in events:
        text = repr(event)
        assert not any(part in text for part in secret_parts)
        assert "_wsgisession" not in text


def test_a_tampered_cookie_is_reported(store: Any) -> None:
    client, events, _ = recorded(store)
    client.set_cookie("session", "forged.value.here")
    assert client.get("/").text == "anon"
    assert names(events) == ["tampered"]


def test_an_expired_cookie_is_reported_with_the_reason(store: Any, clock: Clock) -> None:
    client, events, _ = recorded(store, max_age=60)
    client.get("/login")
    clock.advance(120)
    assert client.get("/").text == "anon"
    assert events[-1].name is EventName.EXPIRED
    assert events[-1].reason == "it was idle too long"


class BrokenStore(DictStore):
    def load(self, key: str) -> dict[str, bytes] | None:
        raise StoreUnavailable("down for the test")


def test_a_store_error_is_reported() -> None:
    store = BrokenStore()
    client, events, _ = recorded(store)
    store_ok = DictStore()
    # A cookie the broken store will be asked about:
    Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store_ok)).get("/login")
    good = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store_ok))
    good.get("/login")
    cookie = good.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value)
    assert client.get("/").status_code == 503
    assert names(events) == ["store_error"]
    assert events[0].reason == "StoreUnavailable"


def test_a_failing_callback_never_breaks_the_request(store: Any, caplog: Any) -> None:
    client, events, middleware = recorded(store)

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("audit log is down")

    middleware.on_event(broken)
    assert client.get("/login").text == "ann"
    assert "logged_in" in names(events)
    assert "session event callback failed" in caplog.text


def test_without_callbacks_the_middleware_holds_no_hooks(store: Any) -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    Client(middleware).get("/login")
    assert middleware._backend.hooks is None


def test_on_event_refuses_what_is_not_callable() -> None:
    middleware = SessionMiddleware(text_app(view), secret_key=SECRET)
    with pytest.raises(ConfigurationError, match="callable"):
        middleware.on_event("audit")  # type: ignore[arg-type]
