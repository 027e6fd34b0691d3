"""The demo site as a Flask app (``make demo-flask``).

Flask's own idioms: routes, the shared Jinja templates through ``render_template``,
``flask.session``, ``flask.flash``, ``csrf_token()`` in templates; wsgisession
comes in through :func:`~wsgisession.contrib.flask.init_app` (the session) and
``CsrfMiddleware`` around ``app.wsgi_app``. Access checks are wsgisession's
``login_required`` decorator, whose ``401``/``403`` Flask's error handlers render.
A request the CSRF check refuses comes back into Flask (its ``error_page``) so that
the same handler renders it with the layout; ``/api/`` requests get JSON. A store
outage gets the site's 503 page through ``init_app(error_page=...)``; API clients'
tokens travel in the ``X-Auth-Token`` header (``init_app(header=...)``).

The switch from Flask's own sessions, with everyone still logged in (docs/demo.md):

- ``WSGISESSION_DEMO_SESSIONS=flask``: the site before the switch, on Flask's own
  cookie session (no ``init_app``), keeping its logins as a plain Flask app does,
  in ``session["user_id"]``, "remember me" as ``session.permanent``, and a CSRF token
  of its own (:data:`own_accounts`);
- ``WSGISESSION_DEMO_MIGRATE_FROM=flask``: the site on wsgisession, with
  ``init_app(..., migrate_from="flask", migrate_until=...)``: each browser's Flask
  session is carried over on its next request, and :func:`adopt_flask_login` makes
  the login in it a login of ours.
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import flask
from jinja2.utils import htmlsafe_json_dumps
from werkzeug.exceptions import Forbidden, HTTPException, Unauthorized

from wsgisession import (
    CsrfMiddleware,
    RequestScope,
    body,
    current_user,
    get_signed_cookie,
    login,
    login_required,
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
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError, CsrfError, HTTPError, NotLoggedIn
from wsgisession.stores import ServerSessionStore

from .common import (
    API_LOGGED_OUT,
    API_LOGIN_FIRST,
    DEVICES_NOT_LISTED,
    DEVICES_UNAVAILABLE,
    ERROR_TITLES,
    LOGIN_NEEDED,
    MIGRATE_VARIABLE,
    SESSION_MAX_AGE,
    SESSIONS_VARIABLE,
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
    forget_switch,
    log,
    outage_page,
    roles_of,
    secret_key,
    session_store,
    switch_day,
    switch_stage,
    token_panel,
    wants_json,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

#: Where a refusal of the CSRF check waits for Flask to render it.
REFUSAL_KEY = "demo.refusal"

#: Where the app keeps the function naming the logged-in user (``app.extensions``):
#: wsgisession's login, or before the switch the one kept in Flask's session.
USER_NAME_KEY = "demo.user_name"

FRAMEWORK = "Flask"

V = TypeVar("V", bound=Callable[..., Any])

#: The site: the pages that are the same whoever keeps the session and the login.
bp = flask.Blueprint("demo", __name__)


def user_name() -> str | None:
    """The name of the logged-in user, as the site shows it; ``None``: not logged in."""
    named: Callable[[], str | None] = flask.current_app.extensions[USER_NAME_KEY]
    return named()


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


@bp.route("/api/cart", methods=["GET", "POST"])
def api_cart() -> Any:
    """GET: the cart as JSON; POST with ``{"item": ...}`` (or a form) adds to it. An API
    client's token must be logged in (``token_login_required``)."""
    if flask.request.method == "GET":
        return {"cart": flask.session.get("cart", [])}
    added = body(CartItem)
    flask.session.setdefault("cart", []).append(added.item)
    return {"cart": flask.session["cart"]}


def login_form(error: str = "") -> flask.Response:
    """The login page, or the form again with *error* after a wrong password."""
    request = flask.request
    query = request.query_string.decode()
    return page(
        "login.html",
        "Log in",
        status=400 if error else 200,
        error=error,
        notice=LOGIN_NEEDED if request.method == "GET" and "next" in request.args else "",
        action="/login" + (f"?{query}" if "next" in request.args else ""),
        form={
            "username": request.form.get("username", ""),
            "remember": "remember" in request.form,
        },
    )


@bp.get("/favicon.ico")
def favicon() -> Any:
    return flask.send_from_directory(STATIC, "favicon.ico")


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


# -- Logging in with wsgisession --------------------------------------------------

accounts = flask.Blueprint("accounts", __name__)


def wsgisession_user() -> str | None:
    """The name of the user logged in with :func:`~wsgisession.login`, if any."""
    user = current_user()
    return str(user.extra.get("name", user.user_id)) if user else None


def log_in(name: str, roles: tuple[str, ...], *, remember: bool) -> None:
    """Log *name* in with wsgisession (a new session id, a device of the user), and
    set the signed cookie saying this browser logged in (see ``logged_out_elsewhere``)."""
    login(name, roles=roles, name=name.title(), remember=remember)

    @flask.after_this_request
    def signed_in(response: flask.Response) -> flask.Response:
        max_age = SESSION_MAX_AGE if remember else None
        set_signed_cookie(response.headers, SIGNED_IN_COOKIE, 1, max_age=max_age)
        return response


@accounts.route("/login", methods=["GET", "POST"])
def login_page() -> Any:
    form = flask.request.form
    if flask.request.method == "GET":
        return login_form()
    name = form.get("username", "")
    roles = check_password(name, form.get("password", ""))
    if roles is None:
        return login_form("Wrong user name or password.")
    log_in(name, roles, remember="remember" in form)
    # The profile belongs to the user: a name typed in before is not theirs.
    flask.session.pop("name", None)
    flask.session.pop("email", None)
    flask.flash(f"Welcome back, {name.title()}.", "success")
    return flask.redirect(safe_next(flask.request.args.get("next")), 303)


@accounts.post("/logout")
def logout_view() -> Any:
    logout()
    flask.flash("You are logged out.")
    response = flask.redirect("/", 303)
    response.delete_cookie(SIGNED_IN_COOKIE)
    return response


@accounts.get("/admin")
@login_required(roles=["admin"])
def admin() -> Any:
    return page("admin.html", "Admin")


@accounts.route("/devices", methods=["GET", "POST"])
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
    user = current_user()
    assert user is not None  # login_required lets only a logged-in user in
    panel = token_panel(flask.request.host_url, str(user.user_id))
    return page("devices.html", "Your devices", devices=device_rows(listed), token=panel)


@accounts.post("/api/login")
def api_login() -> Any:
    """Check the password and log the token in; the new token comes back in the
    ``X-Auth-Token`` header (the middleware sets it)."""
    if session.transport != "header":
        raise TokenHeaderMissing()
    credentials = body(Credentials)
    roles = check_password(credentials.username, credentials.password)
    if roles is None:
        raise WrongCredentials()
    login(credentials.username, roles=roles, name=credentials.username.title())
    return api_logged_in(credentials.username)


@accounts.post("/api/logout")
def api_logout() -> Any:
    """End the session; the token's header comes back empty."""
    logout()
    return API_LOGGED_OUT


@accounts.before_app_request
def refused_outside() -> None:
    """A request the CSRF check refused: raise its refusal for the handler below."""
    refusal = flask.request.environ.get(REFUSAL_KEY)
    if refusal is not None:
        raise refusal


@accounts.before_app_request
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


@accounts.before_app_request
def token_login_required() -> None:
    """A token (a session in the ``X-Auth-Token`` header) is a login: the cart API
    refuses one that is not logged in (logged out, revoked, expired, or never)."""
    request = flask.request
    if request.endpoint == "demo.api_cart" and session.transport == "header" and not current_user():
        raise NotLoggedIn(API_LOGIN_FIRST)


# -- Before the switch: logging in with Flask's own session ----------------------
# What a plain Flask app keeps in its signed cookie, as Flask's tutorial does: the
# user's id, "remember me" as session.permanent, and a CSRF token of its own. Of
# wsgisession, only RequestScope (for validate_body(), see create_app) and CsrfError
# (for the refusal's page, the same as after the switch) remain.

#: Where the site keeps the logged-in user before the switch (Flask's tutorial's key).
USER_ID_KEY = "user_id"
#: Where it keeps its CSRF token before the switch (Flask-WTF's key).
OWN_CSRF_KEY = "csrf_token"

own_accounts = flask.Blueprint("own_accounts", __name__)


def flask_session_user() -> str | None:
    """The name of the user ``session["user_id"]`` names, if there is such a user."""
    name = flask.session.get(USER_ID_KEY)
    return name.title() if isinstance(name, str) and roles_of(name) is not None else None


def own_csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = flask.session.get(OWN_CSRF_KEY)
    if not isinstance(token, str):
        token = flask.session[OWN_CSRF_KEY] = secrets.token_urlsafe(32)
    return token


@own_accounts.app_context_processor
def own_layout_context() -> dict[str, Any]:
    return {"csrf_token": own_csrf_token, "session_owner": "Flask's own"}


@own_accounts.before_app_request
def check_own_csrf_token() -> None:
    """Refuse a POST whose token (form field or header) is not the session's."""
    request = flask.request
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = flask.session.get(OWN_CSRF_KEY)
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if not isinstance(expected, str):
        raise CsrfError("no_secret", "The session has no CSRF token: it ended.")
    if not sent:
        raise CsrfError("missing", "The request came without its CSRF token.")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError("invalid", "The CSRF token does not match the session.")


def own_login_required(roles: tuple[str, ...] = ()) -> Callable[[V], V]:
    """The view runs for a logged-in user with *roles*; else a 401 (log in) or 403."""

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user_roles = roles_of(flask.session.get(USER_ID_KEY))
            if user_roles is None:
                raise Unauthorized()
            if not set(roles) <= set(user_roles):
                raise Forbidden()
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


@own_accounts.route("/login", methods=["GET", "POST"])
def own_login_page() -> Any:
    form = flask.request.form
    if flask.request.method == "GET":
        return login_form()
    name = form.get("username", "")
    if check_password(name, form.get("password", "")) is None:
        return login_form("Wrong user name or password.")
    # A new CSRF token for the login; the profile belongs to the user.
    for key in (OWN_CSRF_KEY, "name", "email"):
        flask.session.pop(key, None)
    flask.session[USER_ID_KEY] = name
    # PERMANENT_SESSION_LIFETIME; otherwise the cookie ends with the browser.
    flask.session.permanent = "remember" in form
    flask.flash(f"Welcome back, {name.title()}.", "success")
    return flask.redirect(safe_next(flask.request.args.get("next")), 303)


@own_accounts.post("/logout")
def own_logout() -> Any:
    flask.session.clear()
    flask.flash("You are logged out.")
    return flask.redirect("/", 303)


@own_accounts.get("/admin")
@own_login_required(roles=("admin",))
def own_admin() -> Any:
    return page("admin.html", "Admin")


@own_accounts.get("/devices")
@own_login_required()
def own_devices() -> Any:
    return page("devices.html", "Your devices", unavailable=DEVICES_NOT_LISTED)


# -- The switch: the login carried over from Flask's session becomes ours --------


def adopt_flask_login() -> None:
    """While migrating: the login carried over from Flask's session becomes ours.

    Before the switch the site kept the user in ``session["user_id"]`` and "remember
    me" as ``session.permanent`` (Flask's ``_permanent`` key); ``migrate_from="flask"``
    carries them over with the rest of the session (the cart, the profile). The first
    request that finds them logs that user in as the login page does: a new session
    id, a device on the devices page, "remember me" kept. The old CSRF token goes:
    wsgisession's replaces it.
    """
    if flask.request.endpoint in (None, "static", "demo.favicon"):
        return
    session = flask.session
    if USER_ID_KEY not in session and OWN_CSRF_KEY not in session:
        return
    session.pop(OWN_CSRF_KEY, None)
    name = session.pop(USER_ID_KEY, None)
    roles = roles_of(name)
    if not isinstance(name, str) or roles is None:  # nobody, or an account now gone
        return
    log_in(name, roles, remember=bool(session.pop("_permanent", False)))


# -- The app ----------------------------------------------------------------------


def create_app() -> flask.Flask:
    """The Flask app: the site, then the logins and the session of the switch's stage.

    On wsgisession (the default, or while migrating): the CSRF check, then the session
    (``init_app``). Before the switch (``WSGISESSION_DEMO_SESSIONS=flask``): Flask's
    own session.
    """
    stage = switch_stage("flask")
    app = flask.Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.secret_key = secret_key()
    # Flask sends no SameSite by default; the other variants' cookies are Lax.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # "Remember me" in Flask's own session, and the age limit of one carried over.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=SESSION_MAX_AGE)
    app.register_blueprint(bp)
    if stage == "own":
        return _on_flask_sessions(app)
    migration: dict[str, Any] = {}
    if stage == "migrating":
        # Before the accounts' hooks, which look for a login: by then it is ours.
        app.before_request(adopt_flask_login)
        # Fixed, not "now + lifetime" at each start: after that day no cookie Flask
        # signed before the switch is valid anyway.
        until = switch_day("flask") + app.permanent_session_lifetime
        migration = {"migrate_from": "flask", "migrate_until": until}
        log.info(
            "%s=flask: carrying Flask's sessions over until %s",
            MIGRATE_VARIABLE,
            until.isoformat(),
        )
    app.register_blueprint(accounts)
    app.extensions[USER_NAME_KEY] = wsgisession_user
    flask_wsgi = app.wsgi_app

    def back_into_flask(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
        environ[REFUSAL_KEY] = refusal
        return flask_wsgi

    # /api/login logs in a token only and refuses any other request itself (a 400
    # saying to send the header), rather than with a CSRF refusal.
    app.wsgi_app = CsrfMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, exempt_paths=["/api/login"], error_page=back_into_flask
    )
    sessions = init_app(
        app,
        store=session_store(),
        # Flask's own default is a cookie that ends with the browser, and "remember
        # me" for 30 days; the site's sessions last 14 days in every variant.
        max_age=SESSION_MAX_AGE,
        error_page=outage_page(FRAMEWORK, "/admin"),
        header=TOKEN_HEADER,  # API clients' tokens; browsers keep the cookie
        **migration,
    )
    middleware = sessions.session_middleware()
    if middleware is not None and isinstance(middleware.store, ServerSessionStore):
        track_devices(middleware)
    else:
        log.info("device tracking is off: the cookie store keeps no record to list or end")
    return app


def _on_flask_sessions(app: flask.Flask) -> flask.Flask:
    """Before the switch: Flask's own session and the logins kept in it.

    ``RequestScope`` binds each request for ``validate_body()`` and ``body()``, the
    forms' checks; it has no session.
    """
    app.register_blueprint(own_accounts)
    app.extensions[USER_NAME_KEY] = flask_session_user
    app.wsgi_app = RequestScope(app.wsgi_app)  # type: ignore[method-assign]
    forget_switch("flask")
    log.info("%s=flask: Flask's own sessions, as before the switch", SESSIONS_VARIABLE)
    return app


app = create_app()
