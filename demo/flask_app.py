"""The demo site as a Flask app (``make demo-flask``).

Flask's own idioms: routes, the shared Jinja templates through ``render_template``,
``flask.session``, ``flask.flash``, ``csrf_token()`` in templates; wsgisession
comes in through :func:`~wsgisession.contrib.flask.init_app` (the session) and
``CsrfMiddleware`` around ``app.wsgi_app``. Access checks are wsgisession's
``login_required`` decorator, whose ``401``/``403`` Flask's error handlers render.
A request the CSRF check refuses comes back into Flask (its ``error_page``) so that
the same handler renders it with the layout; ``/api/`` requests get JSON. A store
outage gets the site's 503 page through ``init_app(error_page=...)``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import flask
from jinja2.utils import htmlsafe_json_dumps
from werkzeug.exceptions import HTTPException

from wsgisession import (
    CsrfMiddleware,
    body,
    current_user,
    get_signed_cookie,
    login,
    login_required,
    logout,
    logout_everywhere,
    revoke,
    safe_next,
    sessions_of,
    set_signed_cookie,
    track_devices,
    validate_body,
)
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError, CsrfError, HTTPError
from wsgisession.stores import ServerSessionStore

from .common import (
    DEVICES_UNAVAILABLE,
    ERROR_TITLES,
    LOGIN_NEEDED,
    SESSION_MAX_AGE,
    SIGNED_IN_COOKIE,
    SIGNED_OUT_ELSEWHERE,
    STATIC,
    TEMPLATES,
    CartItem,
    Profile,
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
    wants_json,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

#: Where a refusal of the CSRF check waits for Flask to render it.
REFUSAL_KEY = "demo.refusal"

FRAMEWORK = "Flask"

bp = flask.Blueprint("demo", __name__)


def user_name() -> str | None:
    """The name of the logged-in user, as the site shows it; ``None``: not logged in."""
    user = current_user()
    return str(user.extra.get("name", user.user_id)) if user else None


@bp.app_context_processor
def layout_context() -> dict[str, Any]:
    """What the shared layout needs, the Flask way."""
    categories = {"message": "info", "danger": "error"}
    return {
        "user": user_name(),
        "messages": [
            (categories.get(c, c), m) for c, m in flask.get_flashed_messages(with_categories=True)
        ],
        "csrf_name": "csrf_token",
        "csrf_header": "X-CSRF-Token",
        "admin_url": "/admin",
        "framework": FRAMEWORK,
        "page_data": htmlsafe_json_dumps(
            {"title": flask.g.get("title"), "user": flask.session.get("name") or None}
        ),
    }


def page(template: str, title: str, status: int = 200, **context: Any) -> flask.Response:
    """*template* in the layout; ``no-store``, as every page names the user."""
    flask.g.title = title
    response = flask.make_response(flask.render_template(template, title=title, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def home(form: dict[str, str] | None = None, **errors: str) -> flask.Response:
    flask.session["visits"] = visits = flask.session.get("visits", 0) + 1
    name = flask.session.get("name", "")
    return page(
        "home.html",
        f"Hello, {name or user_name() or 'stranger'}!",
        status=400 if errors else 200,
        visits=visits,
        form=form or {"name": name, "email": flask.session.get("email", "")},
        errors=errors,
    )


@bp.post("/profile")
def profile() -> Any:
    result = validate_body(Profile)
    if result.value is None:
        errors = field_errors(error.field for error in result.errors)
        return home(form=flask.request.form.to_dict(), **errors)
    flask.session["name"] = result.value.name
    flask.session["email"] = result.value.email
    flask.flash(f"Nice to meet you, {result.value.name}.", "success")
    return flask.redirect("/", 303)


@bp.post("/forget")
def forget() -> Any:
    flask.session.clear()
    flask.flash("Forgotten. This is a new session.")
    response = flask.redirect("/", 303)
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


@bp.route("/cart", methods=["GET", "POST"])
def cart() -> Any:
    errors = {}
    if flask.request.method == "POST":
        result = validate_body(CartItem)
        if result.value is not None:
            flask.session.setdefault("cart", []).append(result.value.item)
            flask.flash(f"Added {result.value.item} to your cart.", "success")
            return flask.redirect("/cart", 303)
        errors = field_errors(error.field for error in result.errors)
    return page(
        "cart.html",
        "Your cart",
        status=400 if errors else 200,
        items=flask.session.get("cart", []),
        form=flask.request.form.to_dict(),
        errors=errors,
    )


@bp.post("/api/cart")
def api_cart() -> Any:
    added = body(CartItem)
    flask.session.setdefault("cart", []).append(added.item)
    return {"cart": flask.session["cart"]}


@bp.route("/login", methods=["GET", "POST"])
def login_page() -> Any:
    form = flask.request.form
    error = ""
    if flask.request.method == "POST":
        name = form.get("username", "")
        roles = check_password(name, form.get("password", ""))
        if roles is not None:
            remember = "remember" in form
            login(name, roles=roles, name=name.title(), remember=remember)
            # The profile belongs to the user: a name typed in before is not theirs.
            flask.session.pop("name", None)
            flask.session.pop("email", None)
            flask.flash(f"Welcome back, {name.title()}.", "success")
            response = flask.redirect(safe_next(flask.request.args.get("next")), 303)
            set_signed_cookie(
                response.headers, SIGNED_IN_COOKIE, 1, max_age=SESSION_MAX_AGE if remember else None
            )
            return response
        error = "Wrong user name or password."
    query = flask.request.query_string.decode()
    return page(
        "login.html",
        "Log in",
        status=400 if error else 200,
        error=error,
        notice=LOGIN_NEEDED
        if flask.request.method == "GET" and "next" in flask.request.args
        else "",
        action="/login" + (f"?{query}" if "next" in flask.request.args else ""),
        form={"username": form.get("username", ""), "remember": "remember" in form},
    )


@bp.post("/logout")
def logout_view() -> Any:
    logout()
    flask.flash("You are logged out.")
    response = flask.redirect("/", 303)
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


@bp.get("/admin")
@login_required(roles=["admin"])
def admin() -> Any:
    return page("admin.html", "Admin")


@bp.route("/devices", methods=["GET", "POST"])
@login_required
def devices() -> Any:
    if flask.request.method == "POST":
        if flask.request.form.get("everywhere"):
            ended = logout_everywhere()
            flask.flash(f"Logged out everywhere else ({ended} other session(s) ended).")
        elif revoke(flask.request.form.get("handle", "")):
            flask.flash("That session is logged out.", "success")
        else:
            flask.flash("That session had already ended.", "warning")
        return flask.redirect("/devices", 303)
    try:
        listed = sessions_of()
    except ConfigurationError as exc:  # the cookie store: no server record to list
        log.info("the devices page lists nothing: %s", exc)
        return page("devices.html", "Your devices", unavailable=DEVICES_UNAVAILABLE)
    return page("devices.html", "Your devices", devices=device_rows(listed))


@bp.get("/favicon.ico")
def favicon() -> Any:
    return flask.send_from_directory(STATIC, "favicon.ico")


@bp.before_app_request
def refused_outside() -> None:
    """A request the CSRF check refused: raise its refusal for the handler below."""
    refusal = flask.request.environ.get(REFUSAL_KEY)
    if refusal is not None:
        raise refusal


@bp.before_app_request
def logged_out_elsewhere() -> None:
    """A browser that had logged in, whose login ended without its logout: say so."""
    request = flask.request
    if request.method != "GET" or request.endpoint in (None, "static", "demo.favicon"):
        return
    if get_signed_cookie(request.environ, SIGNED_IN_COOKIE) and current_user() is None:
        flask.flash(SIGNED_OUT_ELSEWHERE, "warning")

        @flask.after_this_request
        def forget_login(response: flask.Response) -> flask.Response:
            response.delete_cookie(SIGNED_IN_COOKIE)
            return response


@bp.app_errorhandler(HTTPException)
def error(exc: HTTPException) -> Any:
    """Every HTTP error as a page of the site; JSON for API clients; 401: log in."""
    request = flask.request
    code = exc.code or 500
    if wants_json(request.path, request.headers.get("Accept")):
        data = exc.json() if isinstance(exc, HTTPError) else error_json(code, request.method)
        response = flask.Response(json.dumps(data), code, content_type="application/json")
    elif code == 401:
        target = request.full_path.removesuffix("?")
        return flask.redirect("/login?" + urlencode({"next": target}), 303)
    else:
        message = (
            csrf_message(exc.reason)
            if isinstance(exc, CsrfError)
            else error_message(code, request.method)
        )
        response = page(
            "error.html", ERROR_TITLES.get(code, "Error"), code, code=code, message=message
        )
    # What a client needs whatever the page looks like: when to retry, what to use.
    for name, value in exc.get_headers():
        if name in ("Allow", "Retry-After", "WWW-Authenticate"):
            response.headers[name] = value
    return response


def create_app() -> flask.Flask:
    """The Flask app: the blueprint, the CSRF check, then the session (``init_app``)."""
    app = flask.Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.secret_key = secret_key()
    # Flask sends no SameSite by default; the other variants' cookies are Lax.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.register_blueprint(bp)
    flask_wsgi = app.wsgi_app

    def back_into_flask(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
        environ[REFUSAL_KEY] = refusal
        return flask_wsgi

    app.wsgi_app = CsrfMiddleware(app.wsgi_app, error_page=back_into_flask)  # type: ignore[method-assign]
    sessions = init_app(
        app,
        store=session_store(),
        # Flask's own default is a cookie that ends with the browser, and "remember
        # me" for 30 days; the site's sessions last 14 days in every variant.
        max_age=SESSION_MAX_AGE,
        error_page=outage_page(FRAMEWORK, "/admin"),
    )
    middleware = sessions.session_middleware()
    if middleware is not None and isinstance(middleware.store, ServerSessionStore):
        track_devices(middleware)
    else:
        log.info("device tracking is off: the cookie store keeps no record to list or end")
    return app


app = create_app()
