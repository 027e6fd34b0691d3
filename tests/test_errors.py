"""Every wsgisession error that is an HTTP answer renders the same way."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import SessionMiddleware, param
from wsgisession.errors import (
    AccessDenied,
    BadBody,
    BadParam,
    CsrfError,
    FieldError,
    HTTPError,
    NotLoggedIn,
    SessionError,
    StoreUnavailable,
)

from .conftest import SECRET, text_app

ERRORS = [
    pytest.param(NotLoggedIn(), 401, "not_logged_in", id="not-logged-in"),
    pytest.param(AccessDenied(), 403, "forbidden", id="access-denied"),
    pytest.param(CsrfError("missing", "CSRF token missing."), 403, "csrf_missing", id="csrf"),
    pytest.param(BadParam("n", "x", "int"), 400, "bad_param", id="bad-param"),
    pytest.param(StoreUnavailable("redis down"), 503, "store_unavailable", id="store"),
]


def raising(error: HTTPError) -> Client:
    def view(request: Request) -> str:
        raise error

    return Client(SessionMiddleware(text_app(view), secret_key=SECRET))


@pytest.mark.parametrize(("error", "status", "code"), ERRORS)
def test_errors_answer_plain_text_with_safe_headers(
    error: HTTPError, status: int, code: str
) -> None:
    response = raising(error).get("/")
    assert response.status_code == status
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert isinstance(error, SessionError)


@pytest.mark.parametrize(("error", "status", "code"), ERRORS)
def test_errors_answer_json_to_clients_that_prefer_it(
    error: HTTPError, status: int, code: str
) -> None:
    response = raising(error).get("/", headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert json.loads(response.text)["error"] == code


def test_bad_param_in_json_names_the_parameter() -> None:
    client = Client(SessionMiddleware(text_app(lambda r: param("n", int)), secret_key=SECRET))
    response = client.get("/?n=abc", headers={"Accept": "application/json"})
    assert json.loads(response.text) == {
        "error": "bad_param",
        "message": "Parameter 'n': cannot convert 'abc' to int",
        "param": "n",
    }


def test_store_unavailable_logs_its_cause_but_tells_the_client_only_to_retry() -> None:
    error = StoreUnavailable("redis at 10.0.0.5:6379 refused the connection", retry_after=7)
    assert str(error) == "redis at 10.0.0.5:6379 refused the connection"
    response = raising(error).get("/")
    assert "10.0.0.5" not in response.text
    assert response.headers["Retry-After"] == "7"


def test_bad_body_lists_every_field() -> None:
    error = BadBody([FieldError("age", "must be >= 0"), FieldError("name", "is required")])
    assert raising(error).get("/").text == "age: must be >= 0\nname: is required\n"
