"""Typed, validated request bodies: body(), validate_body(), rules() and BadBody."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, IntEnum
from io import BytesIO
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import FileStorage
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    BadBody,
    FieldError,
    RequestLimits,
    RequestScope,
    SessionMiddleware,
    Validation,
    body,
    catch_http_errors,
    rules,
    validate_body,
)

from .conftest import SECRET, text_app
from .test_request import multipart


class Plan(Enum):
    FREE = "free"
    PRO = "pro"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    city: str = field(metadata=rules(min_length=1))
    zip: str = field(default="", metadata=rules(pattern=r"[0-9]{5}|"))


@dataclass
class Profile:
    name: str = field(metadata=rules(min_length=1, max_length=20))
    age: int = field(metadata=rules(ge=0, le=150))
    email: str = field(default="a@example.com", metadata=rules(email=True))
    plan: Plan = Plan.FREE
    tags: list[str] = field(default_factory=list)
    nickname: str | None = None
    address: Address | None = None


@dataclass
class Everything:
    n: int
    f: float
    b: bool
    d: Decimal
    u: UUID
    day: date
    at: datetime
    plan: Plan
    level: Level
    ids: list[int]
    scores: dict[str, float]
    extra: Any
    maybe: int | None


@dataclass
class Period:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end must not be before start")


@dataclass
class Booking:
    room: str
    period: Period


@dataclass(frozen=True)
class Point:
    x: int
    y: int

    @classmethod
    def parse(cls, text: str) -> Point:
        x, y = text.split(",")
        return cls(int(x), int(y))


@dataclass
class Shape:
    corners: list[Point]


def client_for(model: type[Any], limits: RequestLimits | None = None) -> Client:
    """A client whose app answers repr(body(model))."""
    return Client(RequestScope(text_app(lambda request: repr(body(model))), limits=limits))


def errors_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json["errors"]  # type: ignore[no-any-return]


# -- JSON --------------------------------------------------------------------


def test_json_body_becomes_the_dataclass_with_every_type_converted() -> None:
    seen: list[Everything] = []
    uid = UUID(int=7)
    client = Client(RequestScope(text_app(lambda request: seen.append(body(Everything)))))
    response = client.post(
        "/",
        json={
            "n": 3,
            "f": 2,
            "b": True,
            "d": 0.1,
            "u": str(uid),
            "day": "2024-02-29",
            "at": "2024-02-29T10:00:00+00:00",
            "plan": "pro",
            "level": 2,
            "ids": [1, "2"],
            "scores": {"math": 1.5},
            "extra": {"any": ["thing"]},
            "maybe": None,
        },
    )
    assert response.status_code == 200
    assert seen == [
        Everything(
            n=3,
            f=2.0,
            b=True,
            d=Decimal("0.1"),
            u=uid,
            day=date(2024, 2, 29),
            at=datetime(2024, 2, 29, 10, tzinfo=UTC),
            plan=Plan.PRO,
            level=Level.HIGH,
            ids=[1, 2],
            scores={"math": 1.5},
            extra={"any": ["thing"]},
            maybe=None,
        )
    ]
    assert type(seen[0].f) is float


def test_nested_dataclasses_and_media_type_parameters() -> None:
    client = client_for(Profile)
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post(
            "/",
            data=json.dumps({"name": "Ann", "age": 30, "address": {"city": "Oslo"}}),
            content_type=content_type,
        )
        assert response.status_code == 200, content_type
        assert "address=Address(city='Oslo', zip='')" in response.text


def test_unknown_fields_are_ignored_and_defaults_kept() -> None:
    response = client_for(Profile).post("/", json={"name": "Ann", "age": 1, "is_admin": True})
    assert response.text == (
        "Profile(name='Ann', age=1, email='a@example.com', plan=<Plan.FREE: 'free'>,"
        " tags=[], nickname=None, address=None)"
    )


def test_every_failing_field_is_reported_in_declaration_order() -> None:
    response = client_for(Profile).post(
        "/",
        json={
            "name": "",
            "age": -1,
            "email": "not an email",
            "plan": "gold",
            "tags": ["ok", 5],
            "address": {"city": "", "zip": "12"},
        },
    )
    assert errors_of(response) == [
        {"field": "name", "message": "must not be empty"},
        {"field": "age", "message": "must be >= 0"},
        {"field": "email", "message": "must be an email address"},
        {"field": "plan", "message": "must be one of: free, pro"},
        {"field": "tags[1]", "message": "must be a string"},
        {"field": "address.city", "message": "must not be empty"},
        {"field": "address.zip", "message": "must match the pattern [0-9]{5}|"},
    ]


def test_missing_required_fields_and_nulls_are_errors() -> None:
    response = client_for(Profile).post("/", json={"nickname": None, "address": None})
    assert errors_of(response) == [
        {"field": "name", "message": "is required"},
        {"field": "age", "message": "is required"},
    ]
    response = client_for(Profile).post("/", json={"name": None, "age": 1})
    assert errors_of(response) == [{"field": "name", "message": "must not be null"}]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param({"n": True}, "must be an integer", id="bool-for-int"),
        pytest.param({"n": 1.5}, "must be an integer", id="float-for-int"),
        pytest.param({"n": "12x"}, "must be an integer", id="text-for-int"),
        pytest.param({"n": [1]}, "must be an integer", id="list-for-int"),
        pytest.param({"b": 1}, "must be true or false", id="int-for-bool"),
        pytest.param({"u": "nope"}, "must be a UUID", id="uuid"),
        pytest.param({"day": "29/02/2024"}, "must be a date (YYYY-MM-DD)", id="date"),
        pytest.param({"level": 3}, "must be one of: 1, 2", id="int-enum"),
        pytest.param({"ids": "1,2"}, "must be a list", id="list"),
        pytest.param({"scores": []}, "must be an object", id="dict"),
    ],
)
def test_json_values_of_the_wrong_kind_are_field_errors(
    payload: dict[str, Any], message: str
) -> None:
    valid = {
        "n": 1,
        "f": 1.0,
        "b": False,
        "d": "1",
        "u": str(UUID(int=1)),
        "day": "2024-01-01",
        "at": "2024-01-01T00:00:00",
        "plan": "free",
        "level": 1,
        "ids": [],
        "scores": {},
        "extra": None,
        "maybe": 1,
    }
    response = client_for(Everything).post("/", json={**valid, **payload})
    assert errors_of(response) == [{"field": next(iter(payload)), "message": message}]


def test_malformed_json_is_a_400_naming_the_position() -> None:
    response = client_for(Profile).post(
        "/", data=b'{"name": "Ann",\n "age": }', content_type="application/json"
    )
    assert errors_of(response) == [
        {"field": None, "message": "malformed JSON at line 2, column 9: Expecting value"}
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"[1, 2]", "expected a JSON object, got an array", id="array"),
        pytest.param(b'"text"', "expected a JSON object, got a string", id="string"),
        pytest.param(b"", "malformed JSON at line 1, column 1: Expecting value", id="empty"),
        pytest.param(b'{"age": NaN}', "malformed JSON: NaN is not valid JSON", id="nan"),
        pytest.param(b"\xff\xfe\xfd", "malformed JSON: the body is not UTF-8", id="not-utf8"),
        pytest.param(b"[" * 100_000, "malformed JSON: nested too deeply", id="deep"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_a_400(data: bytes, message: str) -> None:
    response = client_for(Profile).post("/", data=data, content_type="application/json")
    assert errors_of(response) == [{"field": None, "message": message}]


def test_a_number_too_big_for_a_float_is_a_field_error_not_infinity() -> None:
    @dataclass
    class Amounts:
        f: float
        d: Decimal

    response = client_for(Amounts).post(
        "/", data=b'{"f": 1e400, "d": -1e400}', content_type="application/json"
    )
    assert errors_of(response) == [
        {"field": "f", "message": "must be a number"},
        {"field": "d", "message": "must be a decimal number"},
    ]


def test_nested_value_that_is_not_an_object_is_a_field_error() -> None:
    response = client_for(Booking).post("/", json={"room": "A", "period": [1]})
    assert errors_of(response) == [{"field": "period", "message": "must be an object"}]


def test_post_init_value_error_is_reported_where_the_model_is() -> None:
    response = client_for(Period).post("/", json={"start": "2024-05-02", "end": "2024-05-01"})
    assert errors_of(response) == [{"field": None, "message": "end must not be before start"}]
    response = client_for(Booking).post(
        "/", json={"room": "A", "period": {"start": "2024-05-02", "end": "2024-05-01"}}
    )
    assert errors_of(response) == [{"field": "period", "message": "end must not be before start"}]


def test_json_body_over_the_limit_is_a_413() -> None:
    client = client_for(Profile, RequestLimits(max_form_memory_size=100))
    small = {"name": "Ann", "age": 1, "nickname": "x" * 50}
    assert client.post("/", json=small).status_code == 200
    assert client.post("/", json={**small, "nickname": "x" * 200}).status_code == 413


# -- forms -------------------------------------------------------------------


def test_urlencoded_form_is_converted_with_lists_and_dotted_nested_fields() -> None:
    response = client_for(Profile).post(
        "/",
        data={
            "name": "Ann",
            "age": "41",
            "plan": "pro",
            "tags": ["a", "b"],
            "address.city": "Rome",
        },
    )
    assert response.text == (
        "Profile(name='Ann', age=41, email='a@example.com', plan=<Plan.PRO: 'pro'>,"
        " tags=['a', 'b'], nickname=None, address=Address(city='Rome', zip=''))"
    )


def test_blank_form_value_is_missing_for_typed_fields_but_a_value_for_str() -> None:
    response = client_for(Profile).post("/", data={"name": "", "age": ""})
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "name: must not be empty\nage: is required\n"


def test_form_errors_are_plain_text_unless_the_client_prefers_json() -> None:
    client = client_for(Profile)
    browser = "text/html,application/xhtml+xml,*/*;q=0.8"
    response = client.post("/", data={"age": "old"}, headers={"Accept": browser})
    assert response.status_code == 400
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.text == "name: is required\nage: must be an integer\n"
    as_json = client.post("/", data={"age": "old"}, headers={"Accept": "application/json"})
    assert errors_of(as_json) == [
        {"field": "name", "message": "is required"},
        {"field": "age", "message": "must be an integer"},
    ]


def test_json_request_gets_plain_text_when_its_accept_says_so() -> None:
    response = client_for(Profile).post("/", json={}, headers={"Accept": "text/plain"})
    assert response.status_code == 400
    assert response.text == "name: is required\nage: is required\n"


def test_multipart_form_with_an_uploaded_file() -> None:
    @dataclass
    class Avatar:
        title: str
        image: FileStorage
        caption: str | None = None

    def view(request: Request) -> str:
        avatar = body(Avatar)
        return f"{avatar.title} {avatar.image.filename} {avatar.image.read().decode()}"

    client = Client(RequestScope(text_app(view)))
    fields = {"title": "me", "image": FileStorage(BytesIO(b"GIF89a"), "me.gif")}
    assert client.post("/", **multipart(fields)).text == "me me.gif GIF89a"
    empty_file = FileStorage(BytesIO(b""), "")
    response = client.post("/", **multipart({"title": "me", "image": empty_file}))
    assert response.text == "image: is required\n"


def test_malformed_multipart_is_a_400_and_other_media_types_a_415() -> None:
    client = client_for(Profile)
    response = client.post(
        "/",
        data=b"--b\r\nContent-Disposition: form-data\r\n\r\nbroken",
        content_type="multipart/form-data; boundary=b",
        headers={"Accept": "application/json"},
    )
    [error] = errors_of(response)
    assert error["field"] is None
    assert error["message"].startswith("The form data could not be parsed")
    assert client.post("/", data="name=x", content_type="text/plain").status_code == 415


def test_form_body_over_the_limit_is_a_413() -> None:
    client = client_for(Profile, RequestLimits(max_body_size=1000))
    small = {"name": "Ann", "age": "1", "nickname": "x" * 900}
    assert client.post("/", data=small).status_code == 200
    assert client.post("/", data={**small, "nickname": "x" * 2000}).status_code == 413


def test_request_without_a_body_reads_as_an_empty_form() -> None:
    @dataclass
    class Filters:
        page: int = 1

    assert client_for(Filters).get("/").text.endswith("Filters(page=1)")
    assert client_for(Profile).get("/").text == "name: is required\nage: is required\n"


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
_FIELD_NAMES = st.sampled_from(["name", "age", "tags", "address", "n", "f", "d", "ids", "scores"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(_FIELD_NAMES, _JSON_VALUES, max_size=6))
def test_no_json_object_makes_body_fail_with_anything_but_a_400(payload: dict[str, Any]) -> None:
    for model in (Profile, Everything):
        response = client_for(model).post("/", json=payload)
        assert response.status_code in (200, 400), (model, payload, response.text)


# -- rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        pytest.param(rules(min_length=3), "ab", "must have at least 3 characters", id="min"),
        pytest.param(rules(max_length=2), "abc", "must have at most 2 characters", id="max"),
        pytest.param(rules(pattern=r"[a-z]+"), "abc1", "must match the pattern [a-z]+", id="re"),
        pytest.param(rules(email=True), "a@b", "must be an email address", id="email-dot"),
        pytest.param(rules(email=True), "a b@c.de", "must be an email address", id="email-space"),
        pytest.param(rules(one_of=["x", "y"]), "z", "must be one of: x, y", id="one-of"),
        pytest.param(rules(min_length=1, strip=True), "   ", "must not be empty", id="strip"),
        pytest.param(rules(min_length=5, message="too short"), "abc", "too short", id="message"),
    ],
)
def test_string_rules(rule: Any, value: str, message: str) -> None:
    @dataclass
    class Text:
        text: str = field(metadata=rule)

    assert errors_of(client_for(Text).post("/", json={"text": value})) == [
        {"field": "text", "message": message}
    ]


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        pytest.param(rules(ge=0), -1, "must be >= 0", id="ge"),
        pytest.param(rules(le=10), 11, "must be <= 10", id="le"),
        pytest.param(rules(gt=0), 0, "must be > 0", id="gt"),
        pytest.param(rules(lt=10), 10, "must be < 10", id="lt"),
    ],
)
def test_number_rules(rule: Any, value: int, message: str) -> None:
    @dataclass
    class Number:
        n: Decimal = field(metadata=rule)

    assert errors_of(client_for(Number).post("/", json={"n": value})) == [
        {"field": "n", "message": message}
    ]


def test_values_within_the_rules_pass_and_strip_keeps_the_stripped_value() -> None:
    @dataclass
    class Ok:
        name: str = field(metadata=rules(min_length=1, max_length=3, strip=True))
        email: str = field(metadata=rules(email=True))
        n: int = field(metadata=rules(ge=0, le=0, one_of=[0]))
        tags: list[str] = field(metadata=rules(min_length=1, max_length=2))

    response = client_for(Ok).post(
        "/", json={"name": "  ab ", "email": "ann@example.org", "n": 0, "tags": ["x"]}
    )
    assert response.status_code == 200
    assert response.text.endswith("Ok(name='ab', email='ann@example.org', n=0, tags=['x'])")


def test_list_length_rules_count_items() -> None:
    @dataclass
    class Tags:
        tags: list[str] = field(metadata=rules(min_length=1, max_length=2))

    client = client_for(Tags)
    assert errors_of(client.post("/", json={"tags": []})) == [
        {"field": "tags", "message": "must not be empty"}
    ]
    assert errors_of(client.post("/", json={"tags": ["a", "b", "c"]})) == [
        {"field": "tags", "message": "must have at most 2 items"}
    ]


def test_rules_that_cannot_hold_fail_when_the_model_is_defined() -> None:
    with pytest.raises(ValueError, match="min_length 3 is over max_length 2"):
        rules(min_length=3, max_length=2)
    with pytest.raises(re.error):
        rules(pattern="[")


# -- validate_body, errors and bugs ------------------------------------------


def test_validate_body_hands_the_errors_to_the_view() -> None:
    def view(request: Request) -> str:
        result = validate_body(Profile)
        if not result.ok:
            return f"form again; name: {result.error('name')}; age: {result.error('age')}"
        assert result.value is not None
        return f"saved {result.value.name}"

    client = Client(RequestScope(text_app(view)))
    response = client.post("/", data={"name": "", "age": "7"})
    assert response.status_code == 200
    assert response.text == "form again; name: must not be empty; age: None"
    assert client.post("/", data={"name": "Ann", "age": "7"}).text == "saved Ann"


def test_validation_and_bad_body_carry_the_field_errors() -> None:
    seen: list[Validation[Profile]] = []
    client = Client(RequestScope(text_app(lambda request: seen.append(validate_body(Profile)))))
    client.post("/", json={"age": 200})
    [result] = seen
    expected = [FieldError("name", "is required"), FieldError("age", "must be <= 150")]
    assert (result.ok, result.value, result.errors) == (False, None, expected)
    error = BadBody(result.errors)
    assert error.code == 400
    assert str(error) == "name: is required; age: must be <= 150"
    assert error.errors == expected


def test_unsupported_field_types_and_models_are_type_errors_not_400s() -> None:
    @dataclass
    class WithSet:
        ids: set[int]

    class NotADataclass:
        pass

    def view(request: Request) -> str:
        with pytest.raises(TypeError, match=r"WithSet\.ids: body\(\) cannot read"):
            body(WithSet)
        with pytest.raises(TypeError, match="needs a dataclass"):
            body(NotADataclass)
        return "checked"

    assert Client(RequestScope(text_app(view))).post("/", json={}).text == "checked"


def test_registered_converters_are_used_for_body_fields(converters: Any) -> None:
    converters(Point, Point.parse)
    client = client_for(Shape)
    response = client.post("/", json={"corners": ["1,2", "3,4"]})
    assert response.text == "Shape(corners=[Point(x=1, y=2), Point(x=3, y=4)])"
    assert errors_of(client.post("/", json={"corners": ["1;2"]})) == [
        {"field": "corners[0]", "message": "must be a valid Point"}
    ]


# -- as middleware sees it ---------------------------------------------------


def plain_sign_up_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    profile = body(Profile)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"welcome {profile.name}".encode()]


def test_bad_body_from_a_plain_app_under_lint_is_a_400() -> None:
    client = Client(LintMiddleware(RequestScope(LintMiddleware(plain_sign_up_app))))
    with client.post("/", json={"name": "Ann", "age": -5}) as response:
        assert response.status_code == 400
        assert response.headers["Cache-Control"] == "no-store"
        assert json.loads(response.get_data()) == {
            "errors": [{"field": "age", "message": "must be >= 0"}]
        }
    with client.post("/", json={"name": "Ann", "age": 5}) as response:
        assert response.get_data() == b"welcome Ann"


def test_bad_body_under_session_middleware_is_a_400() -> None:
    client = Client(SessionMiddleware(plain_sign_up_app, secret_key=SECRET))
    response = client.post("/", data={"name": "Ann", "age": "x"})
    assert response.status_code == 400
    assert response.text == "age: must be an integer\n"


def test_the_app_still_reads_the_json_body_after_body() -> None:
    def view(request: Request) -> str:
        profile = body(Profile)
        return f"{profile.name} {request.get_json()['name']}"

    client = Client(LintMiddleware(RequestScope(LintMiddleware(text_app(view)))))
    assert client.post("/", json={"name": "Ann", "age": 3}).text == "Ann Ann"


# -- real Flask and Django apps ----------------------------------------------


def test_flask_view_reads_json_and_form_after_body_and_renders_bad_body() -> None:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/json")
    def from_json() -> str:
        return f"{body(Profile).name} {request.get_json()['name']}"

    @app.post("/form")
    def from_form() -> str:
        return f"{body(Profile).name} {request.form['name']}"

    @app.post("/read-first")
    def read_first() -> str:
        return f"{request.get_json()['name']} {body(Profile).name}"

    client = Client(RequestScope(app))
    assert client.post("/json", json={"name": "Ann", "age": 1}).text == "Ann Ann"
    assert client.post("/form", data={"name": "Bob", "age": "2"}).text == "Bob Bob"
    assert client.post("/read-first", json={"name": "Cy", "age": 3}).text == "Cy Cy"
    response = client.post("/json", json={"name": "Ann"})
    assert errors_of(response) == [{"field": "age", "message": "is required"}]


def test_django_view_reads_the_body_after_body_and_answers_400_when_decorated() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .djangoapp import django_app

    @catch_http_errors
    def from_json(request: HttpRequest) -> HttpResponse:
        profile = body(Profile)
        return HttpResponse(f"{profile.name} {json.loads(request.body)['name']}")

    @catch_http_errors
    def from_form(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"{body(Profile).name} {request.POST['name']}")

    def validated(request: HttpRequest) -> HttpResponse:
        result = validate_body(Profile)
        return HttpResponse(str(result.errors), status=200 if result.ok else 422)

    app = django_app([path("json", from_json), path("form", from_form), path("v", validated)])
    client = Client(RequestScope(app))
    assert client.post("/json", json={"name": "Ann", "age": 1}).text == "Ann Ann"
    assert client.post("/form", data={"name": "Bob", "age": "2"}).text == "Bob Bob"
    response = client.post("/json", json={"name": "", "age": 1})
    assert errors_of(response) == [{"field": "name", "message": "must not be empty"}]
    assert response.headers["Cache-Control"] == "no-store"
    form_error = client.post("/form", data={"name": "Bob"})
    assert (form_error.status_code, form_error.text) == (400, "age: is required\n")
    response = client.post("/v", data={"name": "Bob"})
    assert response.status_code == 422
    assert response.text == "[FieldError(field='age', message='is required')]"


def test_catch_http_errors_leaves_other_views_to_their_framework() -> None:
    @catch_http_errors
    def view(request: Request) -> str:
        return repr(body(Profile))

    response = Client(RequestScope(text_app(view))).post("/", json={})
    assert response.status_code == 400  # raised on, and rendered by RequestScope
    assert len(errors_of(response)) == 2


# -- pydantic and msgspec ----------------------------------------------------


def test_pydantic_models_are_validated_by_pydantic() -> None:
    pydantic = pytest.importorskip("pydantic", reason="pydantic is not installed")

    class Item(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        sku: str
        qty: int = pydantic.Field(ge=1)

    class Order(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        items: list[Item]
        note: str | None = None

    class Search(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        q: str
        tags: list[str] = pydantic.Field(default_factory=list)

    client = client_for(Order)
    response = client.post("/", json={"items": [{"sku": "a", "qty": 2}], "extra": 1})
    assert response.text == "Order(items=[Item(sku='a', qty=2)], note=None)"
    response = client.post("/", json={"items": [{"qty": 0}, {"sku": "b", "qty": "x"}]})
    assert [e["field"] for e in errors_of(response)] == [
        "items[0].sku",
        "items[0].qty",
        "items[1].qty",
    ]
    assert errors_of(response)[0]["message"] == "Field required"
    form = client_for(Search).post("/", data={"q": "shoes", "tags": ["red", "big"]})
    assert form.text == "Search(q='shoes', tags=['red', 'big'])"


def test_msgspec_structs_are_validated_by_msgspec() -> None:
    pytest.importorskip("msgspec", reason="msgspec is not installed")
    from .msgspec_models import Cart, Query

    client = client_for(Cart)
    assert client.post("/", json={"lines": [{"qty": 2}]}).text == (
        "Cart(lines=[Line(qty=2)], coupon=None)"
    )
    response = client.post("/", json={"lines": [{"qty": "many"}]})
    assert errors_of(response) == [
        {"field": "lines[0].qty", "message": "Expected `int`, got `str`"}
    ]
    response = client.post("/", json={})
    assert errors_of(response) == [
        {"field": None, "message": "Object missing required field `lines`"}
    ]

    form = client_for(Query).post("/", data={"page": "2", "tags": ["a"]})
    assert form.text == "Query(page=2, tags=['a'])"
