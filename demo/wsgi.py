"""The demo site as a plain WSGI app built on wsgisession (``make demo``).

It counts your visits, keeps a profile (a name and an e-mail address, checked by
``validate_body`` with the errors shown next to the fields), keeps a cart, logs you
in and out (passwords hashed with scrypt, "remember me"), says what happened with
flash messages, passes page data to JavaScript with ``at_json``, has an admin page
only the ``admin`` role may see, and a "Your devices" page listing your sessions,
API tokens among them: ``POST /api/login`` with the ``X-Auth-Token`` header (from
curl, say) logs a token in, a session carried in that header (``header=``).
Every form carries a CSRF token; a refused request gets a page of the site
(``error_page=``), not a line of plain text, and an ``/api/`` request JSON. A
browser logged out from another device is told so (a signed cookie,
``set_signed_cookie``, remembers that it had logged in). The same site runs on Flask
(:mod:`demo.flask_app`) and Django (:mod:`demo.django_app`) with their own idioms,
from the same templates (``demo/templates``) and stylesheet (``demo/static``).
Users: ``alice``/``wonderland`` (admin) and ``bob``/``builder``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.wrappers import Request, Response

from wsgisession import (
    Auth,
    AuthRedirect,
    CsrfMiddleware,
    FlashLevel,
    SessionMiddleware,
    SessionVar,
    at,
    at_json,
    body,
    csrf_token,
    current_user,
    flash,
    get_flashed_messages,
    get_signed_cookie,
    login,
    logout,
    logout_everywhere,
    revoke,
    safe_next,
    session,
    sessions_of,
    set_signed_cookie,
    track_devices,
    validate_body,
)
from wsgisession.errors import ConfigurationError, CsrfError, HTTPError, NotLoggedIn
from wsgisession.stores import ServerSessionStore

from .common import (
    API_LOGGED_OUT,
    API_LOGIN_FIRST,
    DEVICES_UNAVAILABLE,
    ERROR_TITLES,
    LOGIN_NEEDED,
    SESSION_MAX_AGE,
    SIGNED_IN_COOKIE,
    SIGNED_OUT_ELSEWHERE,
    STATIC,
    TEMPLATES,
    TOKEN_HEADER,
    CartItem,
    Credentials,
    Profile,
    TokenHeaderMissing,
    WrongCredentials,
    api_logged_in,
    check_password,
    csrf_message,
    device_rows,
    error_json,
    error_message,
    field_errors,
    log,
    outage_page,
    secret_key,
    session_store,
    token_panel,
    wants_json,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

templates = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
)

FRAMEWORK = "plain WSGI (werkzeug)"


class Visitor:
    """What the demo remembers about a visitor, typed."""

    name = SessionVar(str, default="")
    email = SessionVar(str, default="")


def level_name(level: int) -> str:
    """The CSS name of a flash level: success, info, warning or error."""
    if level >= FlashLevel.ERROR:
        return "error"
    if level >= FlashLevel.WARNING:
        return "warning"
    return "success" if level == FlashLevel.SUCCESS else "info"


def user_name() -> str | None:
    """The name of the logged-in user, as the site shows it; ``None``: not logged in."""
    user = current_user()
    return str(user.extra.get("name", user.user_id)) if user else None


def render(template: str, title: str, status: int = 200, **context: Any) -> Response:
    """A page of the site: *template* in the shared layout, never kept by a cache.

    ``no-store``: every page shows who is logged in and carries a CSRF token, so after
    logout the Back button must fetch it again rather than show the old one.
    """
    at["page"] = {"title": title, "user": Visitor.name.get() or None}
    page = templates.get_template(template).render(
        title=title,
        user=user_name(),
        messages=[(level_name(m.level), str(m)) for m in get_flashed_messages()],
        csrf_token=csrf_token,
        csrf_name="csrf_token",
        csrf_header="X-CSRF-Token",
        admin_url="/admin",
        framework=FRAMEWORK,
        page_data=at_json("page"),
        **context,
    )
    response = Response(page, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(location: str) -> Response:
    """A 303 See Other: the answer to a successful POST."""
    return Response(status=303, headers={"Location": location})


def home(request: Request, form: dict[str, str] | None = None, **errors: str) -> Response:
    """The visit counter and the profile form (re-shown with its errors by /profile)."""
    session["visits"] = visits = session.get("visits", 0) + 1
    name = Visitor.name.get()
    if form is None:
        form = {"name": name, "email": Visitor.email.get()}
    return render(
        "home.html",
        f"Hello, {name or user_name() or 'stranger'}!",
        status=400 if errors else 200,
        visits=visits,
        form=form,
        errors=errors,
    )


def profile(request: Request) -> Response:
    """POST /profile: check the form with ``validate_body``; errors go by the fields."""
    result = validate_body(Profile)
    if result.value is None:
        errors = field_errors(error.field for error in result.errors)
        return home(request, form=dict(request.form), **errors)
    Visitor.name.set(result.value.name)
    Visitor.email.set(result.value.email)
    flash(f"Nice to meet you, {result.value.name}.", FlashLevel.SUCCESS)
    return redirect("/")


def forget(request: Request) -> Response:
    """POST /forget: clear the whole session (and get a new session id), login too."""
    session.clear()
    flash("Forgotten. This is a new session.")
    response = redirect("/")
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


def cart(request: Request) -> Response:
    """GET shows the cart; POST adds an item (a change in place, saved by content)."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        result = validate_body(CartItem)
        if result.value is not None:
            session.setdefault("cart", []).append(result.value.item)
            flash(f"Added {result.value.item} to your cart.", FlashLevel.SUCCESS)
            return redirect("/cart")
        errors = field_errors(error.field for error in result.errors)
    return render(
        "cart.html",
        "Your cart",
        status=400 if errors else 200,
        items=session.get("cart", []),
        form=dict(request.form),
        errors=errors,
    )


def json_response(data: object) -> Response:
    return Response(json.dumps(data), content_type="application/json")


def token_login_required() -> None:
    """A token (a session in the ``X-Auth-Token`` header) is a login: one that is not
    logged in (logged out, revoked, expired, or never) is refused with a ``401``."""
    if session.transport == "header" and current_user() is None:
        raise NotLoggedIn(API_LOGIN_FIRST)


def api_cart(request: Request) -> Response:
    """GET /api/cart: the cart as JSON; POST with ``{"item": ...}`` (or a form) adds to it.

    A browser's fetch() sends the cookie and a CSRF token; an API client its token.
    """
    token_login_required()
    cart_items = session.get("cart", [])
    if request.method == "POST":
        added = body(CartItem)  # a 400 listing the bad fields, as JSON, if invalid
        cart_items = session.setdefault("cart", [])
        cart_items.append(added.item)
    return json_response({"cart": cart_items})


def api_login(request: Request) -> Response:
    """POST /api/login: check the password and log the token in; the new token comes
    back in the ``X-Auth-Token`` header (the middleware sets it)."""
    if session.transport != "header":
        raise TokenHeaderMissing()
    credentials = body(Credentials)
    roles = check_password(credentials.username, credentials.password)
    if roles is None:
        raise WrongCredentials()
    login(credentials.username, roles=roles, name=credentials.username.title())
    return json_response(api_logged_in(credentials.username))


def api_logout(request: Request) -> Response:
    """POST /api/logout: end the session; the token's header comes back empty."""
    logout()
    return json_response(API_LOGGED_OUT)


def login_page(request: Request) -> Response:
    """GET shows the form; POST checks the password and logs in (new session id).

    The profile belongs to the user: a name typed in before logging in is not theirs.
    """
    error = ""
    if request.method == "POST":
        name = request.form.get("username", "")
        roles = check_password(name, request.form.get("password", ""))
        if roles is not None:
            remember = "remember" in request.form
            login(name, roles=roles, name=name.title(), remember=remember)
            Visitor.name.remove()
            Visitor.email.remove()
            flash(f"Welcome back, {name.title()}.", FlashLevel.SUCCESS)
            response = redirect(safe_next(request.args.get("next")))
            set_signed_cookie(
                response.headers, SIGNED_IN_COOKIE, 1, max_age=SESSION_MAX_AGE if remember else None
            )
            return response
        error = "Wrong user name or password."
    action = "/login" + (f"?{request.query_string.decode()}" if "next" in request.args else "")
    return render(
        "login.html",
        "Log in",
        status=400 if error else 200,
        error=error,
        notice=LOGIN_NEEDED if request.method == "GET" and "next" in request.args else "",
        action=action,
        form={"username": request.form.get("username", ""), "remember": "remember" in request.form},
    )


def logout_view(request: Request) -> Response:
    """POST /logout: end the session."""
    logout()
    flash("You are logged out.")
    response = redirect("/")
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


def admin(request: Request) -> Response:
    """Only the admin role gets here (the Auth middleware refuses everyone else)."""
    return render("admin.html", "Admin")


def devices(request: Request) -> Response:
    """GET lists the user's sessions; POST revokes one, or all but this one."""
    if request.method == "POST":
        if request.form.get("everywhere"):
            ended = logout_everywhere()
            flash(f"Logged out everywhere else ({ended} other session(s) ended).")
        elif revoke(request.form.get("handle", "")):
            flash("That session is logged out.", FlashLevel.SUCCESS)
        else:
            flash("That session had already ended.", FlashLevel.WARNING)
        return redirect("/devices")
    try:
        listed = sessions_of()
    except ConfigurationError as exc:  # the cookie store: no server record to list
        log.info("the devices page lists nothing: %s", exc)
        return render("devices.html", "Your devices", unavailable=DEVICES_UNAVAILABLE)
    user = current_user()
    assert user is not None  # AuthRedirect lets only a logged-in user in
    panel = token_panel(request.host_url, str(user.user_id))
    return render("devices.html", "Your devices", devices=device_rows(listed), token=panel)


ROUTES: dict[tuple[str, str], Callable[[Request], Response]] = {
    ("GET", "/"): home,
    ("POST", "/profile"): profile,
    ("POST", "/forget"): forget,
    ("GET", "/cart"): cart,
    ("POST", "/cart"): cart,
    ("GET", "/api/cart"): api_cart,
    ("POST", "/api/cart"): api_cart,
    ("POST", "/api/login"): api_login,
    ("POST", "/api/logout"): api_logout,
    ("GET", "/login"): login_page,
    ("POST", "/login"): login_page,
    ("POST", "/logout"): logout_view,
    ("GET", "/admin"): admin,
    ("GET", "/devices"): devices,
    ("POST", "/devices"): devices,
}


def error_response(refusal: HTTPException, request: Request) -> Response:
    """The site's answer to *refusal* (a 403, 404, 405 …): JSON to an ``/api/`` request
    or a client that asks for it, else a page in the layout."""
    code = refusal.code or 500
    if wants_json(request.path, request.headers.get("Accept")):
        data = (
            refusal.json() if isinstance(refusal, HTTPError) else error_json(code, request.method)
        )
        response = Response(json.dumps(data), status=code, content_type="application/json")
    else:
        message = (
            csrf_message(refusal.reason)
            if isinstance(refusal, CsrfError)
            else error_message(code, request.method)
        )
        response = render(
            "error.html", ERROR_TITLES.get(code, "Error"), status=code, code=code, message=message
        )
    # What a client needs whatever the page looks like: when to retry, what to use.
    for name, value in refusal.get_headers():
        if name in ("Allow", "Retry-After", "WWW-Authenticate"):
            response.headers[name] = value
    return response


def error_page(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
    """``error_page=`` of the guards and the CSRF check: the site's own page."""
    return error_response(refusal, Request(environ))


def logged_out_elsewhere(request: Request) -> bool:
    """Whether this browser had logged in, and its login ended without its logout."""
    return bool(get_signed_cookie(request.environ, SIGNED_IN_COOKIE)) and current_user() is None


@Request.application  # type: ignore[arg-type]
def site(request: Request) -> Response:
    """Dispatch to the view for the method and path; errors as pages of the site."""
    ended = request.method == "GET" and logged_out_elsewhere(request)
    if ended:
        flash(SIGNED_OUT_ELSEWHERE, FlashLevel.WARNING)
    try:
        view = ROUTES.get((request.method, request.path))
        if view is not None:
            response = view(request)
        else:
            allowed = [method for method, path in ROUTES if path == request.path]
            raise MethodNotAllowed(allowed) if allowed else NotFound()
    except HTTPException as exc:
        if exc.code == 503:  # the store is down: a page that needs no session
            return outage(exc, request.environ)  # type: ignore[return-value]
        response = error_response(exc, request)
    if ended:
        response.delete_cookie(SIGNED_IN_COOKIE)
    return response


def protect(app: WSGIApplication) -> WSGIApplication:
    """The admin guard and CSRF protection around *app*, with the site's error pages."""
    app = Auth(app, roles=["admin"], paths=["/admin"], error_page=error_page)
    app = AuthRedirect(app, location="/login", paths=["/admin", "/devices"], error_page=error_page)
    # /api/login logs in a token only (a session in the X-Auth-Token header, which no
    # browser sends unasked) and refuses any other request itself, with a 400 saying
    # to send the header: not a CSRF refusal that would puzzle a curl user.
    return CsrfMiddleware(app, exempt_paths=["/api/login"], error_page=error_page)


#: The 503 page of a store outage (made without the session).
outage = outage_page(FRAMEWORK, "/admin")


def create_app() -> WSGIApplication:
    """The site with its middlewares, outermost last; devices tracked on server stores."""
    middleware = SessionMiddleware(
        protect(site),
        secret_key=secret_key(),
        store=session_store(),
        max_age=SESSION_MAX_AGE,
        error_page=outage,
        header=TOKEN_HEADER,  # API clients' tokens; browsers keep the cookie
    )
    if isinstance(middleware.store, ServerSessionStore):
        track_devices(middleware)
    else:
        log.info("device tracking is off: the cookie store keeps no record to list or end")
    exports = {"/static": str(STATIC), "/favicon.ico": str(STATIC / "favicon.ico")}
    return SharedDataMiddleware(middleware, exports)


app = create_app()
