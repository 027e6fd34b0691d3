"""Guards against the bypasses of the outside review (issue 16, items 1, 2 and no-store).

Each test attacks through the public API with werkzeug's test Client (and a real
Flask app where the framework's routing is the point) and asserts the safe answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    Auth,
    AuthRedirect,
    CsrfMiddleware,
    Guard,
    SessionMiddleware,
    login,
)

from ..conftest import SECRET, text_app


def secret_page(request: Request) -> str:
    if request.path == "/login-now":
        login("alice")
        return "logged in"
    return f"the secret page at {request.path}"


def flask_app_with_a_cafe_page() -> Any:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/café/secret")
    def secret() -> str:
        return "the secret page"

    @app.get("/login-now")
    def log_in() -> str:
        login("alice")
        return "logged in"

    return app


# -- item 1: non-ASCII paths ---------------------------------------------------


def test_a_guard_on_a_non_ascii_prefix_covers_the_path_flask_routes() -> None:
    app = SessionMiddleware(Auth(flask_app_with_a_cafe_page(), paths=["/café"]), secret_key=SECRET)
    client = Client(app)
    anonymous = client.get("/caf%C3%A9/secret")
    assert anonymous.status_code == 401
    assert "secret" not in anonymous.text
    client.get("/login-now")
    assert client.get("/caf%C3%A9/secret").text == "the secret page"


def test_a_guard_on_a_non_ascii_prefix_covers_the_raw_utf8_path_of_any_app() -> None:
    client = Client(
        SessionMiddleware(Auth(text_app(secret_page), paths=["/café"]), secret_key=SECRET)
    )
    # What a PEP 3333 server passes for /café/secret: the UTF-8 bytes as latin-1.
    path = "/café/secret".encode().decode("latin-1")
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 401


def test_a_path_that_is_not_utf8_is_guarded_and_never_exempt() -> None:
    guarded = Client(
        SessionMiddleware(Auth(text_app(secret_page), paths=["/café"]), secret_key=SECRET)
    )
    not_utf8 = "/caf\xe9/secret"  # the single byte 0xE9: latin-1, not UTF-8
    assert guarded.get("/", environ_overrides={"PATH_INFO": not_utf8}).status_code == 401

    csrf = Client(
        SessionMiddleware(
            CsrfMiddleware(text_app(secret_page), exempt_paths=["/café"]), secret_key=SECRET
        )
    )
    refused = csrf.post("/", environ_overrides={"PATH_INFO": not_utf8})
    assert refused.status_code == 403


def test_an_exemption_on_a_non_ascii_prefix_still_exempts_its_utf8_path() -> None:
    csrf = Client(
        SessionMiddleware(
            CsrfMiddleware(text_app(secret_page), exempt_paths=["/café"]), secret_key=SECRET
        )
    )
    assert csrf.post("/caf%C3%A9/hook").status_code == 200


# -- item 2: an absolute login URL exempts no local path -------------------------


@pytest.mark.parametrize(
    ("location", "path"),
    [
        pytest.param("https://sso.example.com", "/", id="bare-host"),
        pytest.param("https://sso.example.com/start?app=1", "/start", id="same-path"),
        pytest.param("//sso.example.com/login", "/login", id="scheme-relative"),
    ],
)
def test_an_absolute_login_location_exempts_no_local_path(location: str, path: str) -> None:
    app = SessionMiddleware(AuthRedirect(text_app(secret_page), location), secret_key=SECRET)
    response = Client(app).get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith(location)
    assert "secret" not in response.text


def test_an_absolute_login_location_skips_no_role_check() -> None:
    app = SessionMiddleware(
        AuthRedirect(
            text_app(secret_page),
            "https://sso.example.com/start",
            roles=["admin"],
            paths=["/start"],
        ),
        secret_key=SECRET,
    )
    client = Client(app)
    client.get("/login-now")  # alice, without the admin role
    response = client.get("/start")
    assert response.status_code == 403
    assert "secret" not in response.text


def test_a_local_login_page_stays_reachable() -> None:
    app = SessionMiddleware(
        AuthRedirect(text_app(secret_page), "/connexion-é?from=guard"), secret_key=SECRET
    )
    client = Client(app)
    assert client.get("/connexion-%C3%A9").status_code == 200
    assert client.get("/account").status_code == 303


# -- Cache-Control: no-store on guarded paths -----------------------------------


def page_with_cache_headers(request: Request) -> Response:
    if request.path == "/login-now":
        login("alice")
    return Response(
        f"Logged in as Alice at {request.path}", headers={"Cache-Control": "max-age=600"}
    )


@pytest.mark.parametrize(
    "guard",
    [
        pytest.param(lambda app, **kw: Auth(app, paths=["/account"], **kw), id="Auth"),
        pytest.param(
            lambda app, **kw: AuthRedirect(app, paths=["/account"], **kw), id="AuthRedirect"
        ),
        pytest.param(
            lambda app, **kw: Guard(app, lambda ctx: True, paths=["/account"], **kw), id="Guard"
        ),
    ],
)
def test_responses_of_guarded_paths_are_not_stored_by_the_browser(guard: Any) -> None:
    client = Client(SessionMiddleware(guard(text_app(page_with_cache_headers)), secret_key=SECRET))
    client.get("/login-now")
    page = client.get("/account")
    assert page.status_code == 200
    assert page.headers.getlist("Cache-Control") == ["no-store"]
    # Outside the guarded paths the application's own header is left alone.
    assert client.get("/public").headers.getlist("Cache-Control") == ["max-age=600"]


def test_refusals_of_guarded_paths_are_not_stored_either() -> None:
    client = Client(SessionMiddleware(Auth(text_app(secret_page)), secret_key=SECRET))
    refused = client.get("/account")
    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "no-store"


def test_no_store_false_leaves_caching_to_the_application() -> None:
    app = Auth(text_app(page_with_cache_headers), paths=["/account"], no_store=False)
    client = Client(SessionMiddleware(app, secret_key=SECRET))
    client.get("/login-now")
    assert client.get("/account").headers.getlist("Cache-Control") == ["max-age=600"]
