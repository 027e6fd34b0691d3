"""A real browser on the demo under gunicorn: headless Chromium driven by Selenium.

Uses Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs
them); nothing is downloaded. Outside CI a missing browser skips the test with the
reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import SECRET
from tests.servers import free_port, gunicorn, running, skip_or_fail

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("WSGISESSION_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WSGISESSION_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def _browser_problem() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            return f"no {path}: apt-get install {package} (or run .ci/run, which does)"
    return None


def require_browser() -> None:
    """Skip without Chromium and its driver, but fail under ``CI=true``."""
    problem = _browser_problem()
    if problem is not None:
        skip_or_fail(problem)


@pytest.fixture
def driver() -> Iterator[Any]:
    """Headless Chromium, quit after the test."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


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
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    form = driver.find_element(By.CSS_SELECTOR, f'form[action^="{form_action}"]')
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    old_page = driver.find_element(By.TAG_NAME, "html")
    form.find_element(By.TAG_NAME, "button").click()
    # A click returns before the navigation it starts: wait for the old page to go
    # and the new one to finish loading.
    wait = WebDriverWait(driver, 30)
    wait.until(expected_conditions.staleness_of(old_page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_log_in_shop_log_out_in_a_real_browser(driver: Any, demo: str) -> None:
    driver.get(f"{demo}/login")
    submit(driver, "/login", username="alice", password="wonderland")
    assert urlsplit(driver.current_url).path == "/"
    assert flashes(driver) == ["Welcome back, Alice."]
    assert "Logged in as Alice." in driver.page_source.replace("<b>", "").replace("</b>", "")

    driver.refresh()
    assert flashes(driver) == [], "a flash message is shown once"

    session_cookie = driver.get_cookie("session")
    assert session_cookie is not None
    assert session_cookie["httpOnly"] is True
    assert "session=" not in driver.execute_script("return document.cookie")

    driver.get(f"{demo}/cart")
    submit(driver, "/cart", item="<apple>")
    assert urlsplit(driver.current_url).path == "/cart"
    assert flashes(driver) == ["Added <apple> to your cart."]
    assert "<li>&lt;apple&gt;</li>" in driver.page_source

    submit(driver, "/logout")
    assert flashes(driver) == ["You are logged out."]

    driver.get(f"{demo}/admin")
    landed = urlsplit(driver.current_url)
    assert (landed.path, landed.query) == ("/login", "next=%2Fadmin")
    assert "<h1>Log in</h1>" in driver.page_source


@pytest.fixture
def second_driver(driver: Any) -> Iterator[Any]:
    """Another headless Chromium (its own cookies): the user's other device."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


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
    driver.refresh()
    assert "Logged in as" in driver.page_source
