"""The demo site: a plain WSGI app built on wsgisession.

One code base, three entry points: this module (plain WSGI, ``make demo``),
:mod:`demo.flask_app` (``make demo-flask``) and :mod:`demo.django_app`
(``make demo-django``) serve the same views below, which take a werkzeug
``Request`` and return a werkzeug ``Response``.

It counts your visits, remembers a name you type (a typed ``SessionVar``), keeps a
cart, logs you in and out (passwords hashed with scrypt), says what happened with
flash messages, passes page data to JavaScript with ``at_json``, and has an admin
page only the ``admin`` role may see, and a "Your devices" page listing your
sessions (revoke one, log out everywhere). Every form carries a CSRF token. Run it
with ``make demo`` (gunicorn, http://127.0.0.1:8000); the users are
``alice``/``wonderland`` (admin) and ``bob``/``builder``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from wsgisession import (
    Auth,
    AuthRedirect,
    CsrfMiddleware,
    FlashLevel,
    SessionMiddleware,
    SessionVar,
    SQLiteStore,
    at,
    at_json,
    body,
    csrf_token,
    current_user,
    flash,
    get_flashed_messages,
    login,
    logout,
    logout_everywhere,
    revoke,
    rules,
    session,
    sessions_of,
    store_from_url,
    track_devices,
    validate_body,
)
from wsgisession.access.guards import safe_next
from wsgisession.errors import ConfigurationError
from wsgisession.stores import ClientSessionStore, ServerSessionStore

from ._keyfile import read_or_create_key

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def _user(password: str, roles: tuple[str, ...]) -> tuple[bytes, bytes, tuple[str, ...]]:
    salt = secrets.token_bytes(16)
    return salt, _hash(password, salt), roles


#: The demo's users: name -> (salt, scrypt hash, roles). A real site uses a database.
USERS = {
    "alice": _user("wonderland", ("admin",)),
    "bob": _user("builder", ()),
}


class Visitor:
    """What the demo remembers about a visitor, typed."""

    name = SessionVar(str, default="")


def check_password(name: str, password: str) -> tuple[str, ...] | None:
    """The user's roles if the password is right, else ``None``."""
    salt, expected, roles = USERS.get(name, (b"0" * 16, b"", ()))
    ok = hmac.compare_digest(_hash(password, salt), expected)
    return roles if ok and name in USERS else None


def e(text: object) -> str:
    """HTML-escape anything shown on a page: every user-supplied string goes through it."""
    return html.escape(str(text), quote=True)


def page(title: str, body: str) -> Response:
    """A whole HTML page around *body*, with the flash messages and the page data."""
    at["page"] = {"title": title, "user": Visitor.name.get() or None}
    messages = "".join(
        f'<p class="flash {e(m.category)}">{e(m)}</p>' for m in get_flashed_messages()
    )
    user = current_user()
    who = (
        f"Logged in as <b>{e(user.extra.get('name', user.user_id))}</b>."
        f" {form('/logout', '<button>Log out</button>')}"
        if user
        else '<a href="/login">Log in</a>'
    )
    html_page = f"""<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="csrf-token" content="{e(csrf_token())}">
<title>{e(title)} · wsgisession demo</title>
<nav><a href="/">Home</a> · <a href="/cart">Cart</a> · <a href="/admin">Admin</a>
 · <a href="/devices">Your devices</a> · {who}</nav>
<h1>{e(title)}</h1>
{messages}
{body}
<script>const page = {at_json("page")}; console.log("wsgisession demo", page);</script>
"""
    return Response(html_page, content_type="text/html; charset=utf-8")


def form(action: str, fields: str) -> str:
    """A POST form carrying the CSRF token."""
    token = f'<input type="hidden" name="csrf_token" value="{e(csrf_token())}">'
    return f'<form method="post" action="{e(action)}">{token}{fields}</form>'


def redirect(location: str) -> Response:
    """A 303 See Other: the answer to a successful POST."""
    return Response(status=303, headers={"Location": location})


def home(request: Request) -> Response:
    """The visit counter and the name form."""
    session["visits"] = visits = session.get("visits", 0) + 1
    name = Visitor.name.get()
    return page(
        f"Hello, {name or 'stranger'}!",
        f"<p>You have visited this page {visits} time{'' if visits == 1 else 's'}"
        " in this session.</p>"
        + form(
            "/name",
            f'<label>Your name <input name="name" value="{e(name)}" maxlength="100"></label>'
            "<button>Remember me</button>",
        )
        + form("/forget", "<button>Forget me</button>"),
    )


@dataclass
class Profile:
    """The name form: one name, 1 to 100 characters once the spaces are stripped."""

    name: str = field(metadata=rules(min_length=1, max_length=100, strip=True))


def set_name(request: Request) -> Response:
    """POST /name: remember the name typed in the form (validated by ``validate_body``)."""
    result = validate_body(Profile)
    if result.value is None:
        flash(f"A name {result.error('name')}.", FlashLevel.WARNING)
    else:
        Visitor.name.set(result.value.name)
        flash(f"Nice to meet you, {result.value.name}.", FlashLevel.SUCCESS)
    return redirect("/")


def forget(request: Request) -> Response:
    """POST /forget: clear the whole session (and get a new session id)."""
    session.clear()
    flash("Forgotten. This is a new session.")
    return redirect("/")


def cart(request: Request) -> Response:
    """GET shows the cart; POST adds an item (a change in place, saved by content)."""
    if request.method == "POST":
        item = request.form.get("item", "").strip()[:50]
        if item:
            session.setdefault("cart", []).append(item)
            flash(f"Added {item} to your cart.", FlashLevel.SUCCESS)
        return redirect("/cart")
    items = "".join(f"<li>{e(item)}</li>" for item in session.get("cart", []))
    return page(
        "Your cart",
        f"<ul>{items or '<li>(empty)</li>'}</ul>"
        + form("/cart", '<input name="item" maxlength="50"><button>Add</button>')
        + JSON_BUTTON,
    )


#: A button that adds to the cart with fetch() and JSON: the CSRF token travels in the
#: X-CSRF-Token header, read from the page's <meta name="csrf-token">.
JSON_BUTTON = """<button id="surprise">Add a surprise (JSON)</button>
<script>
document.getElementById("surprise").addEventListener("click", async () => {
  const response = await fetch("/api/cart", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
    },
    body: JSON.stringify({item: "surprise"}),
  });
  if (response.ok) location.reload();
});
</script>"""


@dataclass
class CartItem:
    """The JSON body of POST /api/cart."""

    item: str = field(metadata=rules(min_length=1, max_length=50, strip=True))


def api_cart(request: Request) -> Response:
    """POST /api/cart with ``{"item": ...}``: add to the cart, answer the cart as JSON."""
    added = body(CartItem)  # a 400 listing the bad fields, as JSON, if invalid
    cart_items = session.setdefault("cart", [])
    cart_items.append(added.item)
    return Response(json.dumps({"cart": cart_items}), content_type="application/json")


def login_page(request: Request) -> Response:
    """GET shows the form; POST checks the password and logs in (new session id)."""
    error = ""
    if request.method == "POST":
        name = request.form.get("username", "")
        roles = check_password(name, request.form.get("password", ""))
        if roles is not None:
            login(name, roles=roles, name=name.title(), remember="remember" in request.form)
            flash(f"Welcome back, {name.title()}.", FlashLevel.SUCCESS)
            return redirect(safe_next(request.args.get("next")))
        error = '<p role="alert">Wrong user name or password.</p>'
    next_query = f"?next={e(request.args['next'])}" if "next" in request.args else ""
    return page(
        "Log in",
        error
        + form(
            f"/login{next_query}",
            '<label>User <input name="username" autocomplete="username"></label> '
            '<label>Password <input name="password" type="password"'
            ' autocomplete="current-password"></label>'
            ' <label><input type="checkbox" name="remember" value="1"> Remember me</label>'
            " <button>Log in</button>",
        )
        + "<p>Try alice / wonderland (admin) or bob / builder.</p>",
    )


def logout_view(request: Request) -> Response:
    """POST /logout: end the session everywhere."""
    logout()
    flash("You are logged out.")
    return redirect("/")


def admin(request: Request) -> Response:
    """Only the admin role gets here (the Auth middleware refuses everyone else)."""
    user = current_user()
    return page("Admin", f"<p>Welcome, {e(user.user_id if user else '?')}. All is well.</p>")


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
    except ConfigurationError as exc:
        return page("Your devices", f"<p>Not available here: {e(exc)}</p>")
    rows = "".join(
        f"<tr><td>{e(d.user_agent or '?')}{' <b>(this browser)</b>' if d.current else ''}</td>"
        f"<td>{e(d.ip or '')}</td><td>{d.logged_in:%Y-%m-%d %H:%M} UTC</td>"
        f"<td>{d.last_seen:%Y-%m-%d %H:%M} UTC</td><td>"
        + (
            ""
            if d.current
            else form(
                "/devices",
                f'<input type="hidden" name="handle" value="{e(d.handle)}">'
                '<button class="revoke">Log out</button>',
            )
        )
        + "</td></tr>"
        for d in listed
    )
    return page(
        "Your devices",
        "<table><tr><th>Browser</th><th>Address</th><th>Logged in</th><th>Last seen</th>"
        f"<th></th></tr>{rows}</table>"
        + form(
            "/devices",
            '<input type="hidden" name="everywhere" value="1">'
            '<button id="everywhere">Log out everywhere else</button>',
        ),
    )


ROUTES: dict[tuple[str, str], Callable[[Request], Response]] = {
    ("GET", "/"): home,
    ("POST", "/name"): set_name,
    ("POST", "/forget"): forget,
    ("GET", "/cart"): cart,
    ("POST", "/cart"): cart,
    ("POST", "/api/cart"): api_cart,
    ("GET", "/login"): login_page,
    ("POST", "/login"): login_page,
    ("POST", "/logout"): logout_view,
    ("GET", "/admin"): admin,
    ("GET", "/devices"): devices,
    ("POST", "/devices"): devices,
}


@Request.application  # type: ignore[arg-type]
def site(request: Request) -> Response:
    """Dispatch to the view for the method and path, or 404 / 405."""
    view = ROUTES.get((request.method, request.path))
    if view is not None:
        return view(request)
    if any(path == request.path for _, path in ROUTES):
        return Response("Method not allowed\n", status=405, content_type="text/plain")
    return Response("Not found\n", status=404, content_type="text/plain")


#: The generated key, when WSGISESSION_SECRET_KEY is not set (git-ignored).
KEY_FILE = Path(__file__).with_name(".secret_key")


def secret_key() -> str:
    """The key from WSGISESSION_SECRET_KEY, else the one gunicorn.conf.py generated."""
    key = os.environ.get("WSGISESSION_SECRET_KEY")
    if key:
        return key
    # Without gunicorn.conf.py (werkzeug's server, a test), the file is made here.
    return read_or_create_key(KEY_FILE)


def session_store() -> ClientSessionStore | ServerSessionStore:
    """``WSGISESSION_STORE`` (a store URL) if set, else SQLite next to this file.

    SQLite is right for the demo's several gunicorn workers on one machine; try
    ``WSGISESSION_STORE=redis://127.0.0.1:6379/0 make demo`` or ``cookie://``.
    """
    url = os.environ.get("WSGISESSION_STORE")
    if url:
        return store_from_url(url)
    return SQLiteStore(Path(__file__).with_name("sessions.sqlite3"))


def protect(app: WSGIApplication) -> WSGIApplication:
    """The admin guard and CSRF protection around *app* (any WSGI app, any framework)."""
    app = Auth(app, roles=["admin"], paths=["/admin"])
    app = AuthRedirect(app, location="/login", paths=["/admin", "/devices"])
    return CsrfMiddleware(app)


def session_options() -> dict[str, Any]:
    """The SessionMiddleware settings every variant of the demo uses."""
    return {"secret_key": secret_key(), "store": session_store()}


def create_app() -> SessionMiddleware:
    """The site with its middlewares, outermost last; devices tracked on server stores."""
    middleware = SessionMiddleware(protect(site), **session_options())
    if isinstance(middleware.store, ServerSessionStore):
        track_devices(middleware)
    return middleware


app = create_app()
