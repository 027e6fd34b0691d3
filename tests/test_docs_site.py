"""The documentation site, built as ``make docs`` builds it, in a real browser.

A newcomer reads the quick start and the API reference on a desktop screen and on a
phone: no code block may be cut off at 1280 px (a ``pre`` that scrolls hides the
end of its lines), and no page may scroll sideways at 390 px. The site is built
into a temporary directory (a few seconds) and opened in headless Chromium, as
``tests/test_browser.py`` does; screenshots of the checked pages at both widths go
to ``artifacts/screenshots/`` (``WSGISESSION_SCREENSHOTS`` to change it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import browser_problem, headless_chromium
from tests.services import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

SCREENSHOTS = Path(os.environ.get("WSGISESSION_SCREENSHOTS", ROOT / "artifacts/screenshots"))

DESKTOP = (1280, 900)
PHONE = (390, 844)

#: The quick start and an API page with many code blocks: screenshots at both widths.
SHOWN = ["quickstart.html", "api/requests.html"]
#: Whose code blocks must fit at desktop width: the quick start, and the API
#: reference, whose examples are docstrings (lines of up to 100 characters).
FITTING = ["quickstart.html", *(f"api/{page.stem}.html" for page in sorted(DOCS.glob("api/*.rst")))]


def _problem() -> str | None:
    for module in ("sphinx", "myst_parser", "furo"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[docs]' (make docs does)"
    return browser_problem()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML site, built from docs/ as ``make docs`` builds it (warnings fail)."""
    problem = _problem()
    if problem is not None:
        skip_or_fail(problem)
    out = tmp_path_factory.mktemp("html")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, out],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    return out


@pytest.fixture(scope="module")
def driver(site: Path) -> Iterator[Any]:
    """Headless Chromium, for the whole module (the pages are only read)."""
    with headless_chromium() as browser:
        yield browser


def open_page(driver: Any, site: Path, page: str, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    driver.get((site / page).as_uri())
    # The size asked for is the viewport Chromium lays the page out in.
    assert driver.execute_script("return window.innerWidth") == size[0]


CLIPPED_CODE = """
return [...document.querySelectorAll("pre")]
    .filter(pre => pre.scrollWidth > pre.clientWidth)
    .map(pre => {
        const lines = pre.textContent.split("\\n");
        const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
        return `${pre.scrollWidth} px in ${pre.clientWidth} px: ${longest}`;
    });
"""

SIDEWAYS = """
const page = document.documentElement;
return [page.scrollWidth, page.clientWidth, [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > page.clientWidth + 1
        && getComputedStyle(e).visibility !== "hidden"
        && !e.closest("pre, .sidebar-drawer, .toc-drawer, .table-wrapper, .highlight"))
    .slice(0, 5).map(e => e.tagName + "." + e.className)];
"""


@pytest.mark.slow
@pytest.mark.parametrize("page", FITTING)
def test_no_code_block_is_cut_off_at_desktop_width(driver: Any, site: Path, page: str) -> None:
    open_page(driver, site, page, DESKTOP)
    assert driver.execute_script(CLIPPED_CODE) == []


@pytest.mark.slow
def test_the_quick_start_shows_its_first_app_whole(driver: Any, site: Path) -> None:
    open_page(driver, site, "quickstart.html", DESKTOP)
    line = driver.execute_script(
        """
        const pre = [...document.querySelectorAll("pre")]
            .find(pre => pre.textContent.includes("app = from_config(app)"));
        const range = document.createRange();
        range.selectNodeContents(pre);
        return [range.getBoundingClientRect().right, pre.getBoundingClientRect().right];
        """
    )
    text_right, box_right = line
    assert text_right <= box_right


def all_pages(site: Path) -> list[str]:
    return sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if not path.relative_to(site).parts[0].startswith("_")
    )


@pytest.mark.slow
def test_no_page_scrolls_sideways_at_phone_width(driver: Any, site: Path) -> None:
    wide = {}
    pages = all_pages(site)
    assert {"index.html", "quickstart.html", *SHOWN, *FITTING} <= set(pages)
    for page in pages:
        open_page(driver, site, page, PHONE)
        scroll_width, client_width, culprits = driver.execute_script(SIDEWAYS)
        if scroll_width > client_width:
            wide[page] = (scroll_width, client_width, culprits)
    assert wide == {}


@pytest.mark.slow
@pytest.mark.parametrize("page", SHOWN)
def test_the_first_pages_do_not_scroll_sideways_at_any_width(
    driver: Any, site: Path, page: str
) -> None:
    # docs/_static/layout.css widens Furo's column: at the widths where Furo's layout
    # changes (side bars shown or hidden, the larger font from 1552 px), it must
    # still fit the window.
    wide = {}
    for width in (390, 768, 1072, 1100, 1280, 1312, 1366, 1552, 1920):
        open_page(driver, site, page, (width, 900))
        scroll_width, client_width, culprits = driver.execute_script(SIDEWAYS)
        if scroll_width > client_width:
            wide[width] = (scroll_width, client_width, culprits)
    assert wide == {}


@pytest.mark.slow
@pytest.mark.parametrize("page", SHOWN)
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_the_first_pages(
    driver: Any, site: Path, page: str, size: tuple[int, int]
) -> None:
    open_page(driver, site, page, size)
    assert driver.execute_script("return document.querySelectorAll('pre').length") >= 5
    # The text column takes the room there is: most of a phone's width, and more
    # than Furo's 46em (736 px) on a desktop, for the code blocks.
    column = driver.execute_script(
        "return document.querySelector('article').getBoundingClientRect().width"
    )
    assert column >= (0.85 * size[0] if size == PHONE else 800)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = page.removesuffix(".html").replace("/", "-")
    path = SCREENSHOTS / f"docs-{name}-{size[0]}.png"
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000


_MD_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_RST_HEADING = re.compile(r"^(\S.*)\n([=\-~^\"])\2{2,}$", re.MULTILINE)
_FENCE = re.compile(r"^( *)(```|~~~).*?^\1\2", re.MULTILINE | re.DOTALL)
_HISTORY = re.compile(r"\bissues? #?\d+|\b(?:morning|afternoon|evening) run\b", re.IGNORECASE)


def headings(source: Path) -> list[str]:
    if source.suffix == ".rst":
        return [title for title, _ in _RST_HEADING.findall(source.read_text())]
    return _MD_HEADING.findall(_FENCE.sub("", source.read_text()))


def test_no_heading_in_the_docs_narrates_internal_history() -> None:
    # Headings are the site's navigation: "Issue 20, second part" means nothing to a
    # reader. The root files count too: docs/ includes CHANGELOG.md and SECURITY.md.
    pages = [path for path in sorted(DOCS.rglob("*")) if path.suffix in (".md", ".rst")]
    sources = [
        *(path for path in pages if "_build" not in path.relative_to(DOCS).parts),
        ROOT / "CHANGELOG.md",
        ROOT / "SECURITY.md",
    ]
    found = [(source.name, heading) for source in sources for heading in headings(source)]
    assert len(found) > 50
    assert {"API reference", "Quick start", "Stores and configuration"} <= {h for _, h in found}
    assert [entry for entry in found if _HISTORY.search(entry[1])] == []
