"""Hostile forms before any login: refused fast, within RequestLimits (issue 16, item 3).

``CsrfMiddleware``, ``param()``, ``body()`` and a guard's ``ctx.request.form`` read
the body before the application, for anyone. The review's inputs (200,000
multipart parts, 8 million urlencoded fields) cost seconds and hundreds of MB
before; ``benchmarks/form_dos.py`` measures them, these tests pin the behaviour:
a ``413`` before parsing, the limits configurable, an anonymous form never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.test import Client

from wsgisession import (
    CsrfMiddleware,
    Guard,
    RequestLimits,
    RequestScope,
    SessionMiddleware,
    body,
    csrf_token,
    optional_param,
    param,
)
from wsgisession.errors import ConfigurationError

from ..conftest import SECRET, text_app


class UnreadableInput:
    """A ``wsgi.input`` that fails the test if anything reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read

    def __iter__(self) -> Any:
        raise AssertionError("the body was read")


def unreadable_body(length: int) -> dict[str, Any]:
    """Environ keys for a body of *length* bytes that must not be read."""
    return {"wsgi.input": UnreadableInput(), "CONTENT_LENGTH": str(length)}


def urlencoded(fields: int) -> dict[str, Any]:
    return {
        "data": "&".join(f"f{i}=x" for i in range(fields)),
        "content_type": "application/x-www-form-urlencoded",
    }


def multipart(parts: int, *, filename: bool = True) -> dict[str, Any]:
    disposition = 'form-data; name="f"' + ('; filename="a"' if filename else "")
    part = f"--b\r\nContent-Disposition: {disposition}\r\n\r\nx\r\n".encode()
    return {"data": part * parts + b"--b--\r\n", "content_type": "multipart/form-data; boundary=b"}


def param_client(limits: RequestLimits | None = None) -> Client:
    return Client(RequestScope(text_app(lambda r: repr(optional_param("f0"))), limits=limits))


def csrf_client(limits: RequestLimits | None = None) -> tuple[Client, str]:
    """A client whose session has a CSRF secret, and a valid token for it."""
    app = SessionMiddleware(
        CsrfMiddleware(text_app(lambda r: csrf_token() if r.method == "GET" else "reached")),
        secret_key=SECRET,
        limits=limits,
    )
    client = Client(app)
    return client, client.get("/").text


# -- the defaults are werkzeug's: 1,000 parts, 500,000 bytes of form data ------


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(urlencoded, id="urlencoded"),
        pytest.param(multipart, id="multipart-files"),
        pytest.param(lambda n: multipart(n, filename=False), id="multipart-fields"),
    ],
)
def test_param_refuses_a_form_of_more_than_1000_parts_with_413(make_body: Any) -> None:
    client = param_client()
    assert client.post("/", **make_body(1000)).status_code == 200
    assert client.post("/", **make_body(1001)).status_code == 413
    assert client.post("/", **make_body(20_000)).status_code == 413


def test_the_review_s_8_million_field_body_is_refused_from_its_length_unread() -> None:
    response = param_client().post(
        "/",
        content_type="application/x-www-form-urlencoded",
        environ_overrides=unreadable_body(16 * 1024 * 1024),
    )
    assert response.status_code == 413


def test_a_urlencoded_body_over_max_form_memory_size_is_a_413() -> None:
    client = param_client()
    assert client.post("/", data={"f0": "x" * 400_000}).status_code == 200
    assert client.post("/", data={"f0": "x" * 600_000}).status_code == 413


def test_body_refuses_a_form_of_more_than_1000_parts_with_413() -> None:
    @dataclass
    class Anything:
        f0: str = ""

    client = Client(RequestScope(text_app(lambda r: repr(body(Anything)))))
    assert client.post("/", **urlencoded(1001)).status_code == 413
    assert client.post("/", **multipart(1001)).status_code == 413


def test_a_guard_reading_the_form_is_held_to_the_limits() -> None:
    def test(ctx: Any) -> bool:
        return ctx.request.form.get("f0") == "x"

    client = Client(SessionMiddleware(Guard(text_app(lambda r: "ok"), test), secret_key=SECRET))
    assert client.post("/", **urlencoded(10)).status_code == 200
    assert client.post("/", **urlencoded(1001)).status_code == 413


# -- CsrfMiddleware -------------------------------------------------------------


def test_an_anonymous_form_post_is_refused_without_reading_the_body() -> None:
    client = Client(
        SessionMiddleware(CsrfMiddleware(text_app(lambda r: "reached")), secret_key=SECRET)
    )
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=b"):
        response = client.post(
            "/", content_type=content_type, environ_overrides=unreadable_body(13_000_000)
        )
        assert response.status_code == 403
        assert "no token" in response.text


def test_csrf_refuses_a_form_over_the_limits_with_413_even_with_a_valid_token() -> None:
    client, token = csrf_client()
    small = {"csrf_token": token, **{f"f{i}": "x" for i in range(10)}}
    assert client.post("/", data=small).text == "reached"
    many = "&".join([f"csrf_token={token}", *(f"f{i}=x" for i in range(1001))])
    response = client.post("/", data=many, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert client.post("/", **multipart(1001)).status_code == 413


# -- the limits are settings -----------------------------------------------------


def test_raised_limits_let_a_bigger_form_through() -> None:
    limits = RequestLimits(max_form_parts=5000, max_form_memory_size=2_000_000)
    assert param_client(limits).post("/", **urlencoded(3000)).text == "'x'"
    assert param_client(limits).post("/", data={"f0": "x" * 1_000_000}).status_code == 200
    client, token = csrf_client(limits)
    many = "&".join([f"csrf_token={token}", *(f"f{i}=x" for i in range(3000))])
    response = client.post("/", data=many, content_type="application/x-www-form-urlencoded")
    assert response.text == "reached"


def test_csrf_middleware_limits_apply_to_the_csrf_check() -> None:
    app = SessionMiddleware(
        CsrfMiddleware(
            text_app(lambda r: csrf_token() if r.method == "GET" else "reached"),
            limits=RequestLimits(max_form_parts=5),
        ),
        secret_key=SECRET,
    )
    client = Client(app)
    token = client.get("/").text
    assert client.post("/", data={"csrf_token": token, "a": "1"}).text == "reached"
    many = {"csrf_token": token, **{f"f{i}": "x" for i in range(10)}}
    assert client.post("/", data=many).status_code == 413


@pytest.mark.parametrize(
    "options",
    [
        {"max_form_parts": 0},
        {"max_body_size": -1},
        {"max_form_memory_size": "500kb"},
        {"max_decimal_digits": True},
    ],
)
def test_a_bad_limit_fails_at_start_up_naming_it(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        RequestLimits(**options)


def test_limits_that_are_not_request_limits_fail_at_start_up() -> None:
    app = text_app(lambda r: "")
    with pytest.raises(ConfigurationError, match="RequestLimits"):
        SessionMiddleware(app, secret_key=SECRET, limits={"max_form_parts": 5})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="RequestLimits"):
        RequestScope(app, limits=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="RequestLimits"):
        CsrfMiddleware(app, limits="big")  # type: ignore[arg-type]


def test_a_flask_view_reading_request_form_after_param_keeps_working_within_limits() -> None:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/")
    def view() -> str:
        return f"{optional_param('f0')} {request.form['f0']} {len(request.form)}"

    client = Client(RequestScope(app))
    assert client.post("/", **urlencoded(1000)).text == "x x 1000"
    assert client.post("/", **urlencoded(1001)).status_code == 413


@pytest.mark.parametrize("max_form_parts", [5, 5000])
def test_flask_init_app_limits_apply_to_param(max_form_parts: int) -> None:
    import flask

    from wsgisession.contrib.flask import init_app

    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.post("/")
    def first_field() -> str:
        return repr(param("f0"))

    init_app(app, limits=RequestLimits(max_form_parts=max_form_parts))
    response = Client(app).post("/", data={f"f{i}": "x" for i in range(2000)})
    assert response.status_code == (413 if max_form_parts == 5 else 200)
