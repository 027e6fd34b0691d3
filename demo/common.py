"""What the three variants of the demo share: users, forms, pages' words, settings.

The three variants are one site: the same pages, the same words (field errors,
error pages, CSRF refusals, notices), the same JSON, the same cookie lifetimes.
``tests/demo_contract.py`` sends the same requests to all three and checks that
they answer alike. What they must agree on lives here, so that each variant only
says it in its framework's idiom.

The pages themselves are the Jinja templates in ``demo/templates`` (one layout for
all three variants) and the stylesheet ``demo/static/demo.css``. Each variant gives
the templates the same names: ``title``, ``user`` (the name shown, or ``None``),
``messages`` (``(level, text)`` pairs, level one of ``success``, ``info``,
``warning``, ``error``), ``csrf_token()``, ``csrf_name``, ``csrf_header``,
``admin_url`` and ``framework``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shlex
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jinja2 import Environment, FileSystemLoader
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Response

from wsgisession import SessionInfo, SQLiteStore, rules, store_from_url
from wsgisession.errors import HTTPError, NotLoggedIn
from wsgisession.stores import ClientSessionStore, ServerSessionStore

from ._keyfile import read_or_create_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: The demo's own logger (wsgisession logs to ``wsgisession``); gunicorn.conf.py
#: gives both a time and a level.
log = logging.getLogger("demo")

#: The users of every variant: name -> (password, is admin). Django keeps them in its
#: database (``migrate`` creates it); the others hash them at start-up.
ACCOUNTS = {"alice": ("wonderland", True), "bob": ("builder", False)}


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def _user(password: str, roles: tuple[str, ...]) -> tuple[bytes, bytes, tuple[str, ...]]:
    salt = secrets.token_bytes(16)
    return salt, _hash(password, salt), roles


#: name -> (salt, scrypt hash, roles), for the plain and Flask variants.
USERS = {
    name: _user(password, ("admin",) if admin else ())
    for name, (password, admin) in ACCOUNTS.items()
}


def check_password(name: str, password: str) -> tuple[str, ...] | None:
    """The user's roles if the password is right, else ``None`` (constant time)."""
    salt, expected, roles = USERS.get(name, (b"0" * 16, b"", ()))
    ok = hmac.compare_digest(_hash(password, salt), expected)
    return roles if ok and name in USERS else None


def roles_of(name: object) -> tuple[str, ...] | None:
    """The roles of the user called *name*; ``None`` if there is no such user."""
    user = USERS.get(name) if isinstance(name, str) else None
    return None if user is None else user[2]


@dataclass
class Profile:
    """The profile form: a name and an e-mail address."""

    name: str = field(metadata=rules(min_length=1, max_length=100, strip=True))
    email: str = field(metadata=rules(email=True, max_length=254, strip=True))


@dataclass
class CartItem:
    """An item for the cart, from the form or from JSON."""

    item: str = field(metadata=rules(min_length=1, max_length=50, strip=True))


# -- The API: a session carried in a header (docs/api-clients.md) --------------------

#: The header an API client's session travels in (``header=`` of the middleware):
#: a client sending it, empty until it has a value, gets its session there (the token)
#: instead of in the cookie, which browsers keep.
TOKEN_HEADER = "X-Auth-Token"


@dataclass
class Credentials:
    """``POST /api/login``: a user name and a password, as a form or as JSON."""

    username: str = field(metadata=rules(min_length=1, max_length=100))
    password: str = field(metadata=rules(min_length=1, max_length=1000))


def api_logged_in(username: str) -> dict[str, str]:
    """The JSON of a login from the API: the token itself is in the header."""
    return {
        "user": username,
        "message": f"Logged in: send the {TOKEN_HEADER} header of this answer with each request.",
    }


#: The JSON of a logout from the API (the response's header is empty: forget the token).
API_LOGGED_OUT = {"user": None, "message": "Logged out: forget the token."}

#: Why the API refuses a request whose token is not logged in: logged out, revoked
#: from the devices page, expired, or never logged in. A token is a login.
API_LOGIN_FIRST = (
    f"Log in first: POST your user name and password to /api/login with an empty"
    f" {TOKEN_HEADER} header, and send the token it answers in that header."
)


@dataclass(frozen=True)
class TokenPanel:
    """The "API token" panel of the devices page: the shell commands, for this site and
    this user, that log in from curl, use the token and log it out."""

    header: str
    log_in: str
    use: str
    log_out: str


def _command(*parts: str) -> str:
    # One part a line, continued with "\": short enough for a phone's width, and
    # still one command when copied.
    return " \\\n  ".join(parts)


def token_panel(site_url: str, username: str) -> TokenPanel:
    """The panel's commands for the site at *site_url* (``http://127.0.0.1:8000``) and
    the user *username* (quoted for the shell). The shell reads the password into a
    variable: the page never shows it."""
    site = site_url.rstrip("/")
    sent = f'-H "{TOKEN_HEADER}: $TOKEN"'
    cart = shlex.quote(f"{site}/api/cart")
    return TokenPanel(
        header=TOKEN_HEADER,
        log_in="\n".join(
            [
                "read -rs PASSWORD",
                _command(
                    f"curl -si -H '{TOKEN_HEADER};'",
                    f"-d {shlex.quote('username=' + username)}",
                    '--data-urlencode "password=$PASSWORD"',
                    shlex.quote(f"{site}/api/login"),
                ),
            ]
        ),
        use="\n".join(
            [
                "TOKEN='paste the value here'",
                _command("curl -s", sent, cart),
                _command("curl -s -d item=teapot", sent, cart),
            ]
        ),
        log_out=_command("curl -s -X POST", sent, shlex.quote(f"{site}/api/logout")),
    )


class TokenHeaderMissing(HTTPError, BadRequest):
    """``400``: ``POST /api/login`` without the token header, which would log in a
    cookie session (a browser's, or none) rather than give a token."""

    error_code = "token_header_missing"

    def __init__(self) -> None:
        super().__init__(
            f"Send the {TOKEN_HEADER} header, empty (curl -H '{TOKEN_HEADER};'),"
            " to log in and get a token in it."
        )


class WrongCredentials(NotLoggedIn):
    """``401``: the API login's user name or password is wrong."""

    error_code = "wrong_credentials"

    def __init__(self) -> None:
        super().__init__("Wrong user name or password.")


#: How long a session lasts unused, in every variant: the anonymous visitor's cookie
#: and a "remember me" login (14 days, Django's default); a login without "remember
#: me" ends with the browser.
SESSION_MAX_AGE = 14 * 86400

#: What a form says next to a field it refused: one sentence per field, whatever the
#: rule broken (missing, blank, too long, not an address), in every variant.
FIELD_ERRORS = {
    "name": "Enter your name, up to 100 characters.",
    "email": "Enter an e-mail address, such as alice@example.com.",
    "item": "Enter an item, up to 50 characters.",
}


def field_errors(fields: Iterable[str | None]) -> dict[str, str]:
    """The site's sentence for each of *fields* that has one (the fields with errors)."""
    return {name: FIELD_ERRORS[name] for name in fields if name in FIELD_ERRORS}


#: The heading of an error page, by status.
ERROR_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    413: "Too large",
    500: "Something went wrong",
    503: "Try again shortly",
}

#: What an error page says, by status (405 names the method).
ERROR_MESSAGES = {
    400: "The site could not understand that request. Go back and try again.",
    403: "This page needs the admin role.",
    404: "There is no page at this address. Check it for typos, or start from the home page.",
    405: "This page does not take a {method} request.",
    413: "That was more than the site takes in one request.",
    500: "Something went wrong on our side. Please try again.",
    503: "The site is briefly unavailable. Please try again in a few seconds.",
}

#: The ``error`` of a JSON error body, by status (wsgisession's own errors bring theirs).
ERROR_CODES = {
    400: "bad_request",
    401: "not_logged_in",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "server_error",
    503: "store_unavailable",
}


def error_message(code: int, method: str = "GET") -> str:
    """What the error page of status *code* says (for a request of *method*)."""
    return ERROR_MESSAGES.get(code, ERROR_MESSAGES[500]).format(method=method)


def error_json(code: int, method: str = "GET") -> dict[str, str]:
    """The JSON body of an error: ``{"error": ..., "message": ...}``, as wsgisession's."""
    return {"error": ERROR_CODES.get(code, "error"), "message": error_message(code, method)}


def wants_json(path: str, accept: str | None) -> bool:
    """Whether an error is answered in JSON: an ``/api/`` path, or a client that
    ranks JSON above HTML. Everyone else gets a page of the site."""
    if path.startswith("/api/"):
        return True
    accepted = parse_accept_header(accept, MIMEAccept)
    return accepted.best_match(["text/html", "application/json"]) == "application/json"


#: What the page of a refused form (CSRF) says, by the refusal's reason: the
#: ``reason`` of wsgisession's ``CsrfError`` (Django's reasons are mapped to these).
#: A token that does not match may be stale or altered: nothing tells them apart,
#: so that sentence names both; a session with no token at all has ended.
CSRF_REFUSALS = {
    "no_secret": (
        "This form was out of date: your session ended (you logged out, or it expired)"
        " after the page was shown. Nothing was changed. Go back, reload the page and"
        " try again."
    ),
    "invalid": (
        "This form's security token did not match your session, so nothing was changed:"
        " the page is from before you last logged in or out, or the form was altered."
        " Go back, reload the page and try again."
    ),
    "missing": (
        "This form came without its security token, so nothing was changed."
        " Go back, reload the page and try again."
    ),
    "origin": (
        "This form was sent from another site, so nothing was changed."
        " To do this, use the form on this site."
    ),
}


def csrf_message(reason: str) -> str:
    """What the page of a CSRF refusal with *reason* says."""
    return CSRF_REFUSALS.get(reason, CSRF_REFUSALS["invalid"])


#: On the login page when a guard sent the visitor there (``?next=``).
LOGIN_NEEDED = "Please log in to see that page."

#: To a browser whose login ended without its own logout: another device ended it.
SIGNED_OUT_ELSEWHERE = "You were logged out from another device. Log in again to continue."

#: A signed cookie saying "this browser logged in" (set at login, deleted at logout),
#: which outlives the session: a request that has it and no login was logged out
#: elsewhere (revoked from the devices page, "log out everywhere else").
SIGNED_IN_COOKIE = "signed_in"

#: The devices page on a store that keeps no server record (``cookie://``).
DEVICES_UNAVAILABLE = (
    "This site keeps your session in your browser's cookie only, so it has no list of"
    " the other places where you are logged in and cannot log them out from here."
)

#: The devices page before the switch to wsgisession: the framework's own sessions
#: keep no list of a user's sessions.
DEVICES_NOT_LISTED = (
    "This site's sessions keep no list of the places where you are logged in, so it"
    " cannot show them or log them out from here."
)

#: Browsers, then systems, as a User-Agent names them: the first match wins, so a
#: name that others copy (Chrome's "Safari", Android's "Linux") comes after them.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("HeadlessChrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def browser_name(user_agent: str) -> str:
    """``"Firefox on Linux"``: a User-Agent, simply read; ``"Unknown browser"`` if unread."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser is None:
        return f"Unknown browser on {system}" if system else "Unknown browser"
    return f"{browser} on {system}" if system else browser


def when(moment: datetime) -> str:
    """``"7 Dec 2026, 14:05 UTC"``: a time the devices page shows."""
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


@dataclass(frozen=True)
class Device:
    """A row of the devices page, from wsgisession's ``SessionInfo``."""

    handle: str
    browser: str
    user_agent: str
    ip: str
    logged_in: str
    logged_in_iso: str
    last_seen: str
    last_seen_iso: str
    current: bool


def device_rows(sessions: Iterable[SessionInfo]) -> list[Device]:
    """The rows of the devices page: browsers named, times readable."""
    return [
        Device(
            handle=s.handle,
            browser=browser_name(s.user_agent),
            user_agent=s.user_agent,
            ip=s.ip or "",
            logged_in=when(s.logged_in),
            logged_in_iso=s.logged_in.isoformat(),
            last_seen=when(s.last_seen),
            last_seen_iso=s.last_seen.isoformat(),
            current=s.current,
        )
        for s in sessions
    ]


_pages = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)


def outage_page(
    framework: str, admin_url: str
) -> Callable[[HTTPException, WSGIEnvironment], WSGIApplication]:
    """The ``error_page`` of a store outage: the site's 503 page, made without a session.

    The store is down, so this page cannot use the session (no user, no flash, no
    CSRF token) nor a framework's templates that would; it renders the shared
    templates itself, the same in every variant. An ``/api/`` request gets JSON.
    """

    def page(refusal: HTTPException, environ: WSGIEnvironment) -> WSGIApplication:
        code = refusal.code or 503
        if wants_json(environ.get("PATH_INFO", "/"), environ.get("HTTP_ACCEPT")):
            body = refusal.json() if isinstance(refusal, HTTPError) else error_json(code)
            answer = Response(json.dumps(body), status=code, mimetype="application/json")
            return _when_to_retry(answer, refusal)
        html = _pages.get_template("error.html").render(
            title=ERROR_TITLES.get(code, "Error"),
            user=None,
            messages=[],
            code=code,
            message=error_message(code),
            csrf_token=lambda: "",
            csrf_name="",
            csrf_header="",
            admin_url=admin_url,
            framework=framework,
        )
        response = Response(html, status=code, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return _when_to_retry(response, refusal)

    return page


def _when_to_retry(response: Response, refusal: HTTPException) -> Response:
    # A view that met the outage returns this page itself, without the middleware
    # that would add the refusal's Retry-After: the client must still learn it.
    for name, value in refusal.get_headers():
        if name == "Retry-After":
            response.headers[name] = value
    return response


#: The session cookie's name in every variant.
COOKIE_NAME = "session"

#: The generated key, when WSGISESSION_SECRET_KEY is not set (git-ignored).
KEY_FILE = HERE / ".secret_key"


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
    return SQLiteStore(HERE / "sessions.sqlite3")


def var_dir() -> Path:
    """Where the demo keeps its files: ``WSGISESSION_DEMO_VAR``, else the temporary
    directory (Django's database, the day of the switch)."""
    return Path(os.environ.get("WSGISESSION_DEMO_VAR") or tempfile.gettempdir())


# -- The switch to wsgisession, with everyone still logged in (docs/demo.md) ----------

#: ``flask`` (``django``): the Flask (Django) variant runs on its framework's own
#: sessions, as the site did before the switch to wsgisession.
SESSIONS_VARIABLE = "WSGISESSION_DEMO_SESSIONS"
#: ``flask`` (``django``): the variant runs on wsgisession and carries each browser's
#: session of its framework over (``migrate_from``), so the switch logs nobody out.
MIGRATE_VARIABLE = "WSGISESSION_DEMO_MIGRATE_FROM"

#: Which sessions a Flask or Django variant runs on: ``"own"``, its framework's
#: (before the switch); ``"migrating"``, wsgisession's, carrying the framework's over;
#: ``"wsgisession"``, ours alone.
Stage = Literal["own", "migrating", "wsgisession"]


def switch_stage(framework: Literal["flask", "django"]) -> Stage:
    """Where the *framework* variant stands in the switch, from the two variables.

    :param framework: The value the variables take for this variant.
    :raises ValueError: a variable naming another framework, or both variables set.
    """
    own = os.environ.get(SESSIONS_VARIABLE, "").strip().lower()
    migrate = os.environ.get(MIGRATE_VARIABLE, "").strip().lower()
    if own not in ("", "wsgisession", framework):
        raise ValueError(
            f"{SESSIONS_VARIABLE}={own!r}: the {framework.title()} demo runs on"
            f" {framework!r} (its framework's own sessions) or 'wsgisession' (the default)"
        )
    if migrate not in ("", framework):
        raise ValueError(
            f"{MIGRATE_VARIABLE}={migrate!r}: the {framework.title()} demo carries over"
            f" {framework!r} sessions only"
        )
    if own == framework and migrate:
        raise ValueError(
            f"{SESSIONS_VARIABLE}={framework} runs the site before the switch and"
            f" {MIGRATE_VARIABLE}={framework} after it: set one of them"
        )
    if own == framework:
        return "own"
    return "migrating" if migrate else "wsgisession"


def _switch_file(framework: str) -> Path:
    return var_dir() / f"wsgisession-demo-{framework}-switched-at"


def switch_day(framework: str) -> datetime:
    """When the *framework* variant first ran with the migration on (UTC).

    Kept in a file in :func:`var_dir`, written at that first start, so that every
    worker and every restart gets the same date: the migration's end date is fixed
    from it, as the migration guide asks, not moved at each restart. Running the
    variant on its own sessions again deletes the file (:func:`forget_switch`).

    :raises ValueError: a file that does not hold a date with a time zone.
    """
    path = _switch_file(framework)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(datetime.now(UTC).isoformat(timespec="seconds"))
            with suppress(FileExistsError):  # another worker was first: its date wins
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    text = path.read_text().strip()
    try:
        day = datetime.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or day.tzinfo is None:
        raise ValueError(f"{path} should hold the date of the switch, not {text!r}: delete it")
    return day


def forget_switch(framework: str) -> None:
    """Back to the framework's own sessions: the next switch has a day of its own."""
    _switch_file(framework).unlink(missing_ok=True)
