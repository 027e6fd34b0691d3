"""What a user gets from ``pip install sessionlayer``: run by ``tests/compat/wheel/run.py``.

This module runs in a virtualenv that holds the built wheel and nothing of the
checkout, from a directory outside it, so each test sees the package exactly as the
package index would deliver it.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

import pytest

import wsgisession

README = Path(os.environ["WSGISESSION_README"]).read_text()


def readme_block(containing: str) -> str:
    """The one Python block of the README that contains *containing*."""
    blocks = re.findall(r"^```python\n(.*?)^```", README, re.DOTALL | re.MULTILINE)
    (block,) = [block for block in blocks if containing in block]
    return block


def test_the_package_is_the_installed_wheel_with_its_type_hints() -> None:
    package = Path(wsgisession.__file__).resolve().parent
    assert package.is_relative_to(Path(sys.prefix).resolve())
    assert (package / "py.typed").is_file()
    assert version("sessionlayer") == wsgisession.__version__


def test_the_command_line_names_its_version_and_commands() -> None:
    shown = subprocess.run(
        ["wsgisession", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert wsgisession.__version__ in shown
    usage = subprocess.run(
        ["wsgisession", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "secret", "inspect", "check", "gc", "migrate"):
        assert command in usage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The README's quick start: its app in myapp.py, under its own serve command."""
    (tmp_path / "myapp.py").write_text(readme_block("def app(environ"))
    command = re.search(r"`(wsgisession serve myapp:app [^`]*)`", README)
    assert command, "the README no longer shows how to serve its app"
    port = free_port()
    server = subprocess.Popen(
        [*shlex.split(command[1]), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"wsgisession serve did not start: {server.communicate()[1]}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_readme_quick_start_keeps_visits_in_sqlite(served: tuple[str, Path]) -> None:
    url, directory = served
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    pages = [browser.open(url, timeout=10).read().decode() for _ in range(2)]
    assert pages == ["<p>Visits: 1</p>", "<p>Visits: 2</p>"]
    assert (directory / "dev.sqlite3").is_file()


def test_the_readme_flask_app_keeps_the_cart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flask

    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme_flask"}
    exec(readme_block("import flask"), namespace)  # noqa: S102
    app = namespace["app"]
    app.get("/cart")(lambda: {"cart": flask.session.get("cart", [])})
    client = app.test_client()
    client.post("/cart", data={"item": "apple"})
    client.post("/cart", data={"item": "pear"})
    assert client.get("/cart").json == {"cart": ["apple", "pear"]}
    assert (tmp_path / "sessions.sqlite3").is_file()


def whoami(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(request.user.get_username() or "anonymous")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("whoami", whoami)]


#: The Django test's URLs (ROOT_URLCONF is this module).
urlpatterns = _urlpatterns()


def test_the_readme_django_settings_keep_a_user_logged_in(tmp_path: Path) -> None:
    import django
    from django.conf import settings

    readme: dict[str, Any] = {}
    exec(readme_block("SESSION_ENGINE"), readme)  # noqa: S102
    settings.configure(
        SECRET_KEY="a test key that is long enough to pass Django's own checks",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MIDDLEWARE=readme["MIDDLEWARE"],
        SESSION_ENGINE=readme["SESSION_ENGINE"],
        # The README's store is Redis; SQLite needs no server and uses the same engine.
        WSGISESSION={**readme["WSGISESSION"], "store": f"sqlite:///{tmp_path}/django.sqlite3"},
        ROOT_URLCONF=__name__,
        USE_TZ=True,
    )
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    User.objects.create_user("alice", password="wonderland-rabbit")
    client = Client()
    assert client.get("/whoami").content == b"anonymous"
    assert client.login(username="alice", password="wonderland-rabbit")
    assert client.get("/whoami").content == b"alice"
    assert (tmp_path / "django.sqlite3").is_file()


def test_the_pytest_plugin_is_found_through_its_entry_point(wsgisession_client: Any) -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "wsgisession"]
    assert plugin.value == "wsgisession.testing.pytest_plugin"

    def counter(environ: Any, start_response: Any) -> list[bytes]:
        wsgisession.session["n"] = wsgisession.session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(wsgisession.session["n"]).encode()]

    client = wsgisession_client(counter)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
