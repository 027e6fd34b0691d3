"""Refusal pages are replaceable: ``error_page`` on every middleware that refuses.

Guard, Auth, AuthRedirect, CsrfMiddleware and SessionMiddleware's 503 take the same
``error_page(refusal, environ)`` option; a client that prefers JSON keeps the
documented JSON body, and the headers a client needs (Retry-After,
WWW-Authenticate, no-store) survive the app's page.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    Auth,
    AuthRedirect,
    CsrfMiddleware,
    Guard,
    SessionMiddleware,
    csrf_token,
    login,
)
from wsgisession.errors import ConfigurationError, CsrfError, StoreUnavailable

from .conftest import SECRET, text_app
from .fakes import DictStore

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def html_page(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
    """The site's own page: the code, the reason and a way back."""
    return Response(
        f"<h1>{refusal.code}</h1><p>{refusal.description}</p><a href='/'>Home</a>",
        status=refusal.code,
        mimetype="text/html",
    )


def view(request: Request) -> str:
    if request.path == "/login":
        login("bob", roles=request.args.getlist("role"))
        return "in"
    if request.path == "/token":
        return csrf_token()
    return f"page {request.path}"


def client(wrap: Any, **options: Any) -> Client:
    return Client(SessionMiddleware(wrap(text_app(view)), secret_key=SECRET, **options))


def test_auth_error_page_answers_401_and_403_and_keeps_the_challenge() -> None:
    c = client(lambda app: Auth(app, roles=["admin"], paths=["/admin"], error_page=html_page))
    anonymous = c.get("/admin", headers=HTML)
    assert anonymous.status_code == 401
    assert anonymous.mimetype == "text/html"
    assert "<h1>401</h1>" in anonymous.text
    assert anonymous.headers["WWW-Authenticate"].strip() == "Cookie"
    assert anonymous.headers["Cache-Control"] == "no-store"

    c.get("/login")
    refused = c.get("/admin", headers=HTML)
    assert refused.status_code == 403
    assert "<p>This page needs the role 'admin'.</p>" in refused.text
    assert "<a href='/'>Home</a>" in refused.text


def test_a_json_client_keeps_the_json_refusal_when_an_error_page_is_set() -> None:
    c = client(lambda app: Auth(app, paths=["/admin"], error_page=html_page))
    answer = c.get("/admin", headers=JSON)
    assert answer.status_code == 401
    assert answer.json == {"error": "not_logged_in", "message": "Log in to see this page."}


def test_guard_error_page_renders_its_403_and_an_error_the_test_raised() -> None:
    def test(ctx: Any) -> bool:
        if ctx.request.path == "/hidden":
            from werkzeug.exceptions import NotFound

            raise NotFound()
        return False

    c = client(lambda app: Guard(app, test, paths=["/x", "/hidden"], error_page=html_page))
    refused = c.get("/x", headers=HTML)
    assert (refused.status_code, "<h1>403</h1>" in refused.text) == (403, True)
    hidden = c.get("/hidden", headers=HTML)
    assert (hidden.status_code, "<h1>404</h1>" in hidden.text) == (404, True)


def test_guard_deny_still_wins_over_error_page() -> None:
    deny = Response("go away", status=403)
    c = client(lambda app: Guard(app, lambda ctx: False, deny=deny, error_page=html_page))
    assert c.get("/", headers=HTML).text == "go away"


def test_auth_redirect_error_page_answers_the_403_and_still_redirects_visitors() -> None:
    c = client(
        lambda app: AuthRedirect(app, roles=["admin"], paths=["/admin"], error_page=html_page)
    )
    visitor = c.get("/admin", headers=HTML)
    assert visitor.status_code == 303
    assert visitor.headers["Location"] == "/login?next=%2Fadmin"
    c.get("/login")
    refused = c.get("/admin", headers=HTML)
    assert (refused.status_code, refused.mimetype) == (403, "text/html")


def test_auth_redirect_answers_401_json_to_an_api_client_not_a_redirect() -> None:
    c = client(
        lambda app: AuthRedirect(Auth(app, roles=["admin"], paths=["/admin"]), paths=["/admin"])
    )
    api = c.get("/admin", headers=JSON)
    assert api.status_code == 401
    assert api.json is not None
    assert api.json["error"] == "not_logged_in"
    assert "Location" not in api.headers
    assert c.get("/admin", headers=HTML).status_code == 303


def test_csrf_error_page_answers_a_stale_form_with_the_reason() -> None:
    seen: list[CsrfError] = []

    def page(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
        assert isinstance(refusal, CsrfError)
        seen.append(refusal)
        return html_page(refusal, environ)

    c = client(lambda app: CsrfMiddleware(app, error_page=page))
    c.get("/token")
    answer = c.post("/logout", data={"csrf_token": "stale"}, headers=HTML)
    assert (answer.status_code, answer.mimetype) == (403, "text/html")
    assert "<a href='/'>Home</a>" in answer.text
    assert [e.reason for e in seen] == ["invalid"]
    json_answer = c.post("/logout", data={"csrf_token": "stale"}, headers=JSON)
    assert json.loads(json_answer.text)["error"] == "csrf_invalid"


class DownStore(DictStore):
    """A server store whose every save fails, as a store outage does."""

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        raise StoreUnavailable("the test store is down", retry_after=7)


def test_session_middleware_error_page_answers_a_store_outage_with_retry_after() -> None:
    c = client(lambda app: app, store=DownStore(), error_page=html_page)
    # A login writes the session: the save, at header time, meets the outage.
    answer = c.get("/login", headers=HTML)
    assert answer.status_code == 503
    assert "<h1>503</h1>" in answer.text
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Auth(text_app(view), error_page="oops"),
        lambda: AuthRedirect(text_app(view), error_page=42),
        lambda: Guard(text_app(view), lambda ctx: True, error_page="oops"),
        lambda: CsrfMiddleware(text_app(view), error_page=object()),
        lambda: SessionMiddleware(text_app(view), secret_key=SECRET, error_page="page.html"),
    ],
)
def test_an_error_page_that_is_not_callable_fails_at_start_up(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="error_page must be a callable"):
        make()


class LoadDownStore(DictStore):
    """A server store whose every load fails: the outage meets the view itself."""

    def load(self, key: str) -> dict[str, bytes] | None:
        raise StoreUnavailable("the test store is down", retry_after=7)


def flask_outage_app(store: DictStore) -> Any:
    import flask

    from wsgisession.contrib.flask import init_app

    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.get("/login")
    def log_in() -> str:
        flask.session["user"] = "ada"
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        return str(flask.session.get("user"))

    init_app(app, store=store, error_page=html_page)
    return app


def test_flask_answers_an_outage_at_save_time_with_the_error_page() -> None:
    answer = Client(flask_outage_app(DownStore())).get("/login", headers=HTML)
    assert answer.status_code == 503
    assert "<h1>503</h1>" in answer.text
    assert answer.headers["Retry-After"] == "7"
    assert "Set-Cookie" not in answer.headers


def test_flask_answers_an_outage_in_a_view_with_the_error_page() -> None:
    store = DictStore()
    c = Client(flask_outage_app(store))
    assert c.get("/login").text == "ok"  # a real session cookie: the next read needs the store
    store.load = LoadDownStore.load.__get__(store)  # type: ignore[method-assign]
    answer = c.get("/whoami", headers=HTML)
    assert answer.status_code == 503
    assert "<h1>503</h1>" in answer.text
    assert answer.headers["Retry-After"] == "7"
