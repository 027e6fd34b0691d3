"""Signed cookies and cookie attributes against tossing and injection, and the demo's
key file (issue 16, items 9, 10 and 11)."""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import CookieOptions, SessionMiddleware, get_signed_cookie, set_signed_cookie
from wsgisession.errors import ConfigurationError

from ..conftest import SECRET, text_app

ROOT = Path(__file__).resolve().parent.parent.parent


def device_view(request: Request) -> Response:
    if request.path == "/set":
        response = Response("set")
        set_signed_cookie(response.headers, "device", request.args["owner"])
        return response
    return Response(repr(get_signed_cookie(request.environ, "device", default="none")))


def signed_device_cookie(client: Client, owner: str) -> str:
    header = client.get("/set", query_string={"owner": owner}).headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


# -- item 9: cookie tossing --------------------------------------------------------


def test_two_signed_cookies_of_one_name_are_both_refused(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(SessionMiddleware(text_app(device_view), secret_key=SECRET))
    attacker = signed_device_cookie(client, "attacker")
    victim = signed_device_cookie(client, "victim")
    # Without its jar, the test Client sends the Cookie header as given.
    fresh = Client(SessionMiddleware(text_app(device_view), secret_key=SECRET), use_cookies=False)
    for header in (f"device={attacker}; device={victim}", f"device={victim}; device={attacker}"):
        with caplog.at_level(logging.WARNING, logger="wsgisession"):
            response = fresh.get("/", headers={"Cookie": header})
        assert response.text == "'none'"
    assert "2 cookies of that name" in caplog.text
    alone = fresh.get("/", headers={"Cookie": f"device={victim}"})
    assert alone.text == "'victim'"


# -- item 10: attribute injection through domain and path ----------------------


@pytest.mark.parametrize(
    "domain",
    [
        "example.com; SameSite=None; Path=/x",
        "example.com\r\nSet-Cookie: evil=1",
        "example.com:8443",
        "exa mple.com",
        "",
        "a..b",
    ],
)
def test_a_domain_that_is_not_a_host_name_is_refused(domain: str) -> None:
    with pytest.raises(ConfigurationError, match="domain"):
        CookieOptions(domain=domain)
    with pytest.raises(ConfigurationError, match="domain"):
        SessionMiddleware(text_app(lambda r: ""), secret_key=SECRET, domain=domain)


def test_set_signed_cookie_with_a_request_controlled_domain_injects_nothing() -> None:
    def view(request: Request) -> Response:
        response = Response("set")
        # The review's pattern: a domain taken from the request's Host header.
        set_signed_cookie(response.headers, "device", "x", domain=request.host)
        return response

    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET))
    with pytest.raises(ConfigurationError, match="domain"):
        client.get("/", headers={"Host": "example.com; SameSite=None; Path=/x"})
    ok = client.get("/", headers={"Host": "shop.example.com"})
    assert "Domain=shop.example.com;" in ok.headers["Set-Cookie"]


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "localhost", "xn--caf-dma.fr"])
def test_a_host_name_domain_is_accepted(domain: str) -> None:
    assert "Domain=" in CookieOptions(domain=domain).set_header("v", {})


@pytest.mark.parametrize("path", ["/x; Secure", "/a b", "/x\r\n", "/\x00"])
def test_a_path_with_a_separator_or_control_character_is_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="path"):
        CookieOptions(path=path)


# -- item 11: the demo's key file ------------------------------------------------


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loose_umask() -> Any:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_the_demo_creates_its_key_file_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo.common

    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    key_file = tmp_path / ".secret_key"
    monkeypatch.setattr(demo.common, "KEY_FILE", key_file)
    key = demo.common.secret_key()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key) >= 43
    assert demo.common.secret_key() == key  # created once
    assert [p.name for p in tmp_path.iterdir()] == [".secret_key"]  # no temp file left


@pytest.mark.usefixtures("loose_umask")
def test_gunicorn_conf_creates_the_key_file_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    conf = _load(ROOT / "demo" / "gunicorn.conf.py", "demo_gunicorn_conf")
    conf.KEY_FILE = tmp_path / ".secret_key"
    conf.on_starting(None)
    assert stat.S_IMODE(conf.KEY_FILE.stat().st_mode) == 0o600


def test_a_key_file_left_world_readable_is_made_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo.common

    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    key_file = tmp_path / ".secret_key"
    key_file.write_text("an-old-key-" + "x" * 32)
    key_file.chmod(0o644)
    monkeypatch.setattr(demo.common, "KEY_FILE", key_file)
    assert demo.common.secret_key() == "an-old-key-" + "x" * 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
