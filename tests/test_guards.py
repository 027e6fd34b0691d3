"""Guard, Auth, AuthRedirect and the view decorators, on plain WSGI, Flask and Django."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.exceptions import Forbidden, HTTPException, NotFound, Unauthorized
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import (
    Auth,
    AuthRedirect,
    CsrfMiddleware,
    Guard,
    GuardContext,
    SessionMiddleware,
    csrf_token,
    current_user,
    guarded,
    login,
    login_required,
    logout,
    safe_next,
    session,
)
from wsgisession.access.login import AUTH_KEY
from wsgisession.errors import ConfigurationError

from .conftest import SECRET, text_app

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def site_view(request: Request) -> str:
    """/login?user=…&roles=a,b, /logout, /plant (a bad login record); else the path."""
    if request.path == "/login":
        roles = [r for r in request.args.get("roles", "").split(",") if r]
        login(request.args.get("user", "alice"), roles=roles)
        return "logged in"
    if request.path == "/logout":
        logout()
        return "logged out"
    if request.path == "/plant":
        session[AUTH_KEY] = {"id": "alice", "roles": "admin"}
        return "planted"
    return f"page {request.path}"


def client_for(wrap: Callable[[WSGIApplication], WSGIApplication]) -> Client:
    """A client for site_view wrapped in *wrap*, inside SessionMiddleware."""
    return Client(SessionMiddleware(wrap(text_app(site_view)), secret_key=SECRET))


# -- Guard --------------------------------------------------------------------------


def test_guard_lets_a_passing_request_through_and_refuses_a_failing_one() -> None:
    client = client_for(lambda app: Guard(app, lambda ctx: "HTTP_X_TEAM" in ctx.environ))
    assert client.get("/x", headers={"X-Team": "red"}).text == "page /x"
    refused = client.get("/x")
    assert refused.status_code == 403
    assert refused.mimetype == "text/plain"
    assert refused.text == "403 Forbidden: You are not allowed to see this page.\n"


def test_guard_deny_is_the_response_for_a_failing_test() -> None:
    deny = Response("members only", status=402)
    client = client_for(lambda app: Guard(app, lambda ctx: False, deny=deny))
    response = client.get("/x")
    assert response.status_code == 402
    assert response.text == "members only"


def test_guard_test_may_raise_an_http_error() -> None:
    def hide(ctx: GuardContext) -> bool:
        raise NotFound()

    response = client_for(lambda app: Guard(app, hide)).get("/secret")
    assert response.status_code == 404


def test_guard_context_gives_request_session_and_user() -> None:
    seen: list[tuple[str, Any, Any]] = []

    def test(ctx: GuardContext) -> bool:
        seen.append((ctx.request.args.get("q", ""), dict(ctx.session), ctx.user))
        return True

    client = client_for(lambda app: Guard(app, test, paths="/x"))
    client.get("/login?user=bob&roles=admin")
    client.get("/x?q=1")
    query, data, user = seen[-1]
    assert query == "1"
    assert AUTH_KEY in data
    assert user.user_id == "bob"
    assert user.roles == frozenset({"admin"})


def test_guard_can_read_the_form_and_the_app_still_gets_it() -> None:
    def view(request: Request) -> str:
        return "app saw " + request.form["answer"]

    def test(ctx: GuardContext) -> bool:
        return ctx.request.form.get("answer") == "42"

    client = Client(SessionMiddleware(Guard(text_app(view), test), secret_key=SECRET))
    assert client.post("/", data={"answer": "42"}).text == "app saw 42"
    assert client.post("/", data={"answer": "41"}).status_code == 403


def test_guard_that_only_reads_headers_does_not_touch_the_session() -> None:
    client = client_for(lambda app: Guard(app, lambda ctx: True))
    response = client.get("/x")
    assert "Vary" not in response.headers
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    ("path", "guarded_"),
    [
        ("/admin", True),
        ("/admin/", True),
        ("/admin/users", True),
        ("/administrator", False),
        ("/admin-old", False),
        ("/public", False),
        ("//admin/users", True),
        ("/public/../admin", True),
        ("/./admin", True),
    ],
)
def test_paths_match_on_segment_boundaries_and_normalized(path: str, guarded_: bool) -> None:
    client = client_for(lambda app: Guard(app, lambda ctx: False, paths=["/admin/"]))
    # PATH_INFO as a server passes it: the test client would read "//admin" as a host.
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert (response.status_code == 403) is guarded_


def test_guards_compose_by_nesting_and_run_outside_in() -> None:
    order: list[str] = []

    def test(name: str) -> Callable[[GuardContext], bool]:
        def run(ctx: GuardContext) -> bool:
            order.append(name)
            return name != "inner" or "HTTP_X_OK" in ctx.environ

        return run

    client = client_for(lambda app: Guard(Guard(app, test("inner")), test("outer")))
    assert client.get("/").status_code == 403
    assert order == ["outer", "inner"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda app: Guard(app, "not callable"), id="test-not-callable"),
        pytest.param(lambda app: Guard(app, bool, deny="nope"), id="deny-not-wsgi"),
        pytest.param(lambda app: Guard(app, bool, paths=["admin"]), id="relative-path"),
        pytest.param(lambda app: Auth(app, paths=[3]), id="path-not-str"),
        pytest.param(lambda app: AuthRedirect(app, location=""), id="empty-location"),
        pytest.param(lambda app: guarded("nope"), id="guarded-not-callable"),
    ],
)
def test_bad_guard_options_are_configuration_errors(make: Callable[[Any], Any]) -> None:
    with pytest.raises(ConfigurationError):
        make(text_app(site_view))


def test_a_guard_outside_session_middleware_says_how_to_fix_it() -> None:
    client = Client(Auth(text_app(site_view)))
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        client.get("/")


# -- Auth ---------------------------------------------------------------------------


def test_auth_answers_401_with_a_challenge_when_not_logged_in() -> None:
    client = client_for(lambda app: Auth(app, paths=["/account"]))
    response = client.get("/account")
    assert response.status_code == 401
    # werkzeug before 3.1.7 writes "Cookie " (a trailing space, which HTTP clients
    # strip): make compat-versions runs these tests on werkzeug 3.1.0 too.
    assert response.headers["WWW-Authenticate"].strip() == "Cookie"
    assert response.mimetype == "text/plain"
    assert response.text == "401 Unauthorized: Log in to see this page.\n"
    assert client.get("/elsewhere").status_code == 200


def test_auth_answers_json_to_a_client_that_prefers_it() -> None:
    client = client_for(lambda app: Auth(app, roles=["admin"], paths="/x"))
    headers = {"Accept": "application/json"}
    anonymous = client.get("/x", headers=headers)
    assert anonymous.mimetype == "application/json"
    assert json.loads(anonymous.text)["error"] == "not_logged_in"
    client.get("/login?user=bob")
    no_role = client.get("/x", headers=headers)
    assert no_role.status_code == 403
    assert json.loads(no_role.text) == {
        "error": "forbidden",
        "message": "This page needs the role 'admin'.",
    }


def test_a_browser_accept_header_gets_plain_text() -> None:
    client = client_for(lambda app: Auth(app, paths="/x"))
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get("/x", headers={"Accept": accept}).mimetype == "text/plain"


def test_auth_lets_a_logged_in_user_through_and_not_after_logout() -> None:
    client = client_for(lambda app: Auth(app, paths=["/account"]))
    client.get("/login?user=alice")
    assert client.get("/account").text == "page /account"
    client.get("/logout")
    assert client.get("/account").status_code == 401


def test_auth_answers_403_for_a_logged_in_user_without_the_role() -> None:
    client = client_for(lambda app: Auth(app, roles=["admin"], paths=["/admin"]))
    client.get("/login?user=bob&roles=editor")
    response = client.get("/admin")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert "needs the role 'admin'" in response.text
    client.get("/login?user=bob&roles=editor,admin")
    assert client.get("/admin").status_code == 200


@pytest.mark.parametrize(
    ("roles", "require_all", "expected"),
    [
        ("admin", False, 403),
        (["editor", "admin"], False, 200),
        (["editor", "admin"], True, 403),
        (["editor", "viewer"], True, 200),
        ([], False, 200),
    ],
)
def test_auth_roles_any_or_all(roles: Any, require_all: bool, expected: int) -> None:
    client = client_for(lambda app: Auth(app, roles=roles, require_all=require_all, paths="/p"))
    client.get("/login?user=bob&roles=editor,viewer")
    assert client.get("/p").status_code == expected


def test_roles_of_the_wrong_type_in_the_session_are_not_logged_in_not_a_500() -> None:
    client = client_for(lambda app: Auth(app, roles=["admin"], paths=["/admin"]))
    client.get("/plant")
    assert client.get("/admin").status_code == 401


def test_auth_under_lint_middleware_is_pep3333_compliant() -> None:
    client = client_for(
        lambda app: LintMiddleware(Auth(LintMiddleware(app), roles="admin", paths="/admin"))
    )
    for path in ("/admin", "/login?roles=admin", "/admin"):
        response = client.get(path)
        response.close()
    assert response.status_code == 200


# -- AuthRedirect ---------------------------------------------------------------------


def next_of(response: Any) -> str:
    location = response.headers["Location"]
    return parse_qs(urlsplit(location).query)["next"][0]


def test_auth_redirect_sends_visitors_to_login_with_next() -> None:
    client = client_for(lambda app: AuthRedirect(app, paths=["/account"]))
    response = client.get("/account/orders?page=2&sort=new")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert next_of(response) == "/account/orders?page=2&sort=new"
    assert safe_next(next_of(response)) == "/account/orders?page=2&sort=new"


def test_auth_redirect_keeps_encoded_characters_in_next() -> None:
    client = client_for(lambda app: AuthRedirect(app))
    response = client.get("/caf%C3%A9/a%20b?q=%26x")
    assert next_of(response) == "/caf%C3%A9/a%20b?q=%26x"


def test_auth_redirect_adds_next_to_a_location_with_a_query() -> None:
    client = client_for(lambda app: AuthRedirect(app, location="/auth?mode=form", paths="/a"))
    location = client.get("/a").headers["Location"]
    assert location.startswith("/auth?mode=form&next=")


def test_auth_redirect_includes_the_mount_point_in_next() -> None:
    client = client_for(lambda app: AuthRedirect(app, paths="/a"))
    response = client.get("/a/b", base_url="http://localhost/shop")
    assert next_of(response) == "/shop/a/b"


def test_auth_redirect_never_redirects_the_login_page_itself() -> None:
    app = AuthRedirect(text_app(lambda request: "form"), location="/login")
    client = Client(SessionMiddleware(app, secret_key=SECRET))
    assert client.get("/login").text == "form"
    assert client.get("/secret").status_code == 303


@pytest.mark.parametrize("path", ["//evil.example/x", "/\\evil.example", "//evil.example"])
def test_auth_redirect_next_is_never_off_site(path: str) -> None:
    client = client_for(lambda app: AuthRedirect(app))
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 303
    target = next_of(response)
    assert target == safe_next(target)
    assert not target.startswith("//")
    assert "\\" not in target


def test_auth_redirect_after_login_lets_the_user_in() -> None:
    client = client_for(lambda app: AuthRedirect(app, paths=["/account"]))
    client.get("/login?user=alice")
    assert client.get("/account").text == "page /account"


def test_auth_redirect_answers_403_to_a_logged_in_user_without_the_role() -> None:
    client = client_for(lambda app: AuthRedirect(app, roles=["admin"], paths=["/admin"]))
    assert client.get("/admin").status_code == 303
    client.get("/login?user=bob&roles=editor")
    assert client.get("/admin").status_code == 403


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        3,
        "https://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        " /account",
        "account",
        "/" + "a" * 3000,
    ],
)
def test_safe_next_refuses_anything_off_site(value: Any) -> None:
    assert safe_next(value) == "/"
    assert safe_next(value, default="/home") == "/home"


@pytest.mark.parametrize("value", ["/", "/account", "/a?b=c&d=/e", "/caf%C3%A9", "/café"])
def test_safe_next_keeps_same_site_paths(value: str) -> None:
    assert safe_next(value) == value


# -- decorators on a plain WSGI callable ------------------------------------------------


def plain_wsgi(decorate: Callable[[Any], Any]) -> Client:
    @decorate
    def view(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"secret"]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/login":
            login("alice", roles=environ["QUERY_STRING"].split(","))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return view(environ, start_response)

    return Client(SessionMiddleware(app, secret_key=SECRET))


def test_login_required_on_a_plain_wsgi_app() -> None:
    client = plain_wsgi(login_required)
    refused = client.get("/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].strip() == "Cookie"
    client.get("/login?editor")
    assert client.get("/").text == "secret"


def test_login_required_with_roles_on_a_plain_wsgi_app() -> None:
    client = plain_wsgi(login_required(roles=["admin"]))
    assert client.get("/").status_code == 401
    client.get("/login?editor")
    assert client.get("/").status_code == 403
    client.get("/login?admin")
    assert client.get("/").text == "secret"


def test_guarded_on_a_plain_wsgi_app() -> None:
    client = plain_wsgi(guarded(lambda ctx: ctx.request.args.get("pin") == "1234"))
    assert client.get("/?pin=1234").text == "secret"
    assert client.get("/?pin=0000").status_code == 403


def test_decorators_raise_werkzeug_errors_a_framework_can_catch() -> None:
    @login_required
    def view() -> str:
        return "secret"

    @guarded(lambda ctx: False)
    def other() -> str:
        return "secret"

    raised: list[Exception] = []

    def catching(request: Request) -> str:
        for call in (view, other):
            try:
                call()
            except (Unauthorized, Forbidden) as exc:
                raised.append(exc)
        return ""

    Client(SessionMiddleware(text_app(catching), secret_key=SECRET)).get("/")
    assert [exc.code for exc in raised if isinstance(exc, HTTPException)] == [401, 403]
    assert isinstance(raised[0], Unauthorized)
    assert isinstance(raised[1], Forbidden)


def test_decorators_keep_the_views_name_and_docstring() -> None:
    @login_required(roles="admin")
    def dashboard() -> None:
        """The dashboard."""

    assert dashboard.__name__ == "dashboard"
    assert dashboard.__doc__ == "The dashboard."


def test_a_decorated_view_outside_the_middleware_says_how_to_fix_it() -> None:
    @login_required
    def view() -> str:
        return "secret"

    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        contextvars.Context().run(view)


# -- Flask --------------------------------------------------------------------------


def make_flask() -> Any:
    import flask

    app = flask.Flask(__name__)

    @app.post("/login")
    def do_login() -> Any:
        login(flask.request.form["user"], roles=flask.request.form.getlist("role"))
        return flask.redirect(safe_next(flask.request.args.get("next")), 303)

    @app.get("/login")
    def login_form() -> str:
        return csrf_token()

    @app.post("/logout")
    def do_logout() -> str:
        logout()
        return "bye"

    @app.get("/account")
    @login_required
    def account() -> str:
        user = current_user()
        assert user is not None
        return f"hello {user.user_id}"

    @app.get("/reports")
    @login_required(roles=["admin", "auditor"])
    def reports() -> str:
        return "reports"

    @app.get("/beta")
    @guarded(lambda ctx: ctx.request.cookies.get("beta") == "1")
    def beta() -> str:
        return "beta"

    @app.get("/admin/")
    def admin() -> str:
        return "admin"

    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        CsrfMiddleware(
            AuthRedirect(Auth(app.wsgi_app, roles=["admin"], paths=["/admin"]), paths="/admin")
        ),
        secret_key=SECRET,
    )
    return app


def test_flask_login_flow_with_auth_redirect_csrf_and_logout() -> None:
    client = make_flask().test_client()
    to_login = client.get("/admin/?tab=users")
    assert to_login.status_code == 303
    next_url = next_of(to_login)
    assert next_url == "/admin/?tab=users"
    token = client.get("/login").text
    back = client.post(
        "/login?next=" + next_url.replace("?", "%3F").replace("&", "%26").replace("=", "%3D"),
        data={"user": "root", "role": "admin", "csrf_token": token},
    )
    assert back.status_code == 303
    assert back.headers["Location"] == "/admin/?tab=users"
    assert client.get("/admin/").text == "admin"
    # The token from before the login was rotated away:
    assert client.post("/logout", data={"csrf_token": token}).status_code == 403
    fresh = client.get("/login").text
    assert client.post("/logout", data={"csrf_token": fresh}).text == "bye"
    assert client.get("/admin/").status_code == 303


def test_flask_login_post_refuses_an_off_site_next() -> None:
    client = make_flask().test_client()
    token = client.get("/login").text
    response = client.post(
        "/login?next=https://evil.example/", data={"user": "a", "csrf_token": token}
    )
    assert response.headers["Location"] == "/"


def test_flask_views_with_decorators() -> None:
    client = make_flask().test_client()
    refused = client.get("/account")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].strip() == "Cookie"
    assert refused.mimetype == "text/plain"
    assert client.get("/reports", headers={"Accept": "application/json"}).json == {
        "error": "not_logged_in",
        "message": "Log in to see this page.",
    }
    token = client.get("/login").text
    client.post("/login", data={"user": "ann", "role": "auditor", "csrf_token": token})
    assert client.get("/account").text == "hello ann"
    assert client.get("/reports").text == "reports"
    assert client.get("/beta").status_code == 403
    client.set_cookie("beta", "1")
    assert client.get("/beta").text == "beta"


def test_flask_login_changes_the_session_cookie() -> None:
    client = make_flask().test_client()
    token = client.get("/login").text
    before = client.get_cookie("session")
    assert before is not None
    client.post("/login", data={"user": "root", "role": "admin", "csrf_token": token})
    after = client.get_cookie("session")
    assert after is not None
    assert after.value != before.value
    planted = make_flask().test_client()
    planted.set_cookie("session", before.value)
    assert planted.get("/account").status_code == 401


# -- Django -------------------------------------------------------------------------


def make_django() -> Client:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path
    from django.views import View

    from .djangoapp import django_app

    def do_login(request: HttpRequest) -> HttpResponse:
        login(request.POST["user"], roles=request.POST.getlist("role"))
        return HttpResponse("ok")

    def token(request: HttpRequest) -> HttpResponse:
        return HttpResponse(csrf_token(), content_type="text/plain")

    @login_required
    def account(request: HttpRequest) -> HttpResponse:
        user = current_user()
        assert user is not None
        return HttpResponse(f"hello {user.user_id}")

    @login_required(roles="admin")
    def admin(request: HttpRequest, section: str) -> HttpResponse:
        return HttpResponse(f"admin {section}")

    @guarded(lambda ctx: ctx.request.args.get("pin") == "1234")
    def vault(request: HttpRequest) -> HttpResponse:
        return HttpResponse("vault")

    class Settings(View):
        @login_required
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("settings")

    app = django_app(
        [
            path("login", do_login),
            path("token", token),
            path("account", account),
            path("admin/<str:section>", admin),
            path("vault", vault),
            path("settings", Settings.as_view()),
        ]
    )
    return Client(SessionMiddleware(CsrfMiddleware(app), secret_key=SECRET))


def django_login(client: Client, user: str, *roles: str) -> None:
    token = client.get("/token").text
    response = client.post("/login", data={"user": user, "role": list(roles), "csrf_token": token})
    assert response.text == "ok"


def test_django_views_answer_401_and_403_not_500() -> None:
    client = make_django()
    refused = client.get("/account")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].strip() == "Cookie"
    assert refused.text == "401 Unauthorized: Log in to see this page.\n"
    assert client.get("/settings").status_code == 401
    json_refusal = client.get("/admin/users", headers={"Accept": "application/json"})
    assert json_refusal.status_code == 401
    assert json_refusal.mimetype == "application/json"
    django_login(client, "bob", "editor")
    assert client.get("/account").text == "hello bob"
    assert client.get("/settings").text == "settings"
    no_role = client.get("/admin/users")
    assert no_role.status_code == 403
    assert "needs the role 'admin'" in no_role.text
    django_login(client, "bob", "admin")
    assert client.get("/admin/users").text == "admin users"


def test_django_guarded_view() -> None:
    client = make_django()
    assert client.get("/vault?pin=0000").status_code == 403
    assert client.get("/vault?pin=1234").text == "vault"


def test_django_login_changes_the_session_cookie_and_the_old_one_stays_anonymous() -> None:
    client = make_django()
    client.get("/token")
    before = client.get_cookie("session")
    assert before is not None
    django_login(client, "bob")
    after = client.get_cookie("session")
    assert after is not None
    assert after.value != before.value
    planted = make_django()
    planted.set_cookie("session", before.value)
    assert planted.get("/account").status_code == 401


@pytest.mark.parametrize("roles", [[""], [1], ["admin", None]])
def test_a_bad_role_is_a_configuration_error_at_start_up(roles: Any) -> None:
    with pytest.raises(ConfigurationError, match="roles must be a non-empty str"):
        Auth(text_app(lambda r: "x"), roles=roles)
    with pytest.raises(ConfigurationError, match="roles must be a non-empty str"):
        login_required(roles=roles)
