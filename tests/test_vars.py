"""SessionVar and RequestVar: typed, uniquely keyed values in the session and `at`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    ClientSessionStore,
    RequestScope,
    RequestVar,
    ServerSessionStore,
    SessionVar,
    at,
    session,
)

from .conftest import session_client, text_app


class SVar:
    username = SessionVar(str)
    is_admin = SessionVar(bool, default=False)
    last_seen = SessionVar(datetime)
    cart = SessionVar(list[int])
    visitor = SessionVar(UUID)
    score = SessionVar(float)


class Other:
    username = SessionVar(str)  # same attribute name, other class: another key


class RVar:
    title = RequestVar(str, default="My Site")
    user_id = RequestVar(int)


def svar_view(request: Request) -> Any:
    """/set?name=.. stores; / reports; /logout removes."""
    if request.path == "/set":
        SVar.username.set(request.args["name"])
        return "set"
    if request.path == "/logout":
        return repr(SVar.username.remove())
    return repr((SVar.username.is_defined, SVar.username.get(None), SVar.is_admin.get()))


@pytest.fixture
def client(store: ClientSessionStore | ServerSessionStore) -> Client:
    return session_client(svar_view, store=store)


def test_session_var_persists_across_requests(client: Client) -> None:
    assert client.get("/").text == "(False, None, False)"
    client.get("/set?name=alice")
    assert client.get("/").text == "(True, 'alice', False)"


def test_remove_returns_the_old_value_then_none(client: Client) -> None:
    client.get("/set?name=alice")
    assert client.get("/logout").text == "'alice'"
    assert client.get("/logout").text == "None"
    assert client.get("/").text == "(False, None, False)"


def test_values_go_through_the_session_serializer(
    store: ClientSessionStore | ServerSessionStore,
) -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    visitor = uuid4()

    def view(request: Request) -> str:
        if request.path == "/set":
            SVar.last_seen.set(when)
            SVar.visitor.set(visitor)
            SVar.cart.set([3, 4])
            return "set"
        return repr((SVar.last_seen.get(), SVar.visitor.get(), SVar.cart.get()))

    client = session_client(view, store=store)
    client.get("/set")
    assert client.get("/").text == repr((when, visitor, [3, 4]))


def test_get_without_value_or_default_raises_lookup_error_naming_the_variable() -> None:
    def view(request: Request) -> str:
        with pytest.raises(LookupError, match=r"tests\.test_vars\.SVar\.username is not set"):
            SVar.username.get()
        return "checked"

    assert session_client(view).get("/").text == "checked"


def test_key_is_module_class_and_attribute_so_names_never_collide() -> None:
    def view(request: Request) -> str:
        SVar.username.set("alice")
        Other.username.set("bob")
        return repr((SVar.username.get(), Other.username.get(), sorted(session)))

    assert session_client(view).get("/").text == repr(
        ("alice", "bob", ["tests.test_vars.Other.username", "tests.test_vars.SVar.username"])
    )


def test_explicit_key_is_used_as_is() -> None:
    theme = SessionVar(str, key="theme")

    def view(request: Request) -> str:
        theme.set("dark")
        return repr(dict(session))

    assert session_client(view).get("/").text == "{'theme': 'dark'}"


def test_set_with_the_wrong_type_is_a_type_error() -> None:
    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="holds a str, not an int"):
            SVar.username.set(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="holds a list, not a tuple"):
            SVar.cart.set((1, 2))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="holds a float, not a bool"):
            SVar.score.set(True)
        SVar.score.set(3)  # an int is a float, as for mypy
        return repr(dict(session))

    assert session_client(view).get("/").text == "{'tests.test_vars.SVar.score': 3}"


def test_stored_value_of_another_type_reads_as_undefined_and_keeps_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def view(request: Request) -> str:
        if request.path == "/old-deploy":
            session["tests.test_vars.SVar.username"] = 42  # the type used to be int
            session["cart"] = [1]
            return "stored"
        return repr((SVar.username.is_defined, SVar.username.get("?"), dict(session)))

    client = session_client(view)
    client.get("/old-deploy")
    with caplog.at_level(logging.WARNING, "wsgisession"):
        response = client.get("/")
    assert response.text == repr((False, "?", {"tests.test_vars.SVar.username": 42, "cart": [1]}))
    assert "holds an int, not a str" in caplog.text


def test_session_var_without_session_middleware_says_to_wrap_the_app() -> None:
    def view(request: Request) -> str:
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            SVar.username.get()
        return "checked"

    assert Client(RequestScope(text_app(view))).get("/").text == "checked"


def test_variable_without_owner_or_key_fails_at_first_use() -> None:
    loose = SessionVar(str)

    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="declare it as a class attribute"):
            loose.set("x")
        return "checked"

    assert session_client(view).get("/").text == "checked"


def test_one_variable_under_two_names_is_refused() -> None:
    with pytest.raises((TypeError, RuntimeError)) as excinfo:

        class Twice:
            a = b = SessionVar(str)

    # Python 3.11 wraps errors from __set_name__ in a RuntimeError.
    error = excinfo.value.__cause__ or excinfo.value
    assert "two names would share one value" in str(error)


def test_bad_declarations_are_type_errors() -> None:
    with pytest.raises(TypeError, match="must be a bool, not a str"):
        SessionVar(bool, default="no")
    with pytest.raises(TypeError, match="needs a class"):
        SessionVar("str")  # type: ignore[call-overload]


# -- RequestVar --------------------------------------------------------------


def _layout() -> str:
    return f"<title>{RVar.title.get()}</title>"


def test_request_var_carries_a_value_to_the_layout_for_one_request() -> None:
    def view(request: Request) -> str:
        if "title" in request.args:
            RVar.title.set(request.args["title"])
        return _layout()

    client = Client(RequestScope(text_app(view)))
    assert client.get("/?title=Articles").text == "<title>Articles</title>"
    assert client.get("/").text == "<title>My Site</title>"


def test_request_var_lives_in_at_and_is_checked_there() -> None:
    def view(request: Request) -> str:
        RVar.user_id.set(7)
        stored = dict(at)
        at["tests.test_vars.RVar.user_id"] = "7"  # someone wrote around the variable
        return repr((stored, RVar.user_id.is_defined, RVar.user_id.remove(), dict(at)))

    assert session_client(view).get("/").text == repr(
        ({"tests.test_vars.RVar.user_id": 7}, False, None, {})
    )


# -- static typing -----------------------------------------------------------


@pytest.mark.slow
def test_mypy_sees_exact_types() -> None:
    from mypy import api

    here = Path(__file__).parent
    out, err, status = api.run(["--strict", "--no-incremental", str(here / "typing_vars.py")])
    assert status == 0, out + err


@pytest.mark.slow
def test_mypy_rejects_values_of_the_wrong_type(tmp_path: Path) -> None:
    from mypy import api

    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from wsgisession import SessionVar, param\n"
        "class SVar:\n"
        "    username = SessionVar(str)\n"
        "SVar.username.set(1)\n"
        "n: int = SVar.username.get()\n"
        "s: str = param('page', int)\n"
    )
    out, err, status = api.run(["--strict", "--no-incremental", str(wrong)])
    assert status == 1, out + err
    assert 'Argument 1 to "set" of "_Var" has incompatible type "int"; expected "str"' in out
    assert (
        'Incompatible types in assignment (expression has type "str", variable has type "int")'
        in out
    )
    assert (
        'Incompatible types in assignment (expression has type "int", variable has type "str")'
        in out
    )
