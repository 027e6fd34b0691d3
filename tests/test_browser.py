"""A real browser on the demo under gunicorn: headless Chromium driven by Selenium.

Uses Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs
them); nothing is downloaded. Outside CI a missing browser skips the test with the
reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.common import SIGNED_OUT_ELSEWHERE
from tests.conftest import SECRET
from tests.servers import (
    Browser,
    browser_problem,
    free_port,
    gunicorn,
    headless_chromium,
    running,
)
from tests.services import skip_or_fail

pytestmark = pytest.mark.slow


def require_browser() -> None:
    """Skip without Chromium and its driver, but fail under ``CI=true``."""
    problem = browser_problem()
    if problem is not None:
        skip_or_fail(problem)


@pytest.fixture
def driver() -> Iterator[Any]:
    """Headless Chromium, quit after the test."""
    require_browser()
    with headless_chromium() as browser:
        yield browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    """The demo under gunicorn (2 workers, sessions in SQLite); its base URL."""
    port = free_port()
    env = {
        "WSGISESSION_SECRET_KEY": SECRET,
        "WSGISESSION_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3",
    }
    with running(gunicorn(port, "--workers", "2"), port, tmp_path / "gunicorn.log", env):
        yield f"http://127.0.0.1:{port}"


def flashes(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, "p.flash")]


def submit(driver: Any, form_action: str, **fields: str) -> None:
    """Fill the named fields of the form posting to *form_action*, submit it, and
    wait until the page it leads to (after the redirect) has loaded."""
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.CSS_SELECTOR, f'form[action^="{form_action}"]')
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    press(driver, form.find_element(By.TAG_NAME, "button"))


def press(driver: Any, button: Any) -> None:
    """Click *button*, which submits its form, and wait until the page it leads to
    (after the redirect) has loaded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    old_page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    # A click returns before the navigation it starts: wait for the old page to go
    # and the new one to finish loading.
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: _gone(old_page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _gone(element: Any) -> bool:
    """Whether *element* belongs to a page the browser has left."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:
        # StaleElementReferenceException, or Chromium's "Node with given id does not
        # belong to the document" when the check lands mid-navigation: both say the
        # old page is gone (selenium's staleness_of lets the second one escape).
        return True
    return False


#: Where the screenshots go: CI keeps this folder as an artifact (see the README).
SCREENSHOTS = Path(
    os.environ.get("WSGISESSION_SCREENSHOTS", Path(__file__).parents[1] / "artifacts/screenshots")
)

#: The demo's three variants, as gunicorn serves them (``make demo``, ``demo-flask``,
#: ``demo-django``), with the path of their admin page.
VARIANTS = {
    "wsgi": ("demo.wsgi:app", "/admin"),
    "flask": ("demo.flask_app:app", "/admin"),
    "django": ("demo.django_app:create_app()", "/admin/"),
}


@pytest.fixture(params=list(VARIANTS))
def variant_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """One variant of the demo under gunicorn; its name and base URL."""
    name = str(request.param)
    port = free_port()
    env = {
        "WSGISESSION_SECRET_KEY": SECRET,
        "WSGISESSION_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3",
        "WSGISESSION_DEMO_VAR": str(tmp_path),
    }
    command = gunicorn(port, "--workers", "2", app=VARIANTS[name][0])
    with running(command, port, tmp_path / "gunicorn.log", env):
        yield name, f"http://127.0.0.1:{port}"


def shot(driver: Any, variant: str, step: str) -> None:
    """Save a screenshot of the page as *variant*-*step*.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{variant}-{step}.png"))


def nav_user(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, ".who").text)


def test_the_whole_site_in_a_real_browser_on_every_variant(
    driver: Any, variant_site: tuple[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    variant, site = variant_site
    admin_path = VARIANTS[variant][1]
    driver.set_window_size(1100, 760)
    driver.get(f"{site}/login")
    shot(driver, variant, "01-login")
    driver.find_element(By.NAME, "remember").click()
    submit(driver, "/login", username="bob", password="builder")
    assert flashes(driver) == ["Welcome back, Bob."]
    assert nav_user(driver).startswith("Logged in as Bob")
    logout = driver.find_element(By.ID, "logout")
    brand = driver.find_element(By.CSS_SELECTOR, ".brand")
    assert logout.location["y"] - brand.location["y"] < 20, "the nav stays on one line"
    shot(driver, variant, "02-home-flash")
    driver.refresh()
    assert flashes(driver) == [], "a flash message is shown once"

    driver.get(f"{site}/")
    submit(driver, "/profile", name="Bob", email="not an address")
    errors = driver.find_elements(By.CSS_SELECTOR, ".field-error")
    assert [e.get_attribute("id") for e in errors] == ["email-error"]
    assert driver.find_element(By.NAME, "email").get_attribute("value") == "not an address"
    shot(driver, variant, "03-profile-error")

    driver.get(f"{site}/cart")
    submit(driver, "/cart", item="   ")
    assert driver.find_element(By.ID, "item-error").text, "a blank item is a field error"
    shot(driver, variant, "04-cart-error")
    submit(driver, "/cart", item="<apple>")
    assert flashes(driver) == ["Added <apple> to your cart."]
    assert [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.items li")] == ["<apple>"]
    shot(driver, variant, "05-cart")

    driver.get(f"{site}{admin_path}")
    assert "needs the" in driver.page_source
    assert "admin" in driver.find_element(By.CSS_SELECTOR, ".card").text
    assert driver.find_element(By.CSS_SELECTOR, ".error-code").text == "403"
    assert driver.find_element(By.CSS_SELECTOR, "nav.main"), "the error page has the nav"
    shot(driver, variant, "06-admin-refused")

    driver.get(f"{site}/no-such-page")
    assert driver.find_element(By.CSS_SELECTOR, ".error-code").text == "404"
    shot(driver, variant, "07-not-found")

    driver.get(f"{site}/cart")
    submit(driver, "/logout")
    assert flashes(driver) == ["You are logged out."]
    driver.back()  # the cart page of a logged-in Bob: fetched again, not from the cache
    assert "Logged in as" not in nav_user(driver)
    assert "<apple>" not in driver.page_source
    shot(driver, variant, "08-back-after-logout")

    # A form from before the logout, submitted after it: a page, not plain text.
    driver.get(f"{site}/login")
    submit(driver, "/login", username="alice", password="wonderland")
    driver.get(f"{site}/cart")
    driver.execute_script(
        "const m = (n) => document.querySelector(`meta[name=${n}]`).content;"
        "await fetch('/logout', {method: 'POST', headers: {[m('csrf-header')]: m('csrf-token')}});"
    )
    submit(driver, "/cart", item="pear")
    assert driver.find_element(By.CSS_SELECTOR, ".error-code").text == "403"
    # The page after the logout gave the session a new CSRF secret: the old token
    # does not match it, which is all a server can tell (or the form was altered).
    assert "the page is from before you last logged in or out" in driver.page_source
    shot(driver, variant, "09-stale-form")

    driver.get(f"{site}/login")
    submit(driver, "/login", username="alice", password="wonderland")
    driver.get(f"{site}{admin_path}")
    assert driver.find_elements(By.CSS_SELECTOR, ".error-code") == []
    if variant == "django":  # Django's own admin, with its own look
        assert "Site administration" in driver.page_source
        assert driver.find_element(By.LINK_TEXT, "Users")
    else:
        assert "Logged in as Alice" in nav_user(driver)
        assert "only the admin role sees this page" in driver.page_source
    shot(driver, variant, "10-admin")


@pytest.fixture
def second_driver(driver: Any) -> Iterator[Any]:
    """Another headless Chromium (its own cookies): the user's other device."""
    with headless_chromium() as browser:
        yield browser


def test_revoking_another_browsers_session_from_your_devices_page(
    driver: Any, second_driver: Any, demo: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    phone = second_driver
    phone.get(f"{demo}/login")
    phone.find_element(By.NAME, "remember").click()
    submit(phone, "/login", username="bob", password="builder")
    assert flashes(phone) == ["Welcome back, Bob."]
    remembered = phone.get_cookie("session")
    assert remembered is not None
    assert "expiry" in remembered  # "remember me": a persistent cookie

    driver.get(f"{demo}/login")
    submit(driver, "/login", username="bob", password="builder")
    laptop_cookie = driver.get_cookie("session")
    assert laptop_cookie is not None
    assert "expiry" not in laptop_cookie  # not remembered: ends with the browser

    driver.get(f"{demo}/devices")
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    assert len(rows) == 2
    assert sum("(this browser)" in row.text for row in rows) == 1
    driver.save_screenshot(
        str(Path(os.environ.get("WSGISESSION_SCREENSHOTS", tmp_path)) / "devices.png")
    )

    submit(driver, "/devices")  # the first form: the other browser's "Log out"
    assert flashes(driver) == ["That session is logged out."]
    assert len(driver.find_elements(By.CSS_SELECTOR, "table tr")[1:]) == 1

    phone.refresh()
    assert "Logged in as" not in phone.page_source
    assert '<a href="/login">Log in</a>' in phone.page_source
    assert flashes(phone) == [SIGNED_OUT_ELSEWHERE], "the phone is told why"
    driver.refresh()
    assert "Logged in as" in driver.page_source


#: A phone's width and a laptop's, in CSS pixels.
PHONE, DESKTOP = 390, 1280


def at_width(driver: Any, width: int) -> None:
    """Make the page *width* CSS pixels wide (the browser's window, not an emulation
    that would zoom out to fit a page too wide)."""
    driver.set_window_size(width, 900)
    assert driver.execute_script("return window.innerWidth") == width


def fits(driver: Any) -> None:
    """The page does not scroll sideways."""
    scroll, width = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll <= width, f"{driver.current_url}: {scroll} px wide in a {width} px window"


def on_screen(driver: Any, element: Any) -> bool:
    """Whether *element* is shown, all of it within the window's width."""
    left, right = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right]", element
    )
    width = driver.execute_script("return window.innerWidth")
    return bool(element.is_displayed()) and left >= 0 and right <= width


def lines(driver: Any, element: Any) -> int:
    """On how many lines the text of *element* is laid out."""
    return int(
        driver.execute_script(
            "const range = document.createRange(); range.selectNodeContents(arguments[0]);"
            "return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;",
            element,
        )
    )


def test_every_page_fits_a_phone_and_a_laptop_on_every_variant(
    driver: Any, variant_site: tuple[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    variant, site = variant_site
    for width, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        at_width(driver, width)
        driver.delete_all_cookies()
        driver.get(f"{site}/")
        fits(driver)
        log_in = driver.find_element(By.LINK_TEXT, "Log in")
        assert on_screen(driver, log_in), f"'Log in' is on the screen at {width} px"
        for link in driver.find_elements(By.CSS_SELECTOR, "nav.main a"):
            assert on_screen(driver, link), link.text
        shot(driver, variant, f"{name}-01-home")

        driver.get(f"{site}/devices")  # a guard sends the visitor to log in, with a notice
        assert flashes(driver) == ["Please log in to see that page."]
        fits(driver)
        shot(driver, variant, f"{name}-02-login-notice")

        driver.get(f"{site}/cart")
        submit(driver, "/cart", item="   ")
        assert (
            driver.find_element(By.ID, "item-error").text == "Enter an item, up to 50 characters."
        )
        fits(driver)
        shot(driver, variant, f"{name}-03-cart-error")

        driver.get(f"{site}/no-such-page")
        assert driver.find_element(By.CSS_SELECTOR, ".error-code").text == "404"
        fits(driver)
        shot(driver, variant, f"{name}-04-not-found")

        driver.get(f"{site}/login")
        submit(driver, "/login", username="alice", password="wonderland")
        fits(driver)
        assert on_screen(driver, driver.find_element(By.ID, "logout"))
        assert lines(driver, driver.find_element(By.ID, "logout")) == 1
        assert "Logged in as Alice" in nav_user(driver)
        for link in driver.find_elements(By.CSS_SELECTOR, "nav.main a"):
            assert on_screen(driver, link), link.text
        shot(driver, variant, f"{name}-05-logged-in")
        if width == DESKTOP:
            logout = driver.find_element(By.ID, "logout")
            brand = driver.find_element(By.CSS_SELECTOR, ".brand")
            assert logout.location["y"] - brand.location["y"] < 20, "one line on a laptop"


def test_the_devices_page_reads_well_and_tells_a_revoked_browser_on_every_variant(
    driver: Any, second_driver: Any, variant_site: tuple[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    variant, site = variant_site
    phone, laptop = second_driver, driver
    at_width(phone, PHONE)
    phone.get(f"{site}/login")
    phone.find_element(By.NAME, "remember").click()
    submit(phone, "/login", username="bob", password="builder")
    laptop.get(f"{site}/login")
    submit(laptop, "/login", username="bob", password="builder")

    for width, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        at_width(laptop, width)
        laptop.get(f"{site}/devices")
        fits(laptop)
        browsers = laptop.find_elements(By.CSS_SELECTOR, "table.devices .browser")
        assert [b.text for b in browsers] == ["Chrome on Linux"] * 2
        agent = laptop.execute_script("return navigator.userAgent")
        assert {b.get_attribute("title") for b in browsers} == {agent}, "the raw User-Agent"
        times = laptop.find_elements(By.CSS_SELECTOR, "table.devices time")
        assert len(times) == 4
        for moment in times:
            assert lines(laptop, moment) == 1, f"{moment.text!r} wraps at {width} px"
        [revoke] = laptop.find_elements(By.CSS_SELECTOR, "button.revoke")
        assert lines(laptop, revoke) == 1, f"'Log out' wraps at {width} px"
        assert on_screen(laptop, revoke)
        shot(laptop, variant, f"{name}-06-devices")

    submit(laptop, "/devices")  # the phone's "Log out"
    assert flashes(laptop) == ["That session is logged out."]
    phone.refresh()
    assert flashes(phone) == [SIGNED_OUT_ELSEWHERE]
    assert on_screen(phone, phone.find_element(By.LINK_TEXT, "Log in"))
    fits(phone)
    shot(phone, variant, "phone-07-logged-out-elsewhere")
    phone.get(f"{site}/devices")
    assert flashes(phone) == ["Please log in to see that page."], "told once"


CURL = "curl/8.5.0"


def api(port: int, method: str, path: str, token: str, **form: str) -> tuple[int, str | None, Any]:
    """What ``curl -H "X-Auth-Token: $TOKEN"`` does, with http.client: one request with
    the token header (empty: none yet) and a form body if *form*; the status, the
    token header of the answer (``None`` if it has none) and its JSON."""
    import http.client
    import json
    from urllib.parse import urlencode

    headers = {"X-Auth-Token": token, "User-Agent": CURL, "Accept": "*/*"}
    body = None
    if form:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        data = json.loads(answer.read())
        assert answer.getheader("Set-Cookie") is None, "an API client gets no cookie"
        return answer.status, answer.getheader("X-Auth-Token"), data
    finally:
        connection.close()


def page_shot(driver: Any, variant: str, step: str) -> None:
    """A screenshot of the whole page, not just the window's height."""
    width = driver.execute_script("return window.innerWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 100)
    try:
        shot(driver, variant, step)
    finally:
        at_width(driver, width)


def test_an_api_token_is_a_device_the_browser_logs_out_on_every_variant(
    driver: Any, variant_site: tuple[str, str]
) -> None:
    """The devices page's "API token" panel, followed: log in from curl (http.client
    here) with the token header, use the token, see it among the devices, log it out
    from the browser; the token is then refused."""
    from selenium.webdriver.common.by import By

    variant, site = variant_site
    port = int(site.rsplit(":", 1)[1])
    at_width(driver, DESKTOP)
    driver.get(f"{site}/login")
    submit(driver, "/login", username="alice", password="wonderland")

    status, token, data = api(
        port, "POST", "/api/login", "", username="alice", password="wonderland"
    )
    assert (status, data["user"]) == (200, "alice")
    assert token, "the token, in the X-Auth-Token header"
    status, _, data = api(port, "POST", "/api/cart", token, item="teapot")  # no CSRF token
    assert (status, data) == (200, {"cart": ["teapot"]})
    status, _, data = api(port, "GET", "/api/cart", token)
    assert (status, data) == (200, {"cart": ["teapot"]})
    status, none, data = api(port, "POST", "/api/login", "", username="alice", password="nope")
    assert (status, none, data["error"]) == (401, None, "wrong_credentials")

    login_form = '--data-urlencode "password=$PASSWORD" '
    for width, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        at_width(driver, width)
        driver.get(f"{site}/devices")
        fits(driver)
        browsers = driver.find_elements(By.CSS_SELECTOR, "table.devices .browser")
        assert sorted(b.text for b in browsers) == ["Chrome on Linux", "curl"]
        [curl] = [b for b in browsers if b.text == "curl"]
        assert curl.get_attribute("title") == CURL
        panel = driver.find_element(By.ID, "api-token")
        assert panel.find_element(By.TAG_NAME, "h2").text == "API token"
        commands = [pre.text for pre in panel.find_elements(By.TAG_NAME, "pre")]
        assert commands[0].endswith(f"-d username=alice \\\n  {login_form}\\\n  {site}/api/login")
        assert f'-H "X-Auth-Token: $TOKEN" \\\n  {site}/api/cart' in commands[1]
        for pre in panel.find_elements(By.TAG_NAME, "pre"):
            assert on_screen(driver, pre), f"a command runs off the screen at {width} px"
            assert not driver.execute_script(
                "return arguments[0].scrollWidth > arguments[0].clientWidth", pre
            ), f"a command scrolls in its box at {width} px"
        [revoke] = driver.find_elements(By.CSS_SELECTOR, "button.revoke")
        assert lines(driver, revoke) == 1
        page_shot(driver, variant, f"{name}-11-api-token")

    at_width(driver, DESKTOP)
    row = driver.find_element(By.XPATH, "//tr[.//span[@class='browser' and text()='curl']]")
    press(driver, row.find_element(By.CSS_SELECTOR, "button.revoke"))
    assert flashes(driver) == ["That session is logged out."]
    assert [b.text for b in driver.find_elements(By.CSS_SELECTOR, "table.devices .browser")] == [
        "Chrome on Linux"
    ]
    assert "Logged in as Alice" in nav_user(driver), "the browser stays logged in"

    status, ended, data = api(port, "GET", "/api/cart", token)
    assert (status, data["error"]) == (401, "not_logged_in"), "the token is refused"
    assert ended == "", "and told to forget it"
    status, _, data = api(port, "POST", "/api/cart", token, item="pear")
    assert (status, data["error"]) == (401, "not_logged_in")


#: What the footer says the session is, on each side of the switch.
SESSIONS_BEFORE = {"flask": "Flask's own", "django": "Django's own"}


def footer(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "footer").text)


def cart_items(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.items li")]


def our_session(value: str, store: Path) -> dict[str, Any]:
    """The data of the session of ours the cookie *value* names in *store*; ``{}``
    when it names none (a cookie of Flask's or Django's own sessions, say)."""
    from werkzeug.test import Client

    from wsgisession import SessionMiddleware, SQLiteStore
    from wsgisession.testing import read_session

    sessions = SQLiteStore(store)
    try:
        client = Client(SessionMiddleware(lambda e, s: [], secret_key=SECRET, store=sessions))
        client.set_cookie("session", value, domain="localhost")
        return dict(read_session(client))
    finally:
        sessions.close()


@pytest.mark.parametrize("variant", ["flask", "django"])
def test_switching_from_the_frameworks_own_sessions_logs_nobody_out(
    driver: Any, variant: str, tmp_path: Path
) -> None:
    """docs/demo.md's switch: Alice logs in on the framework's own sessions, fills her
    cart, the site restarts on wsgisession with the migration on, and she is still
    logged in, with her cart, on a session of ours (carried over once)."""
    from selenium.webdriver.common.by import By

    port = free_port()
    site = f"http://127.0.0.1:{port}"
    store = tmp_path / "sessions.sqlite3"
    env = {
        "WSGISESSION_SECRET_KEY": SECRET,
        "WSGISESSION_STORE": f"sqlite:///{store}",
        "WSGISESSION_DEMO_VAR": str(tmp_path),
    }
    command = gunicorn(port, "--workers", "2", app=VARIANTS[variant][0])
    driver.set_window_size(1100, 760)

    before = {**env, "WSGISESSION_DEMO_SESSIONS": variant}
    with running(command, port, tmp_path / "before.log", before):
        driver.get(f"{site}/login")
        driver.find_element(By.NAME, "remember").click()
        submit(driver, "/login", username="alice", password="wonderland")
        driver.get(f"{site}/cart")
        submit(driver, "/cart", item="teapot")
        assert nav_user(driver).startswith("Logged in as Alice")
        assert cart_items(driver) == ["teapot"]
        assert SESSIONS_BEFORE[variant] in footer(driver)
        shot(driver, variant, "switch-1-before")
        old = driver.get_cookie("session")
        assert old is not None
        assert our_session(old["value"], store) == {}, "the framework's own cookie"

    # The same port, key, store and database; the migration on.
    after = {**env, "WSGISESSION_DEMO_MIGRATE_FROM": variant}
    log = tmp_path / "after.log"
    with running(command, port, log, after):
        driver.refresh()
        assert nav_user(driver).startswith("Logged in as Alice")
        assert cart_items(driver) == ["teapot"]
        assert "the session is wsgisession's" in footer(driver)
        shot(driver, variant, "switch-2-after")
        cookie = driver.get_cookie("session")
        assert cookie is not None
        assert cookie["value"] != old["value"]
        assert our_session(cookie["value"], store)["cart"] == ["teapot"], "a session of ours"
        assert "expiry" in cookie, "'remember me' still outlives the browser"

        driver.refresh()  # Flask renews the cookie at each request: same session
        assert nav_user(driver).startswith("Logged in as Alice")
        assert cart_items(driver) == ["teapot"]
        assert our_session(driver.get_cookie("session")["value"], store)["cart"] == ["teapot"]
        driver.get(f"{site}/devices")  # the carried login is a device like any other
        rows = driver.find_elements(By.CSS_SELECTOR, "table.devices tbody tr")
        assert [("(this browser)" in row.text) for row in rows] == [True]
        shot(driver, variant, "switch-3-devices")
        assert log.read_text().count("carried a session over") == 1, "once, not per request"

        # A copy of the old cookie (another browser, a thief): Django's record was
        # deleted as it was carried over; Flask's cookie, which no server can delete,
        # is honoured until migrate_until, as Flask honoured it.
        copy = Browser(port)
        copy.cookies["session"] = old["value"]
        copied = "Logged in as <b>Alice</b>" in copy.get("/cart")
        assert copied is (variant == "flask")
