"""The demo's three variants are one site: the same requests get the same answers.

Every test here runs against the plain WSGI, Flask and Django variants (as
``make demo``, ``make demo-flask`` and ``make demo-django`` load them, driven by
werkzeug's test ``Client``) and asserts one expected answer for all three: status
codes, the JSON of ``/api/cart``, field errors, error pages, CSRF refusals (a page
for a form, JSON for the API), the notices, the cookies' lifetimes and whose name
the profile shows.

The Django project configures Django for itself, which a process can do only once,
and the rest of the suite configures it its own way: ``tests/test_demo.py`` runs
this module in a process of its own. Run it alone with
``python -m pytest tests/demo_contract.py``.
"""

from __future__ import annotations

import html
import importlib
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client, TestResponse

from tests.servers import free_port
from wsgisession.testing import HeaderClient

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

VARIANTS = ["wsgi", "flask", "django"]
ENTRY_POINTS = {"wsgi": "demo.wsgi", "flask": "demo.flask_app", "django": "demo.django_app"}

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FOURTEEN_DAYS = 14 * 86400


def build(variant: str, store: str, var: Path) -> WSGIApplication:
    """The variant's WSGI app, as gunicorn loads it, on the store URL *store*."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WSGISESSION_SECRET_KEY", "demo-contract-key-" + "k" * 32)
        patch.setenv("WSGISESSION_STORE", store)
        patch.setenv("WSGISESSION_DEMO_VAR", str(var))
        module: Any = importlib.import_module(ENTRY_POINTS[variant])
        app: WSGIApplication = module.create_app()
        return app


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the sessions (SQLite) and Django's database live."""
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def apps(var: Path) -> dict[str, WSGIApplication]:
    """Each variant, once, with its default kind of store: SQLite."""
    return {v: build(v, f"sqlite:///{var}/sessions-{v}.sqlite3", var) for v in VARIANTS}


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Site:
    """A browser on one variant: its cookies, and what its pages say.

    Whatever differs between the variants by design (the name of the CSRF form
    field, the admin's address) is read from the pages, as a browser would.
    """

    def __init__(self, app: WSGIApplication, user_agent: str = FIREFOX) -> None:
        self.client = Client(app)
        self.user_agent = user_agent

    def get(self, path: str, **headers: str) -> TestResponse:
        return self.client.get(path, headers={"User-Agent": self.user_agent, **headers})

    def post(self, path: str, data: dict[str, str] | None = None, **headers: str) -> TestResponse:
        return self.client.post(path, data=data, headers={"User-Agent": self.user_agent, **headers})

    def form_token(self, path: str = "/") -> dict[str, str]:
        """The hidden CSRF field of a form on *path*, as ``{name: token}``."""
        match = re.search(
            r'<input type="hidden" name="(\w+)" value="([^"]+)">', self.get(path).text
        )
        assert match, f"{path} has a form with a CSRF token"
        return {match.group(1): match.group(2)}

    def submit(self, path: str, page: str = "/", **fields: str) -> TestResponse:
        """Post a form of *page* to *path*, as the browser does, with the page's token."""
        return self.post(path, {**self.form_token(page), **fields})

    def api(self, body: str, *, token: bool = True, **headers: str) -> TestResponse:
        """POST /api/cart as the cart page's fetch() does: JSON, the token in a header."""
        if token:
            page = self.get("/cart").text
            name = re.search(r'<meta name="csrf-header" content="([^"]+)">', page)
            value = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
            assert name
            assert value
            headers = {name.group(1): value.group(1), **headers}
        return self.client.post(
            "/api/cart",
            data=body,
            content_type="application/json",
            headers={"User-Agent": self.user_agent, **headers},
        )

    def log_in(self, user: str, password: str, *, remember: bool = False) -> TestResponse:
        fields = {"username": user, "password": password}
        if remember:
            fields["remember"] = "1"
        return self.submit("/login", "/login", **fields)

    def admin_url(self) -> str:
        match = re.search(r'<a href="([^"]+)">Admin</a>', self.get("/").text)
        assert match
        return match.group(1)


@pytest.fixture
def site(apps: dict[str, WSGIApplication], variant: str) -> Site:
    return Site(apps[variant])


def field_errors(page: str) -> dict[str, str]:
    found = re.findall(r'class="field-error" id="(\w+)-error">([^<]*)<', page)
    return {name: html.unescape(text) for name, text in found}


def flashes(page: str) -> list[tuple[str, str]]:
    found = re.findall(r'<p class="flash flash-(\w+)" role="(?:status|alert)">([^<]*)</p>', page)
    return [(level, html.unescape(text)) for level, text in found]


def error_page(response: TestResponse) -> tuple[int, str, str]:
    """Status, error code shown and message of a page of the site's error template."""
    assert response.mimetype == "text/html"
    assert '<nav class="main">' in response.text, "an error page of the site, in its layout"
    match = re.search(r'<p class="error-code">(\d+)</p>\s*<p>([^<]*)</p>', response.text)
    assert match, response.text[:500]
    return response.status_code, match.group(1), html.unescape(match.group(2))


def heading(page: str) -> str:
    match = re.search(r"<h1>([^<]*)</h1>", page)
    assert match
    return match.group(1)


# -- pages -------------------------------------------------------------------------


def test_every_page_links_the_icon_and_favicon_ico_is_served(site: Site) -> None:
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in site.get("/").text
    icon = site.get("/static/favicon.svg")
    assert (icon.status_code, icon.mimetype) == (200, "image/svg+xml")
    assert icon.get_data().startswith(b"<svg")
    icon.close()
    ico = site.get("/favicon.ico")
    assert ico.status_code == 200
    assert ico.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert ico.get_data()[:4] == b"\0\0\1\0", "an ICO file"
    ico.close()


# -- the JSON API --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "status", "answer"),
    [
        pytest.param('{"item": "apple"}', 200, {"cart": ["apple"]}, id="good"),
        pytest.param('{"item": "  pear  "}', 200, {"cart": ["pear"]}, id="stripped"),
        pytest.param(
            '{"item":',
            400,
            {
                "errors": [
                    {
                        "field": None,
                        "message": "malformed JSON at line 1, column 9: Expecting value",
                    }
                ]
            },
            id="malformed",
        ),
        pytest.param(
            '{"item": 5}',
            400,
            {"errors": [{"field": "item", "message": "must be a string"}]},
            id="wrong-type",
        ),
        pytest.param(
            '{"item": ""}',
            400,
            {"errors": [{"field": "item", "message": "must not be empty"}]},
            id="blank",
        ),
        pytest.param(
            "{}", 400, {"errors": [{"field": "item", "message": "is required"}]}, id="missing"
        ),
        pytest.param(
            "[]",
            400,
            {"errors": [{"field": None, "message": "expected a JSON object, got an array"}]},
            id="not-an-object",
        ),
    ],
)
def test_the_cart_api_answers_the_same_json(
    site: Site, sent: str, status: int, answer: dict[str, Any]
) -> None:
    response = site.api(sent)
    assert (response.status_code, response.mimetype, response.json) == (
        status,
        "application/json",
        answer,
    )
    if status != 200:
        assert "(empty)" in site.get("/cart").text, "a refused item is not added"


# -- forms ---------------------------------------------------------------------------

NAME_ERROR = "Enter your name, up to 100 characters."
EMAIL_ERROR = "Enter an e-mail address, such as alice@example.com."
ITEM_ERROR = "Enter an item, up to 50 characters."


@pytest.mark.parametrize(
    ("path", "fields", "errors"),
    [
        pytest.param(
            "/profile", {"name": "  ", "email": "ada@example.com"}, {"name": NAME_ERROR}, id="blank"
        ),
        pytest.param(
            "/profile",
            {"name": "x" * 101, "email": "ada@example.com"},
            {"name": NAME_ERROR},
            id="too-long",
        ),
        pytest.param(
            "/profile",
            {"name": "Ada", "email": "not an address"},
            {"email": EMAIL_ERROR},
            id="email",
        ),
        pytest.param(
            "/profile",
            {"name": "", "email": ""},
            {"name": NAME_ERROR, "email": EMAIL_ERROR},
            id="both",
        ),
        pytest.param("/cart", {"item": "   "}, {"item": ITEM_ERROR}, id="item-blank"),
        pytest.param("/cart", {"item": "x" * 51}, {"item": ITEM_ERROR}, id="item-too-long"),
    ],
)
def test_a_refused_form_says_the_same_next_to_the_same_fields(
    site: Site, path: str, fields: dict[str, str], errors: dict[str, str]
) -> None:
    page = "/cart" if path == "/cart" else "/"
    answer = site.submit(path, page, **fields)
    assert answer.status_code == 400
    assert field_errors(answer.text) == errors
    for value in fields.values():
        assert f'value="{value}"' in answer.text, "the input is kept"


def test_a_good_form_is_confirmed_by_the_same_flash_message(site: Site) -> None:
    assert site.submit("/cart", "/cart", item="<apple>").status_code == 303
    page = site.get("/cart").text
    assert flashes(page) == [("success", "Added <apple> to your cart.")]
    assert re.findall(r"<li>([^<]*)</li>", page) == ["&lt;apple&gt;"]


# -- error pages ---------------------------------------------------------------------


def test_an_unknown_page_is_the_same_404_page(site: Site) -> None:
    assert error_page(site.get("/no-such-page")) == (404, "404", NOT_FOUND)


def test_a_wrong_method_is_the_same_405_page_naming_what_is_allowed(site: Site) -> None:
    answer = site.get("/logout")
    assert error_page(answer) == (405, "405", "This page does not take a GET request.")
    assert {m.strip() for m in answer.headers["Allow"].split(",")} - {"OPTIONS"} == {"POST"}


NOT_FOUND = "There is no page at this address. Check it for typos, or start from the home page."


def test_api_errors_are_json_not_pages(site: Site) -> None:
    missing = site.get("/api/nope")
    assert (missing.status_code, missing.json) == (
        404,
        {"error": "not_found", "message": NOT_FOUND},
    )
    wrong = Curl(site.client.application).put("/api/cart")  # an API client: no CSRF check
    assert (wrong.status_code, wrong.json) == (
        405,
        {"error": "method_not_allowed", "message": "This page does not take a PUT request."},
    )
    assert {"GET", "POST"} <= {m.strip() for m in wrong.headers["Allow"].split(",")}


def test_a_user_without_the_role_gets_the_same_403_page(site: Site) -> None:
    site.log_in("bob", "builder")
    answer = site.get(site.admin_url())
    assert error_page(answer) == (403, "403", "This page needs the admin role.")
    assert "Logged in as <b>Bob</b>" in answer.text


def test_with_the_store_down_every_variant_shows_the_same_503_page(variant: str, var: Path) -> None:
    closed = free_port()  # nothing listens there
    site = Site(build(variant, f"redis://127.0.0.1:{closed}/0", var))
    answer = site.get("/")
    assert error_page(answer) == (
        503,
        "503",
        "The site is briefly unavailable. Please try again in a few seconds.",
    )
    assert answer.headers["Retry-After"] == "5"
    assert "Set-Cookie" not in answer.headers


# -- logging in: guards, notices -----------------------------------------------------


def test_a_guard_sends_a_visitor_to_log_in_with_a_notice_and_back(site: Site) -> None:
    answer = site.get("/devices")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/login?next=%2Fdevices")
    page = site.get(answer.headers["Location"]).text
    assert flashes(page) == [("info", "Please log in to see that page.")]
    assert "Please log in" not in site.get("/login").text, "only when a guard sent them"
    back = site.submit("/login?next=%2Fdevices", "/login", username="bob", password="builder")
    assert (back.status_code, back.headers["Location"]) == (303, "/devices")


def test_a_guard_answers_an_api_client_401_json(site: Site) -> None:
    answer = site.get("/devices", Accept="application/json")
    assert (answer.status_code, answer.json) == (
        401,
        {"error": "not_logged_in", "message": "Log in to see this page."},
    )
    assert answer.headers["WWW-Authenticate"] == "Cookie"


def test_wrong_password_keeps_the_user_name_and_says_so(site: Site) -> None:
    answer = site.log_in("alice", "nope")
    assert answer.status_code == 400
    assert flashes(answer.text) == [("error", "Wrong user name or password.")]
    assert 'value="alice"' in answer.text


# -- the profile belongs to the user -------------------------------------------------


def test_a_profile_typed_before_logging_in_is_not_the_users(site: Site) -> None:
    site.submit("/profile", name="Carol", email="carol@example.com")
    site.submit("/cart", "/cart", item="apple")
    assert heading(site.get("/").text) == "Hello, Carol!"
    site.log_in("bob", "builder")
    page = site.get("/").text
    assert heading(page) == "Hello, Bob!", "not Carol's name under Bob's login"
    assert "Logged in as <b>Bob</b>" in page
    assert 'value="carol@example.com"' not in page
    assert re.findall(r"<li>([^<]*)</li>", site.get("/cart").text) == ["apple"], "the cart stays"
    site.submit("/profile", name="Robert", email="bob@example.com")
    assert heading(site.get("/").text) == "Hello, Robert!"
    site.submit("/logout")
    assert heading(site.get("/").text) == "Hello, stranger!"
    site.log_in("alice", "wonderland")
    assert heading(site.get("/").text) == "Hello, Alice!", "not Robert's name either"


# -- CSRF: a page for a form, JSON for the API ----------------------------------------

MISSING = (
    "This form came without its security token, so nothing was changed."
    " Go back, reload the page and try again."
)
INVALID = (
    "This form's security token did not match your session, so nothing was changed:"
    " the page is from before you last logged in or out, or the form was altered."
    " Go back, reload the page and try again."
)
OUT_OF_DATE = (
    "This form was out of date: your session ended (you logged out, or it expired)"
    " after the page was shown. Nothing was changed. Go back, reload the page and"
    " try again."
)
OTHER_SITE = (
    "This form was sent from another site, so nothing was changed."
    " To do this, use the form on this site."
)


def tampered(token: str) -> str:
    """*token* with characters changed: the right shape, the wrong value."""
    # Each of five characters replaced by another of the same alphabet, so the token
    # always changes (a translation table could miss them all, one time in thirty).
    changed = list(token)
    for i in range(10, 15):
        changed[i] = "B" if changed[i] == "A" else "A"
    return "".join(changed)


def test_a_form_without_its_token_gets_the_page_saying_so(site: Site) -> None:
    site.get("/cart")
    answer = site.post("/cart", {"item": "pear"})
    assert error_page(answer) == (403, "403", MISSING)
    assert "(empty)" in site.get("/cart").text


@pytest.mark.parametrize("how", ["changed", "garbage"])
def test_a_tampered_token_is_not_blamed_on_logging_in_or_out_alone(site: Site, how: str) -> None:
    [(field, token)] = site.form_token("/cart").items()
    bad = tampered(token) if how == "changed" else "tampered"
    answer = site.post("/cart", {field: bad, "item": "pear"})
    assert error_page(answer) == (403, "403", INVALID)
    assert "(empty)" in site.get("/cart").text


def test_a_form_from_before_the_logout_is_out_of_date(site: Site) -> None:
    site.log_in("alice", "wonderland")
    stale = site.form_token("/cart")
    site.submit("/logout")
    answer = site.post("/cart", {**stale, "item": "pear"})
    assert error_page(answer) == (403, "403", OUT_OF_DATE)


def test_a_form_from_another_site_is_refused_with_a_page_saying_so(site: Site) -> None:
    token = site.form_token("/cart")
    answer = site.post("/cart", {**token, "item": "pear"}, Origin="https://evil.example")
    assert error_page(answer) == (403, "403", OTHER_SITE)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({}, "csrf_missing", id="no-token"),
        pytest.param({"X-CSRF-Token": "tampered"}, "csrf_invalid", id="bad-token"),
        pytest.param({"Accept": "application/json"}, "csrf_missing", id="accept-json"),
    ],
)
def test_an_api_request_refused_by_the_csrf_check_gets_json(
    site: Site, headers: dict[str, str], error: str
) -> None:
    site.get("/cart")  # the session has a CSRF secret, as after any page
    answer = site.api('{"item": "pear"}', token=False, **headers)
    assert (answer.status_code, answer.mimetype) == (403, "application/json")
    assert answer.json is not None
    assert set(answer.json) == {"error", "message"}
    assert answer.json["error"] == error
    assert answer.json["message"], "a sentence for the developer"


# -- cookies -------------------------------------------------------------------------


def lifetime(site: Site) -> float | None:
    """Seconds until the session cookie expires; ``None``: it ends with the browser."""
    cookie = site.client.get_cookie("session")
    assert cookie is not None
    if cookie.expires is None:
        return None
    return cookie.expires.timestamp() - time.time()


def test_an_anonymous_session_lasts_fourteen_days(site: Site) -> None:
    site.get("/")
    assert lifetime(site) == pytest.approx(FOURTEEN_DAYS, abs=120)


def test_remember_me_lasts_fourteen_days_and_otherwise_the_login_ends_with_the_browser(
    site: Site,
) -> None:
    site.log_in("bob", "builder", remember=True)
    assert lifetime(site) == pytest.approx(FOURTEEN_DAYS, abs=120)
    site.submit("/logout")
    site.log_in("bob", "builder")
    assert lifetime(site) is None


def test_the_session_cookie_is_httponly_and_lax(site: Site) -> None:
    response = site.get("/")
    [header] = [v for k, v in response.headers.items() if k == "Set-Cookie" and "session=" in v]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=lax" in header.lower()
    expires = re.search(r"expires=([^;]+)", header, re.IGNORECASE)
    assert expires
    seconds = parsedate_to_datetime(expires.group(1)).timestamp() - time.time()
    assert seconds == pytest.approx(FOURTEEN_DAYS, abs=120)


# -- devices -------------------------------------------------------------------------


def device_rows(page: str) -> list[dict[str, str]]:
    [body] = re.findall(r"<tbody>(.*?)</tbody>", page, re.S)
    rows = re.findall(r"<tr(?: class=\"current\")?>(.*?)</tr>", body, re.S)
    result = []
    for row in rows:
        browser = re.search(r'<span class="browser" title="([^"]*)">([^<]*)</span>', row)
        times = re.findall(r'<time datetime="[^"]+">([^<]*)</time>', row)
        assert browser, row
        result.append(
            {
                "browser": browser.group(2),
                "title": html.unescape(browser.group(1)),
                "current": str("(this browser)" in row),
                "logged_in": times[0],
                "last_seen": times[1],
            }
        )
    return result


def test_the_devices_page_names_browsers_and_shows_readable_times(apps: Any, variant: str) -> None:
    laptop, phone = Site(apps[variant], FIREFOX), Site(apps[variant], IPHONE)
    phone.log_in("bob", "builder", remember=True)
    laptop.log_in("bob", "builder")
    rows = device_rows(laptop.get("/devices").text)
    assert {(r["browser"], r["title"], r["current"]) for r in rows} >= {
        ("Firefox on Linux", FIREFOX, "True"),
        ("Safari on iPhone", IPHONE, "False"),
    }
    for row in rows:
        for moment in (row["logged_in"], row["last_seen"]):
            assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", moment)


def test_a_browser_logged_out_from_another_device_is_told_so_once(apps: Any, variant: str) -> None:
    laptop, phone = Site(apps[variant], FIREFOX), Site(apps[variant], IPHONE)
    phone.log_in("bob", "builder", remember=True)
    laptop.log_in("bob", "builder")
    page = laptop.get("/devices").text
    handles = re.findall(r'name="handle" value="([^"]+)"', page)
    assert len(handles) >= 1
    for handle in handles:  # every other browser of bob's, the phone among them
        assert laptop.submit("/devices", "/devices", handle=handle).status_code == 303
    answer = phone.get("/devices")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/login?next=%2Fdevices")
    page = phone.get(answer.headers["Location"]).text
    assert (
        "warning",
        "You were logged out from another device. Log in again to continue.",
    ) in flashes(page)
    assert "logged out from another device" not in phone.get("/").text, "said once"
    assert "Logged in as <b>Bob</b>" in laptop.get("/").text, "the laptop stays logged in"


def test_logging_out_yourself_is_not_logging_out_from_another_device(site: Site) -> None:
    site.log_in("bob", "builder", remember=True)
    site.submit("/logout")
    assert flashes(site.get("/").text) == [("info", "You are logged out.")]
    assert "another device" not in site.get("/").text
    site.log_in("bob", "builder")
    site.submit("/forget")
    assert "another device" not in site.get("/").text


@pytest.fixture
def cookie_site(variant: str, var: Path) -> Site:
    return Site(build(variant, "cookie://", var))


def test_the_devices_page_on_the_cookie_store_speaks_to_the_user(cookie_site: Site) -> None:
    cookie_site.log_in("bob", "builder")
    page = cookie_site.get("/devices")
    assert page.status_code == 200
    assert (
        "This site keeps your session in your browser's cookie only, so it has no list of"
        " the other places where you are logged in and cannot log them out from here."
    ) in html.unescape(page.text)
    assert "track_devices" not in page.text, "no developer instruction for end users"


# -- API tokens: a session in the X-Auth-Token header (docs/api-clients.md) ----------

CURL = "curl/8.5.0"
TOKEN = "X-Auth-Token"
LOGIN_FIRST = {
    "error": "not_logged_in",
    "message": (
        "Log in first: POST your user name and password to /api/login with an empty"
        " X-Auth-Token header, and send the token it answers in that header."
    ),
}


class Curl(HeaderClient):
    """curl, as the devices page's panel tells the user to run it: it sends the token
    header (empty until it has a token), keeps the value answers send back
    (``wsgisession.testing.HeaderClient``) and says it is curl (``User-Agent``)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        if not args or isinstance(args[0], str):
            kwargs["headers"] = {"User-Agent": CURL, **kwargs.get("headers", {})}
        return super().open(*args, **kwargs)


def api_log_in(api: Curl, user: str, password: str, *, as_json: bool = False) -> str:
    """Log *api* in as *user* from the API; the token the answer carries."""
    fields = {"username": user, "password": password}
    answer = api.post("/api/login", json=fields) if as_json else api.post("/api/login", data=fields)
    assert (answer.status_code, answer.mimetype) == (200, "application/json"), answer.text
    assert answer.json == {
        "user": user,
        "message": "Logged in: send the X-Auth-Token header of this answer with each request.",
    }
    assert "Set-Cookie" not in answer.headers, "a token, not a cookie"
    assert answer.headers[TOKEN]
    assert api.token == answer.headers[TOKEN]
    return api.token


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_an_api_client_logs_in_with_the_token_header_and_uses_it_without_csrf(
    apps: Any, variant: str, as_json: bool
) -> None:
    api = Curl(apps[variant])
    api_log_in(api, "bob", "builder", as_json=as_json)
    cart = api.get("/api/cart")
    assert (cart.status_code, cart.json) == (200, {"cart": []})
    added = api.post("/api/cart", data={"item": "teapot"})  # a form, as curl -d sends it
    assert (added.status_code, added.json) == (200, {"cart": ["teapot"]}), "no CSRF token asked"
    added = api.post("/api/cart", json={"item": "kettle"})
    assert (added.status_code, added.json) == (200, {"cart": ["teapot", "kettle"]})
    assert api.get("/api/cart").json == {"cart": ["teapot", "kettle"]}
    refused = api.post("/api/cart", json={"item": ""})
    assert (refused.status_code, refused.json) == (
        400,
        {"errors": [{"field": "item", "message": "must not be empty"}]},
    )


def test_a_wrong_password_from_the_api_is_a_401_in_json(apps: Any, variant: str) -> None:
    for user, password in (("alice", "nope"), ("nobody", "wonderland")):
        api = Curl(apps[variant])
        answer = api.post("/api/login", data={"username": user, "password": password})
        assert (answer.status_code, answer.mimetype, answer.json) == (
            401,
            "application/json",
            {"error": "wrong_credentials", "message": "Wrong user name or password."},
        )
        assert answer.headers["WWW-Authenticate"] == "Cookie", "as the site's other 401s"
        assert not answer.headers.get(TOKEN)
        assert api.token is None
        assert api.get("/api/cart").status_code == 401


def test_the_api_login_asks_for_the_token_header(site: Site) -> None:
    """Without the header, POST /api/login would log in a cookie session: it says what
    to send instead (and is no CSRF refusal, which would puzzle a curl user)."""
    answer = site.post("/api/login", {"username": "bob", "password": "builder"})
    assert (answer.status_code, answer.json) == (
        400,
        {
            "error": "token_header_missing",
            "message": (
                "Send the X-Auth-Token header, empty (curl -H 'X-Auth-Token;'),"
                " to log in and get a token in it."
            ),
        },
    )
    assert site.client.get_cookie("session") is None, "no session made, nobody logged in"
    assert "Logged in as" not in site.get("/").text


def test_a_token_that_is_not_logged_in_is_refused_and_a_browser_cart_is_not(site: Site) -> None:
    api = Curl(site.client.application)
    for answer in (api.get("/api/cart"), api.post("/api/cart", data={"item": "pear"})):
        assert (answer.status_code, answer.json) == (401, LOGIN_FIRST)
        assert answer.headers["WWW-Authenticate"] == "Cookie"
    assert api.token is None
    assert site.api('{"item": "pear"}').json == {"cart": ["pear"]}, "a visitor's cart"
    assert site.get("/api/cart").json == {"cart": ["pear"]}


def test_an_api_logout_ends_the_token(apps: Any, variant: str) -> None:
    api = Curl(apps[variant])
    token = api_log_in(api, "bob", "builder")
    answer = api.post("/api/logout")
    assert (answer.status_code, answer.json) == (
        200,
        {"user": None, "message": "Logged out: forget the token."},
    )
    assert answer.headers[TOKEN] == "", "empty: the session ended, forget the token"
    assert api.token is None
    again = api.get("/api/cart", headers={TOKEN: token})
    assert (again.status_code, again.json) == (401, LOGIN_FIRST)


def token_panel(page: str) -> list[str]:
    """The commands of the devices page's "API token" panel, as the user copies them."""
    [panel] = re.findall(r'<section class="card token-panel".*?</section>', page, re.S)
    assert "<h2" in panel
    blocks = re.findall(r"<pre><code>(.*?)</code></pre>", panel, re.S)
    return [html.unescape(block) for block in blocks]


def test_the_devices_page_tells_how_to_log_in_from_curl(apps: Any, variant: str) -> None:
    site = Site(apps[variant])
    site.log_in("bob", "builder")
    page = site.get("/devices").text
    assert '<h2 id="api-token-title">API token</h2>' in page
    assert token_panel(page) == [
        "read -rs PASSWORD\n"
        "curl -si -H 'X-Auth-Token;' \\\n"
        "  -d username=bob \\\n"
        '  --data-urlencode "password=$PASSWORD" \\\n'
        "  http://localhost/api/login",
        "TOKEN='paste the value here'\n"
        "curl -s \\\n"
        '  -H "X-Auth-Token: $TOKEN" \\\n'
        "  http://localhost/api/cart\n"
        "curl -s -d item=teapot \\\n"
        '  -H "X-Auth-Token: $TOKEN" \\\n'
        "  http://localhost/api/cart",
        'curl -s -X POST \\\n  -H "X-Auth-Token: $TOKEN" \\\n  http://localhost/api/logout',
    ]
    assert "wonderland" not in page
    assert "builder" not in page, "the password is read by the shell, never shown"


def test_a_token_is_a_device_revoked_from_the_browser(apps: Any, variant: str) -> None:
    """The panel's walk-through: log in from curl, use the token, see it among the
    devices, log it out from the browser; the token's next request is refused."""
    laptop, api = Site(apps[variant], FIREFOX), Curl(apps[variant])
    laptop.log_in("bob", "builder")
    laptop.submit("/devices", "/devices", everywhere="1")  # bob's sessions of other tests
    token = api_log_in(api, "bob", "builder")
    assert api.post("/api/cart", data={"item": "teapot"}).json == {"cart": ["teapot"]}

    page = laptop.get("/devices").text
    rows = device_rows(page)
    assert sorted((r["browser"], r["title"], r["current"]) for r in rows) == [
        ("Firefox on Linux", FIREFOX, "True"),
        ("curl", CURL, "False"),
    ]
    [curl_row] = [
        row for row in re.findall(r"<tr>(.*?)</tr>", page, re.S) if f'title="{CURL}"' in row
    ]
    [handle] = re.findall(r'name="handle" value="([^"]+)"', curl_row)
    assert "Log out</button>" in curl_row

    done = laptop.submit("/devices", "/devices", handle=handle)
    assert (done.status_code, done.headers["Location"]) == (303, "/devices")
    page = laptop.get("/devices").text
    assert flashes(page) == [("success", "That session is logged out.")]
    assert CURL not in page, "no longer listed"
    assert "Logged in as <b>Bob</b>" in page, "the browser stays logged in"

    refused = api.get("/api/cart")
    assert (refused.status_code, refused.json) == (401, LOGIN_FIRST)
    assert refused.headers[TOKEN] == "", "the session ended: forget the token"
    assert api.token is None
    again = api.post("/api/cart", data={"item": "pear"}, headers={TOKEN: token})
    assert (again.status_code, again.json) == (401, LOGIN_FIRST), "the old token stays refused"
