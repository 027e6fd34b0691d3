"""The request scope (`at`, `at_json`, RequestScope) and typed request parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextvars import Context
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from io import BytesIO
from typing import Any
from uuid import UUID

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, encode_multipart
from werkzeug.wrappers import Request, Response

from wsgisession import (
    RequestLimits,
    RequestScope,
    SessionMiddleware,
    at,
    at_json,
    optional_param,
    param,
    params,
    register_converter,
    set_path_params,
    unregister_converter,
)

from .conftest import SECRET, session_client, text_app


def scope_client(view: Any, limits: RequestLimits | None = None) -> Client:
    return Client(RequestScope(text_app(view), limits=limits))


def multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """Client keyword arguments for a multipart body held in memory.

    The Client's own multipart encoding spools to a temporary file that it closes
    through ``environ["wsgi.input"]``, which form parsing has replaced by then.
    """
    boundary, body = encode_multipart(fields)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


# -- at ----------------------------------------------------------------------


def _layout() -> str:
    # Code far from the view, with no request passed in.
    return f"My Site - {at['title']}" if "title" in at else "My Site"


def test_at_carries_data_from_view_to_layout_within_a_request() -> None:
    def view(request: Request) -> str:
        if request.args.get("title"):
            at["title"] = request.args["title"]
        return _layout()

    client = scope_client(view)
    assert client.get("/?title=Articles").text == "My Site - Articles"
    assert client.get("/").text == "My Site"  # fresh for the next request


def test_at_works_under_session_middleware_too() -> None:
    def view(request: Request) -> str:
        at["n"] = 1
        at["n"] += 1
        return f"{dict(at)} {len(at)}"

    assert session_client(view).get("/").text == "{'n': 2} 1"


def test_request_that_never_uses_at_creates_nothing() -> None:
    seen: list[dict[str, Any]] = []

    def view(request: Request) -> str:
        seen.append(request.environ)
        return "ok"

    scope_client(view).get("/")
    assert not any(key.startswith("wsgisession.") for key in seen[0])


def test_at_is_readable_while_the_body_streams_and_gone_after_close() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        at["user"] = "alice"
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"hello "
            yield at["user"].encode()

        return body()

    def run() -> None:
        client = Client(LintMiddleware(RequestScope(app)))
        with client.get("/") as response:
            assert response.get_data() == b"hello alice"
        with pytest.raises(RuntimeError, match="no request is being handled"):
            at["user"]

    Context().run(run)  # a fresh context: nothing bound by earlier tests


def test_at_outside_a_request_says_what_to_wrap() -> None:
    with pytest.raises(RuntimeError, match="RequestScope"):
        Context().run(lambda: at.get("x"))


def test_request_scope_passes_lint_and_keeps_the_apps_response() -> None:
    def view(request: Request) -> Response:
        at["x"] = "y"
        return Response(at["x"], status=201, headers={"X-Test": "1"})

    client = Client(LintMiddleware(RequestScope(LintMiddleware(text_app(view)))))
    with client.get("/") as response:
        assert response.status_code == 201
        assert response.headers["X-Test"] == "1"
        assert response.get_data() == b"y"


# -- at_json -----------------------------------------------------------------


@dataclass
class User:
    login: str
    name: str


def test_at_json_keeps_a_script_breakout_inside_the_string() -> None:
    attack = "</script><script>alert(1)//<!-- & ' \u2028\u2029"

    def view(request: Request) -> Response:
        at["comment"] = attack
        return Response(f"<script>var c = {at_json('comment')};</script>", mimetype="text/html")

    page = scope_client(view).get("/").text
    assert page.count("</script>") == 1
    assert page.count("<script>") == 1
    literal = page.removeprefix("<script>var c = ").removesuffix(";</script>")
    assert not set(literal) & set("<>&'\u2028\u2029")
    assert json.loads(literal) == attack


def test_at_json_writes_dataclasses_dates_and_uuids() -> None:
    uid = UUID(int=7)

    def view(request: Request) -> str:
        at["user"] = User("admin", "Admin")
        at["meta"] = {"on": date(2024, 5, 1), "id": uid, "price": Decimal("9.90"), "t": (1,)}
        return f"{at_json('user')}\n{at_json('meta')}"

    user, meta = scope_client(view).get("/").text.split("\n")
    assert json.loads(user) == {"login": "admin", "name": "Admin"}
    assert json.loads(meta) == {"on": "2024-05-01", "id": str(uid), "price": "9.90", "t": [1]}


def test_at_json_result_is_markup_so_templates_do_not_escape_it() -> None:
    def view(request: Request) -> str:
        at["s"] = "a<b"
        value = at_json("s")
        return value.__html__()

    assert scope_client(view).get("/").text == '"a\\u003cb"'


def test_at_json_of_a_missing_key_or_an_unknown_type_fails_clearly() -> None:
    def view(request: Request) -> str:
        with pytest.raises(KeyError):
            at_json("nothing")
        at["obj"] = object()
        with pytest.raises(TypeError, match="object"):
            at_json("obj")
        return "checked"

    assert scope_client(view).get("/").text == "checked"


# -- params: where they come from -------------------------------------------


def echo_params(request: Request) -> str:
    return repr(params(request.args.get("name", "n")))


def test_query_parameters_convert() -> None:
    def view(request: Request) -> str:
        return repr((param("q"), param("page", int), optional_param("size", int), params("tag")))

    response = scope_client(view).get("/?q=hats&page=2&tag=a&tag=b")
    assert response.text == "('hats', 2, None, ['a', 'b'])"


def test_form_body_beats_query_and_replaces_the_whole_list() -> None:
    response = scope_client(echo_params).post("/?n=1&n=2", data={"n": "3"})
    assert response.text == "['3']"


def test_query_list_is_used_when_the_body_lacks_the_name() -> None:
    response = scope_client(echo_params).post("/?n=1&n=2", data={"other": "x"})
    assert response.text == "['1', '2']"


def test_path_beats_body_and_query_via_wsgiorg_routing_args() -> None:
    inner = text_app(echo_params)

    def router(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgiorg.routing_args"] = ((), {"n": "p"})
        return inner(environ, start_response)

    response = Client(RequestScope(router)).post("/?n=q", data={"n": "b"})
    assert response.text == "['p']"


def test_set_path_params_for_routers_without_routing_args() -> None:
    def view(request: Request) -> str:
        set_path_params({"id": "42", "tags": ["x", "y"], "ready": True})
        return repr((param("id", int), params("tags"), param("ready", bool)))

    assert scope_client(view).post("/?id=1", data={"id": "2"}).text == "(42, ['x', 'y'], True)"


def test_multipart_fields_and_uploaded_file() -> None:
    def view(request: Request) -> str:
        avatar = param("avatar", FileStorage)
        return f"{param('name')} {avatar.filename} {avatar.read().decode()}"

    response = scope_client(view).post(
        "/",
        **multipart({"name": "alice", "avatar": FileStorage(BytesIO(b"PNG..."), "me.png")}),
    )
    assert response.text == "alice me.png PNG..."


def test_empty_file_input_counts_as_missing() -> None:
    def view(request: Request) -> str:
        return repr((optional_param("avatar", FileStorage), params("avatar", FileStorage)))

    response = scope_client(view).post(
        "/",
        **multipart({"avatar": FileStorage(BytesIO(b""), "")}),
    )
    assert response.text == "(None, [])"


def test_param_leaves_the_body_readable_by_the_app() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        name = param("name")
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {body.decode()}".encode()]

    client = Client(LintMiddleware(RequestScope(LintMiddleware(app))))
    with client.post("/", data={"name": "alice"}) as response:
        assert response.get_data(as_text=True) == "alice name=alice"


def test_werkzeug_request_form_still_sees_the_body_after_param() -> None:
    def view(request: Request) -> str:
        return f"{param('name')} {request.form['name']}"

    assert scope_client(view).post("/", data={"name": "alice"}).text == "alice alice"


# -- params: conversion ------------------------------------------------------


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Size(IntEnum):
    SMALL = 1
    LARGE = 2


@pytest.mark.parametrize(
    ("type_", "text", "expected"),
    [
        pytest.param(str, "x y", "x y", id="str"),
        pytest.param(int, "-42", -42, id="int"),
        pytest.param(float, "2.5", 2.5, id="float"),
        *(pytest.param(bool, t, True, id=f"bool-{t}") for t in ("true", "1", "YES", "On")),
        *(pytest.param(bool, t, False, id=f"bool-{t}") for t in ("False", "0", "no", "OFF")),
        pytest.param(Decimal, "19.90", Decimal("19.90"), id="Decimal"),
        pytest.param(
            UUID,
            "12345678-1234-5678-1234-567812345678",
            UUID(int=0x12345678123456781234567812345678),
            id="UUID",
        ),
        pytest.param(date, "2024-02-29", date(2024, 2, 29), id="date"),
        pytest.param(
            datetime,
            "2024-02-29T10:30:00+02:00",
            datetime(2024, 2, 29, 10, 30, tzinfo=timezone(timedelta(hours=2))),
            id="datetime",
        ),
        pytest.param(Color, "green", Color.GREEN, id="enum-by-value"),
        pytest.param(Color, "RED", Color.RED, id="enum-by-name"),
        pytest.param(Size, "2", Size.LARGE, id="int-enum-by-value"),
        pytest.param(Size, "SMALL", Size.SMALL, id="int-enum-by-name"),
    ],
)
def test_converters(type_: type[Any], text: str, expected: Any) -> None:
    def view(request: Request) -> str:
        value = param("v", type_)
        assert type(value) is type(expected)
        return repr(value)

    response = scope_client(view).get("/", query_string={"v": text})
    assert response.status_code == 200
    assert response.text == repr(expected)


@pytest.mark.parametrize(
    ("type_", "text"),
    [
        pytest.param(int, "abc", id="int"),
        pytest.param(int, "1.5", id="int-fraction"),
        pytest.param(int, "9" * 5000, id="int-too-long"),
        pytest.param(float, "nan", id="float-nan"),
        pytest.param(float, "1e999", id="float-inf"),
        pytest.param(bool, "maybe", id="bool"),
        pytest.param(Decimal, "1,5", id="Decimal"),
        pytest.param(Decimal, "Infinity", id="Decimal-inf"),
        pytest.param(UUID, "not-a-uuid", id="UUID"),
        pytest.param(date, "2024-02-30", id="date"),
        pytest.param(datetime, "yesterday", id="datetime"),
        pytest.param(Color, "purple", id="enum"),
    ],
)
def test_unconvertible_value_is_a_400_naming_parameter_value_and_type(
    type_: type[Any], text: str
) -> None:
    response = scope_client(lambda request: repr(param("v", type_))).get(
        "/", query_string={"v": text}
    )
    assert response.status_code == 400
    assert response.text.startswith(f"Parameter 'v': cannot convert {text[:50]!r}"[:40])
    assert response.text.endswith(f" to {type_.__name__}\n")


def test_bad_param_messages_are_exact_plain_text() -> None:
    client = scope_client(lambda request: repr(param("n", int)))

    missing = client.get("/")
    assert missing.status_code == 400
    assert missing.text == "Missing parameter: n\n"
    assert missing.mimetype == "text/plain"
    assert missing.headers["X-Content-Type-Options"] == "nosniff"

    bad = client.get("/?n=abc")
    assert bad.status_code == 400
    assert bad.text == "Parameter 'n': cannot convert 'abc' to int\n"


def test_long_bad_value_is_cut_short_in_the_message() -> None:
    response = scope_client(lambda request: repr(param("n", int))).get(
        "/", query_string={"n": "x" * 10_000}
    )
    assert response.status_code == 400
    assert response.text == f"Parameter 'n': cannot convert '{'x' * 50}...' to int\n"


def test_blank_value_is_missing_for_typed_params_but_a_value_for_str() -> None:
    def view(request: Request) -> str:
        return repr((optional_param("age", int), params("age", int), param("name")))

    assert scope_client(view).get("/?age=&name=").text == "(None, [], '')"
    assert scope_client(view).get("/?age=&age=3&name=").text == "(3, [3], '')"
    response = scope_client(lambda request: repr(param("age", int))).get("/?age=")
    assert response.text == "Missing parameter: age\n"


def plain_count_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A plain WSGI app: nothing in it catches a BadParam."""
    count = param("count", int)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(count).encode()]


def test_bad_param_escaping_a_plain_app_under_session_middleware_is_a_400() -> None:
    client = Client(LintMiddleware(SessionMiddleware(plain_count_app, secret_key=SECRET)))
    with client.get("/?count=x") as response:
        assert response.status_code == 400
        assert response.get_data() == b"Parameter 'count': cannot convert 'x' to int\n"
        assert "Set-Cookie" not in response.headers


def test_registered_converter_is_used(converters: Any) -> None:
    @dataclass(frozen=True)
    class Point:
        x: int
        y: int

        @classmethod
        def parse(cls, text: str) -> Point:
            x, y = text.split(",")
            return cls(int(x), int(y))

    converters(Point, Point.parse)
    client = scope_client(lambda request: repr(params("p", Point)))

    assert client.get("/?p=1,2&p=3,4").text == repr([Point(1, 2), Point(3, 4)])
    bad = client.get("/?p=12")
    assert bad.status_code == 400
    assert bad.text == "Parameter 'p': cannot convert '12' to Point\n"


def test_unknown_type_is_a_type_error_even_when_the_param_is_missing() -> None:
    def view(request: Request) -> str:
        with pytest.raises(TypeError, match="register_converter"):
            optional_param("anything", complex)
        return "checked"

    assert scope_client(view).get("/").text == "checked"


def test_param_outside_a_request_says_what_to_wrap() -> None:
    with pytest.raises(RuntimeError, match="RequestScope"):
        Context().run(param, "x")


# -- bad input is never a 500 ------------------------------------------------


def test_non_utf8_query_string_is_not_an_error() -> None:
    client = scope_client(lambda request: repr(param("n")))
    response = client.get("/", environ_overrides={"QUERY_STRING": "n=caf\xe9"})
    assert response.status_code == 200
    assert response.text == "'caf%E9'"


def test_malformed_multipart_body_is_a_400() -> None:
    response = scope_client(lambda request: repr(optional_param("n"))).post(
        "/",
        data=b"--boundary\r\nContent-Disposition: form-data\r\n\r\nbroken",
        content_type="multipart/form-data; boundary=boundary",
    )
    assert response.status_code == 400


def test_oversized_body_is_a_413() -> None:
    limits = RequestLimits(max_body_size=1000)
    client = scope_client(lambda request: repr(optional_param("n")), limits)
    assert client.post("/", data={"n": "x" * 900}).text == "'" + "x" * 900 + "'"
    assert client.post("/", data={"n": "x" * 2000}).status_code == 413
    upload = multipart({"n": FileStorage(BytesIO(b"x" * 2000), "n.bin")})
    assert client.post("/", **upload).status_code == 413


# -- real Flask and Django apps ----------------------------------------------


def flask_client(*, handle_400: bool = False) -> Client:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/form")
    def form() -> str:
        return f"{param('name')} {request.form['name']}"

    @app.post("/upload")
    def upload() -> str:
        avatar = param("avatar", FileStorage)
        again = request.files["avatar"]
        return f"{avatar.filename} {avatar.read().decode()} {again.read().decode()}"

    @app.get("/number")
    def number() -> str:
        return str(param("n", int) * 2)

    if handle_400:

        @app.errorhandler(400)
        def bad_request(error: Exception) -> tuple[str, int]:
            return f"flask handled {type(error).__name__}: {error}", 400

    return Client(RequestScope(app))


def test_flask_view_still_sees_request_form_after_param() -> None:
    assert flask_client().post("/form", data={"name": "alice"}).text == "alice alice"


def test_flask_view_still_sees_request_files_after_param() -> None:
    response = flask_client().post(
        "/upload", **multipart({"avatar": FileStorage(BytesIO(b"GIF89a"), "a.gif")})
    )
    assert response.text == "a.gif GIF89a GIF89a"


def test_param_works_after_the_flask_view_read_request_form_first() -> None:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/")
    def view() -> str:
        # Flask-WTF and the like parse the form before the view calls param().
        return f"{request.form['name']} {param('name')}"

    assert Client(RequestScope(app)).post("/", data={"name": "bob"}).text == "bob bob"


def test_param_after_the_app_consumed_a_large_upload_says_what_to_do() -> None:
    def view(request: Request) -> str:
        request.files["f"].close()  # werkzeug parsed the whole body itself
        with pytest.raises(RuntimeError, match=r"call param\(\) before request\.form"):
            param("f", FileStorage)
        return "checked"

    # The app's reads are copied up to max_form_memory_size; an upload is not.
    response = scope_client(view, RequestLimits(max_form_memory_size=100)).post(
        "/", **multipart({"f": FileStorage(BytesIO(b"x" * 1000), "f.bin")})
    )
    assert response.text == "checked"


def test_flask_renders_bad_param_natively() -> None:
    response = flask_client().get("/number?n=abc")
    assert response.status_code == 400
    assert response.text == "Parameter 'n': cannot convert 'abc' to int\n"

    handled = flask_client(handle_400=True).get("/number")
    assert handled.status_code == 400
    assert handled.text == "flask handled BadParam: Missing parameter: n"

    assert flask_client().get("/number?n=21").text == "42"


def test_django_view_still_sees_request_post_and_files_after_param() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .djangoapp import django_app

    def form(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"{param('name')} {request.POST['name']}")

    def upload(request: HttpRequest) -> HttpResponse:
        ours = param("avatar", FileStorage).read().decode()
        return HttpResponse(f"{ours} {request.FILES['avatar'].read().decode()}")

    client = Client(RequestScope(django_app([path("form", form), path("upload", upload)])))

    assert client.post("/form", data={"name": "alice"}).text == "alice alice"
    response = client.post(
        "/upload", **multipart({"avatar": FileStorage(BytesIO(b"data"), "a.bin")})
    )
    assert response.text == "data data"


def test_bad_param_from_a_plain_app_is_rendered_by_request_scope_under_lint() -> None:
    client = Client(LintMiddleware(RequestScope(LintMiddleware(plain_count_app))))
    with client.get("/?count=many") as response:
        assert response.status_code == 400
        assert response.get_data() == b"Parameter 'count': cannot convert 'many' to int\n"
    with client.get("/?count=3") as response:
        assert response.get_data() == b"3"


def test_unregister_converter_restores_the_built_in() -> None:
    register_converter(int, lambda text: 42)
    try:
        assert scope_client(lambda request: repr(param("n", int))).get("/?n=7").text == "42"
    finally:
        unregister_converter(int)
    assert scope_client(lambda request: repr(param("n", int))).get("/?n=7").text == "7"
