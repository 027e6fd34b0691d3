"""CsrfMiddleware and csrf_token(): unsafe requests need a token from this session."""

from __future__ import annotations

import contextvars
import json
from typing import Any

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    CsrfMiddleware,
    SessionMiddleware,
    csrf_token,
    login,
    logout,
    session,
)
from wsgisession.access.csrf import CSRF_KEY
from wsgisession.errors import ConfigurationError

from .conftest import SECRET, text_app

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


def form_view(request: Request) -> str:
    """GET /token gives a token; /login and /logout; anything else echoes the form."""
    if request.path == "/token":
        return csrf_token()
    if request.path == "/login":
        login("alice")
        return csrf_token()
    if request.path == "/logout":
        logout()
        return "bye"
    if request.is_json:
        return f"json {request.get_json()['title']}"
    return f"{request.method} ok {request.form.get('title', '')}"


#: A phrase of each refusal's message, by CsrfError.reason.
REASONS = {
    "missing": "CSRF token missing",
    "no_secret": "this session has no token",
    "invalid": "it is malformed, out of date or from another session",
    "origin": "CSRF check failed",
}


def refusal(response: Response) -> str:
    """Why the CSRF check refused *response* (a reason of CsrfError), or why not."""
    assert response.status_code == 403, response.text
    (reason,) = [reason for reason, phrase in REASONS.items() if phrase in response.text]
    return reason


def make_client(view: Any = form_view, **options: Any) -> Client:
    app = SessionMiddleware(CsrfMiddleware(text_app(view), **options), secret_key=SECRET)
    return Client(app)


def token_for(client: Client, path: str = "/token") -> str:
    return client.get(path).text


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_need_no_token(method: str) -> None:
    response = make_client().open("/page", method=method)
    assert response.status_code == 200


@pytest.mark.parametrize("method", UNSAFE)
def test_unsafe_methods_without_a_token_are_refused_as_missing(method: str) -> None:
    response = make_client().open("/page", method=method)
    assert refusal(response) == "missing"
    assert response.mimetype == "text/plain"
    assert "CSRF token missing" in response.text


@pytest.mark.parametrize("method", UNSAFE)
def test_unsafe_methods_with_the_header_token_pass(method: str) -> None:
    client = make_client()
    token = token_for(client)
    response = client.open("/page", method=method, headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.text.startswith(f"{method} ok")


def test_form_token_passes_and_the_app_still_reads_the_form() -> None:
    client = make_client()
    token = token_for(client)
    response = client.post("/page", data={"csrf_token": token, "title": "Hello"})
    assert response.status_code == 200
    assert response.text == "POST ok Hello"


def test_multipart_form_token_passes_and_the_app_still_reads_the_form() -> None:
    client = make_client()
    token = token_for(client)
    response = client.post(
        "/page",
        data={"csrf_token": token, "title": "Hi"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert response.text == "POST ok Hi"


def test_json_body_uses_the_header_and_is_never_parsed_for_a_token() -> None:
    client = make_client()
    token = token_for(client)
    ok = client.post("/page", json={"title": "T"}, headers={"X-CSRF-Token": token})
    assert ok.text == "json T"
    in_body = client.post("/page", json={"title": "T", "csrf_token": token})
    assert refusal(in_body) == "missing"
    assert "missing" in in_body.text


def test_custom_field_and_header_names() -> None:
    client = make_client(field_name="_csrf", header_name="X-XSRF")
    token = token_for(client)
    assert client.post("/p", data={"_csrf": token}).status_code == 200
    assert client.post("/p", headers={"X-XSRF": token}).status_code == 200
    assert refusal(client.post("/p", data={"csrf_token": token})) == "missing"


def test_each_token_is_different_and_all_are_valid() -> None:
    client = make_client()
    tokens = [token_for(client) for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert client.post("/p", data={"csrf_token": token}).status_code == 200


def test_the_session_keeps_one_secret_across_token_calls() -> None:
    def view(request: Request) -> str:
        csrf_token()
        return csrf_token()

    client = make_client(view)
    first = client.get("/").headers.get("Set-Cookie")
    assert first is not None
    assert "Set-Cookie" not in client.get("/").headers  # no new secret, nothing to save


def test_a_token_from_another_session_is_invalid() -> None:
    alice, mallory = make_client(), make_client()
    token_for(alice)
    mallorys_token = token_for(mallory)
    response = alice.post("/p", data={"csrf_token": mallorys_token})
    assert refusal(response) == "invalid"
    assert "CSRF token invalid" in response.text


def test_a_token_without_a_session_secret_is_refused() -> None:
    other = make_client()
    token = token_for(other)
    response = make_client().post("/p", data={"csrf_token": token})
    assert refusal(response) == "no_secret"
    assert "this session has no token" in response.text


@pytest.mark.parametrize("planted", ["a string", b"short", 42, None])
def test_a_secret_of_the_wrong_type_in_the_session_is_replaced_not_a_500(planted: Any) -> None:
    def view(request: Request) -> str:
        if request.path == "/plant":
            session[CSRF_KEY] = planted
            return ""
        return csrf_token()

    client = make_client(view)
    client.get("/plant")
    assert refusal(client.post("/p", headers={"X-CSRF-Token": "A" * 86})) == "no_secret"
    token = client.get("/token").text
    assert client.post("/p", headers={"X-CSRF-Token": token}).status_code == 200


def test_refusals_are_logged_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="wsgisession"):
        make_client().post("/p", headers={"Origin": "https://evil.example"})
    assert "refused POST /p" in caplog.text
    assert "evil.example" in caplog.text


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    ("make_bad", "reason"),
    [
        pytest.param(lambda t: "", "missing", id="empty"),
        pytest.param(_tampered, "invalid", id="one-char-changed"),
        pytest.param(lambda t: "A" * 86, "invalid", id="forged"),
        pytest.param(lambda t: t[:-1], "invalid", id="truncated"),
        pytest.param(lambda t: t + "A", "invalid", id="too-long"),
        pytest.param(lambda t: t[:-2] + "é", "invalid", id="non-ascii"),
        pytest.param(lambda t: t[:-1] + "=", "invalid", id="padding-char"),
        # Under RequestLimits.max_form_memory_size: a form over it is a 413 unread.
        pytest.param(lambda t: "x" * 400_000, "invalid", id="400KB"),
    ],
)
@pytest.mark.parametrize("where", ["form", "header"])
def test_bad_tokens_are_refused_with_a_reason(make_bad: Any, reason: str, where: str) -> None:
    client = make_client()
    bad = make_bad(token_for(client))
    if where == "form":
        response = client.post("/p", data={"csrf_token": bad})
    else:
        headers = {"X-CSRF-Token": bad.encode("utf-8").decode("latin-1")}
        response = client.post("/p", headers=headers)
    assert response.status_code == 403
    assert f"CSRF token {reason}" in response.text


def test_json_clients_get_the_reason_as_json() -> None:
    response = make_client().post("/p", headers={"Accept": "application/json"})
    assert refusal(response) == "missing"
    assert response.mimetype == "application/json"
    body = json.loads(response.text)
    assert body["error"] == "csrf_missing"
    assert "CSRF token missing" in body["message"]


def test_login_rotates_the_secret_so_earlier_tokens_are_refused() -> None:
    client = make_client()
    before = token_for(client)
    after = token_for(client, "/login")
    assert refusal(client.post("/p", data={"csrf_token": before})) == "invalid"
    assert client.post("/p", data={"csrf_token": after}).status_code == 200


def test_logout_ends_the_secret_so_earlier_tokens_are_refused() -> None:
    client = make_client()
    token = token_for(client, "/login")
    client.get("/logout")
    response = client.post("/p", data={"csrf_token": token})
    assert refusal(response) == "no_secret"


def test_a_cross_site_origin_is_refused_even_with_a_valid_token() -> None:
    client = make_client()
    token = token_for(client)
    response = client.post(
        "/p", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert refusal(response) == "origin"
    assert "another site" in response.text


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("http://localhost", "http://localhost"),
        ("http://example.com", "http://EXAMPLE.com:80"),
        ("https://example.com", "https://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
    ],
)
def test_the_requests_own_origin_passes(base_url: str, origin: str) -> None:
    client = make_client()
    token = client.get("/token", base_url=base_url).text
    response = client.post(
        "/p", base_url=base_url, data={"csrf_token": token}, headers={"Origin": origin}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origin",
    ["null", "http://localhost:8080", "https://localhost", "http://localhost.evil.example"],
)
def test_origins_that_differ_in_any_part_are_refused(origin: str) -> None:
    client = make_client()
    token = token_for(client)
    response = client.post("/p", data={"csrf_token": token}, headers={"Origin": origin})
    assert refusal(response) == "origin"


def test_trusted_origins_may_post() -> None:
    client = make_client(trusted_origins=["https://app.example.com"])
    token = token_for(client)
    headers = {"Origin": "https://app.example.com", "X-CSRF-Token": token}
    assert client.post("/p", headers=headers).status_code == 200


def test_https_without_origin_needs_a_same_site_https_referer() -> None:
    client = make_client()
    base = "https://example.com"
    token = client.get("/token", base_url=base).text

    def post(headers: dict[str, str]) -> Response:
        return client.post("/p", base_url=base, data={"csrf_token": token}, headers=headers)

    assert refusal(post({})) == "origin"
    assert "neither Origin nor Referer" in post({}).text
    assert refusal(post({"Referer": "https://evil.example/form"})) == "origin"
    assert refusal(post({"Referer": "http://example.com/form"})) == "origin"
    assert refusal(post({"Referer": "not a url"})) == "origin"
    assert post({"Referer": "https://example.com/form?x=1"}).status_code == 200


def test_plain_http_without_origin_or_referer_passes_with_a_token() -> None:
    client = make_client()
    token = token_for(client)
    assert client.post("/p", data={"csrf_token": token}).status_code == 200


def test_exempt_paths_skip_the_check_on_segment_boundaries() -> None:
    client = make_client(exempt_paths=["/hooks"])
    assert client.post("/hooks").status_code == 200
    assert client.post("/hooks/github").status_code == 200
    assert refusal(client.post("/hooksy")) == "missing"
    assert refusal(client.post("/hooks/../account")) == "missing"
    assert refusal(client.post("/account")) == "missing"


def test_a_malformed_multipart_body_is_a_400_not_a_500() -> None:
    client = make_client()
    token_for(client)  # only the form of a session with a CSRF secret is parsed
    response = client.post(
        "/p",
        data=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nnever closed",
        content_type="multipart/form-data; boundary=xyz",
    )
    assert response.status_code == 400


def test_a_form_body_that_is_not_utf8_is_a_400_not_a_500() -> None:
    client = make_client()
    token_for(client)
    response = client.post(
        "/p", data=b"csrf_token=\xff\xfe", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_outside_session_middleware_is_a_clear_error_at_the_first_request() -> None:
    client = Client(CsrfMiddleware(text_app(form_view)))
    with pytest.raises(RuntimeError, match=r"inside SessionMiddleware"):
        client.get("/")


def test_csrf_token_outside_a_request_says_how_to_fix_it() -> None:
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        contextvars.Context().run(csrf_token)


@pytest.mark.parametrize(
    "options",
    [
        {"field_name": ""},
        {"header_name": "X CSRF"},
        {"exempt_paths": ["hooks"]},
        {"trusted_origins": ["app.example.com"]},
        {"trusted_origins": ["https://app.example.com/path"]},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CsrfMiddleware(text_app(form_view), **options)


def test_pep3333_compliant_under_lint_middleware() -> None:
    app = SessionMiddleware(
        LintMiddleware(CsrfMiddleware(LintMiddleware(text_app(form_view)))), secret_key=SECRET
    )
    client = Client(app)
    token = client.get("/token").text
    ok = client.post("/p", data={"csrf_token": token, "title": "x"})
    assert ok.text == "POST ok x"
    ok.close()
    refused = client.post("/p")
    assert refused.status_code == 403
    refused.close()


# -- Flask and Django: the body stays readable ------------------------------------------


def test_flask_reads_request_form_after_the_check() -> None:
    import flask

    flask_app = flask.Flask(__name__)

    @flask_app.get("/form")
    def show() -> str:
        return csrf_token()

    @flask_app.post("/form")
    def submit() -> str:
        return "got " + flask.request.form["title"]

    @flask_app.post("/api")
    def api() -> dict[str, Any]:
        return {"title": (flask.request.get_json() or {})["title"]}

    flask_app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        CsrfMiddleware(flask_app.wsgi_app), secret_key=SECRET
    )
    client = flask_app.test_client()
    token = client.get("/form").text
    assert client.post("/form", data={"csrf_token": token, "title": "Hi"}).text == "got Hi"
    assert refusal(client.post("/form", data={"title": "Hi"})) == "missing"
    answer = client.post("/api", json={"title": "J"}, headers={"X-CSRF-Token": token})
    assert answer.get_json() == {"title": "J"}


def test_django_reads_request_post_after_the_check() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .djangoapp import django_app

    def form(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            return HttpResponse("got " + request.POST["title"], content_type="text/plain")
        return HttpResponse(csrf_token(), content_type="text/plain")

    app = SessionMiddleware(CsrfMiddleware(django_app([path("form", form)])), secret_key=SECRET)
    client = Client(app)
    token = client.get("/form").text
    response = client.post("/form", data={"csrf_token": token, "title": "Hi"})
    assert response.text == "got Hi"
    assert refusal(client.post("/form", data={"title": "Hi"})) == "missing"
