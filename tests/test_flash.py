"""Flash messages: shown once, by level, across a redirect, with every store."""

from __future__ import annotations

import logging
import secrets
from contextvars import Context
from typing import Any

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.utils import redirect
from werkzeug.wrappers import Request

from wsgisession import (
    ClientSessionStore,
    CookieStore,
    FlashLevel,
    FlashMessage,
    RequestScope,
    ServerSessionStore,
    SessionMiddleware,
    flash,
    get_flashed_message,
    get_flashed_messages,
    peek_flashed_messages,
    session,
)
from wsgisession.errors import SessionTooLarge

from .conftest import SECRET, session_client, text_app


def _show(messages: list[FlashMessage]) -> str:
    return ";".join(f"{m.category}:{m}" for m in messages)


def flash_view(request: Request) -> Any:
    """POST /flash?m=..&level=.. adds a message; /all, /level, /min, /one, /peek read."""
    args = request.args
    if request.path == "/flash":
        for message in args.getlist("m"):
            flash(message, int(args.get("level", FlashLevel.INFO)))
        return redirect(request.host_url + "all") if "redirect" in args else "ok"
    if request.path == "/all":
        return _show(get_flashed_messages())
    if request.path == "/level":
        return _show(get_flashed_messages(int(args["level"])))
    if request.path == "/min":
        return _show(get_flashed_messages(min_level=int(args["level"])))
    if request.path == "/one":
        message = get_flashed_message(int(args["level"]))
        return "none" if message is None else _show([message])
    if request.path == "/peek":
        return _show(peek_flashed_messages())
    return "?"


@pytest.fixture
def client(store: ClientSessionStore | ServerSessionStore) -> Client:
    return session_client(flash_view, store=store)


def test_message_set_before_redirect_is_shown_once(client: Client) -> None:
    response = client.get("/flash?m=Saved&redirect=1", follow_redirects=True)
    assert response.text == "info:Saved"
    assert client.get("/all").text == ""


def test_reading_one_level_leaves_the_others_for_later(client: Client) -> None:
    client.get(f"/flash?m=disk+low&level={FlashLevel.WARNING}")
    client.get(f"/flash?m=saved&level={FlashLevel.SUCCESS}")
    client.get(f"/flash?m=failed&level={FlashLevel.ERROR}")
    client.get(f"/flash?m=saved+again&level={FlashLevel.SUCCESS}")

    assert client.get(f"/level?level={FlashLevel.SUCCESS}").text == (
        "success:saved;success:saved again"
    )
    assert client.get(f"/level?level={FlashLevel.SUCCESS}").text == ""
    assert client.get("/all").text == "warning:disk low;error:failed"


def test_min_level_takes_that_level_and_above(client: Client) -> None:
    for level in (FlashLevel.DEBUG, FlashLevel.ERROR, FlashLevel.INFO, FlashLevel.CRITICAL):
        client.get(f"/flash?m={level.name}&level={level}")

    assert client.get(f"/min?level={FlashLevel.ERROR}").text == "error:ERROR;critical:CRITICAL"
    assert client.get("/all").text == "debug:DEBUG;info:INFO"


def test_get_flashed_message_returns_oldest_of_level_or_none(client: Client) -> None:
    client.get(f"/flash?m=first&m=second&level={FlashLevel.INFO}")

    assert client.get(f"/one?level={FlashLevel.INFO}").text == "info:first"
    assert client.get(f"/one?level={FlashLevel.ERROR}").text == "none"
    assert client.get(f"/one?level={FlashLevel.INFO}").text == "info:second"
    assert client.get(f"/one?level={FlashLevel.INFO}").text == "none"


def test_peek_does_not_remove(client: Client) -> None:
    client.get("/flash?m=a&m=b")

    assert client.get("/peek").text == "info:a;info:b"
    assert client.get("/peek").text == "info:a;info:b"
    assert client.get("/all").text == "info:a;info:b"
    assert client.get("/peek").text == ""


def test_custom_int_levels_are_kept_and_compared() -> None:
    client = session_client(flash_view)
    client.get("/flash?m=audit&level=35")

    assert client.get("/min?level=31").text == "35:audit"


def test_reading_when_nothing_was_flashed_sends_no_cookie() -> None:
    client = session_client(flash_view)

    response = client.get("/all")
    assert response.text == ""
    assert "Set-Cookie" not in response.headers


def test_last_message_read_deletes_an_otherwise_empty_session_cookie() -> None:
    client = session_client(flash_view)
    client.get("/flash?m=bye")

    response = client.get("/all")
    assert response.text == "info:bye"
    assert "Max-Age=0" in response.headers["Set-Cookie"]


def test_messages_are_plain_data_in_the_session() -> None:
    def view(request: Request) -> str:
        flash("Hello", FlashLevel.SUCCESS)
        return repr(dict(session))

    assert session_client(view).get("/").text == "{'_wsgisession.flash': [[25, 'Hello']]}"


def test_malformed_stored_messages_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def view(request: Request) -> str:
        if request.path == "/plant":
            session["_wsgisession.flash"] = [["not", "a message"], [20, "real"]]
            return "ok"
        return _show(get_flashed_messages())

    client = session_client(view)
    client.get("/plant")
    with caplog.at_level(logging.WARNING, "wsgisession"):
        assert client.get("/").text == "info:real"
    assert "unknown format" in caplog.text


def test_flash_outside_session_middleware_says_to_wrap_the_app() -> None:
    def view(request: Request) -> str:
        flash("lost")
        return "unreachable"

    # A fresh context: an earlier test's unclosed response may still be bound here.
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        Context().run(Client(text_app(view)).get, "/")
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        Context().run(Client(RequestScope(text_app(view))).get, "/")
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        Context().run(get_flashed_messages)


def test_too_many_messages_in_a_cookie_session_raise_session_too_large() -> None:
    def view(request: Request) -> str:
        for _ in range(100):
            flash(secrets.token_urlsafe(60))  # random text: compression cannot save it
        return "ok"

    with pytest.raises(SessionTooLarge):
        session_client(view, store=CookieStore()).get("/")


def test_non_str_message_is_a_type_error() -> None:
    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="must be a str"):
            flash(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="FlashLevel"):
            flash("x", "warning")  # type: ignore[arg-type]
        return "checked"

    assert session_client(view).get("/").text == "checked"


def test_flash_across_a_redirect_under_lint() -> None:
    app = LintMiddleware(SessionMiddleware(LintMiddleware(text_app(flash_view)), secret_key=SECRET))
    client = Client(app)
    with client.get("/flash?m=Linted&redirect=1", follow_redirects=True) as response:
        assert response.get_data(as_text=True) == "info:Linted"
    with client.get("/all") as response:
        assert response.get_data(as_text=True) == ""
