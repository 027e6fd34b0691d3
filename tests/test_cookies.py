"""Signed single cookies and cookie options."""

from __future__ import annotations

import base64
import datetime
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.datastructures import Headers
from werkzeug.http import dump_cookie
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from wsgisession import CookieOptions, get_signed_cookie, session, set_signed_cookie
from wsgisession.cookies import MAX_COOKIE_AGE
from wsgisession.errors import ConfigurationError, SessionTooLarge
from wsgisession.signing import Keyring, Unsigned
from wsgisession.stores.base import ClientSessionStore, CookieCodec

from .conftest import SECRET, Clock, session_client


def theme_view(request: Request) -> Response:
    if request.path == "/set":
        response = Response("set")
        set_signed_cookie(response.headers, "prefs", {"theme": "dark", "since": TODAY})
        return response
    return Response(repr(get_signed_cookie(request.environ, "prefs", default="none")))


TODAY = datetime.date(2026, 11, 23)


def test_signed_cookie_round_trips_with_its_type_inside_the_middleware() -> None:
    client = session_client(theme_view)
    client.get("/set")
    assert client.get("/").text == repr({"theme": "dark", "since": TODAY})


def test_signed_cookie_has_safe_default_attributes() -> None:
    response = session_client(theme_view).get("/set")
    header = response.headers["Set-Cookie"]
    assert header.startswith("prefs=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in header.split("; ")


def test_signed_cookie_is_secure_on_https() -> None:
    response = session_client(theme_view).get("/set", base_url="https://localhost/")
    assert "Secure" in response.headers["Set-Cookie"].split("; ")


def test_changed_signed_cookie_reads_as_default(caplog: pytest.LogCaptureFixture) -> None:
    client = session_client(theme_view)
    client.get("/set")
    value = client.get_cookie("prefs")
    assert value is not None
    client.set_cookie("prefs", value.value[:-2] + "xx")
    assert client.get("/").text == "'none'"
    assert "prefs" in caplog.text


def test_signed_cookie_from_another_secret_key_reads_as_default() -> None:
    client = session_client(theme_view)
    client.get("/set")
    cookie = client.get_cookie("prefs")
    assert cookie is not None
    other = session_client(theme_view, secret_key="another-secret-" + "z" * 32)
    other.set_cookie("prefs", cookie.value)
    assert other.get("/").text == "'none'"


def test_one_signed_cookie_cannot_be_renamed_into_another() -> None:
    headers: list[tuple[str, str]] = []
    set_signed_cookie(headers, "role", "user", secret_key=SECRET)
    value = headers[0][1].split(";", 1)[0].split("=", 1)[1]
    environ = {"HTTP_COOKIE": f"admin={value}"}
    assert get_signed_cookie(environ, "admin", secret_key=SECRET) is None


def test_max_age_refuses_an_old_signed_cookie(clock: Clock) -> None:
    headers: list[tuple[str, str]] = []
    set_signed_cookie(headers, "token", 42, secret_key=SECRET)
    environ = {"HTTP_COOKIE": headers[0][1].split(";", 1)[0]}
    clock.advance(100)
    assert get_signed_cookie(environ, "token", secret_key=SECRET, max_age=200) == 42
    assert get_signed_cookie(environ, "token", secret_key=SECRET, max_age=50) is None


def test_set_signed_cookie_accepts_a_plain_header_list_and_options() -> None:
    headers: list[tuple[str, str]] = []
    set_signed_cookie(
        headers, "n", 1, secret_key=SECRET, max_age=60, path="/app", samesite="Strict"
    )
    ((name, value),) = headers
    assert name == "Set-Cookie"
    assert "Max-Age=60" in value
    assert "Path=/app" in value
    assert "SameSite=Strict" in value


def test_set_signed_cookie_accepts_werkzeug_headers() -> None:
    headers = Headers()
    set_signed_cookie(headers, "n", 1, secret_key=SECRET)
    assert headers["Set-Cookie"].startswith("n=")


def test_signed_cookie_too_large_is_an_error() -> None:
    with pytest.raises(SessionTooLarge, match="'big' cookie"):
        set_signed_cookie([], "big", "x" * 5000, secret_key=SECRET)


def test_signed_cookie_outside_a_middleware_needs_a_key() -> None:
    with pytest.raises(RuntimeError, match="secret_key="):
        set_signed_cookie([], "n", 1)
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        get_signed_cookie({"HTTP_COOKIE": "n=abc"}, "n")


def test_plain_wsgi_app_uses_the_header_list() -> None:
    from wsgisession import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen = get_signed_cookie(environ, "visited", default=False)
        headers = [("Content-Type", "text/plain")]
        set_signed_cookie(headers, "visited", True)
        start_response("200 OK", headers)
        return [str(seen).encode()]

    client = Client(SessionMiddleware(app, secret_key=SECRET))
    assert client.get("/").text == "False"
    assert client.get("/").text == "True"


# -- CookieOptions ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "a,b", "caf\u00e9", "a\tb", "a\x7f"])
def test_invalid_cookie_names_are_configuration_errors(name: str) -> None:
    with pytest.raises(ConfigurationError, match="cookie name"):
        CookieOptions(name=name)


def test_host_prefix_forces_secure_and_refuses_a_domain_or_path() -> None:
    assert CookieOptions(name="__Host-id").secure is True
    with pytest.raises(ConfigurationError, match="Domain"):
        CookieOptions(name="__Host-id", domain="example.com")
    with pytest.raises(ConfigurationError, match="Path"):
        CookieOptions(name="__Host-id", path="/app")


def test_secure_prefix_and_samesite_none_force_secure() -> None:
    assert CookieOptions(name="__Secure-id").secure is True
    assert CookieOptions(samesite="None").secure is True
    with pytest.raises(ConfigurationError):
        CookieOptions(samesite="None", secure=False)


def test_partitioned_cookies_carry_the_attribute_and_are_always_secure() -> None:
    options = CookieOptions(partitioned=True)
    assert options.secure is True
    header = options.set_header("value", {"wsgi.url_scheme": "http"})
    assert "Partitioned" in header
    assert "Secure" in header
    assert "Partitioned" in options.delete_header({})
    assert "Partitioned" not in CookieOptions().set_header("value", {})
    with pytest.raises(ConfigurationError, match="Partitioned"):
        CookieOptions(partitioned=True, secure=False)


def test_samesite_is_normalised() -> None:
    assert CookieOptions(samesite="strict").samesite == "Strict"
    with pytest.raises(ConfigurationError, match="samesite"):
        CookieOptions(samesite="sometimes")


def _in_one_second(make: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """``make()``, run again until it ran within one wall-clock second (Expires)."""
    while True:
        second = int(time.time())
        made = make()
        if int(time.time()) == second:
            return made


# Every kind of attribute set_header's cached template stands for: the name's
# prefixes and characters, each Max-Age (the cookie's own, an override, none, over
# the 400-day cap), Path, Domain, Secure (fixed, or from the request's scheme),
# HttpOnly, SameSite and Partitioned.
TEMPLATE_CASES = itertools.product(
    ["session", "__Host-session", "__Secure-session", "a!#$%&'*+-.^_`|~1"],
    [-1, None, 0, 3600, MAX_COOKIE_AGE + 1],
    ["/", "/app/x-y"],
    [None, "example.com"],
    [None, True, False],
    [True, False],
    ["Lax", "Strict", "None", None],
    [False, True],
)


def _ours_and_werkzeugs(
    options: CookieOptions, value: str, scheme: str, max_age: int | None, plain: bool
) -> tuple[str, str]:
    """set_header's Set-Cookie for *value* and dump_cookie's, in the same second."""
    wanted = options.max_age if max_age == -1 else max_age
    secure = options.secure if options.secure is not None else scheme == "https"

    def both() -> tuple[str, str]:
        ours = options.set_header(value, {"wsgi.url_scheme": scheme}, max_age=max_age, plain=plain)
        theirs = dump_cookie(
            options.name,
            value,
            max_age=None if wanted is None else min(wanted, MAX_COOKIE_AGE),
            path=options.path,
            domain=options.domain,
            secure=secure,
            httponly=options.httponly,
            samesite=options.samesite,
            partitioned=options.partitioned,
            max_size=0,
        )
        return ours, theirs

    return _in_one_second(both)


def test_the_set_cookie_template_is_dump_cookie_byte_for_byte() -> None:
    # set_header formats the attributes once a second and puts each value between
    # them: for every kind of attribute, with the template made and then reused,
    # the header must be werkzeug's dump_cookie's for that value at that moment.
    checked = 0
    for name, max_age, path, domain, secure, httponly, samesite, partitioned in TEMPLATE_CASES:
        try:
            options = CookieOptions(
                name=name,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
                partitioned=partitioned,
            )
        except ConfigurationError:
            continue  # a combination browsers refuse, refused here too
        for scheme, plain in itertools.product(["http", "https"], [True, False]):
            for value in ("WzE3MDAsey.J9XQ.aGk", "x-y_z.0", ""):  # made, then reused
                ours, theirs = _ours_and_werkzeugs(options, value, scheme, max_age, plain)
                assert ours == theirs, (name, max_age, path, domain, secure, scheme)
            checked += 1
    assert checked > 500


class _SpacedCodec(CookieCodec):
    """A third-party codec whose values are not cookie-safe (plain_output stays False)."""

    def encode(self, payload: bytes) -> str:
        return "v 1;" + base64.urlsafe_b64encode(payload).decode()

    def decode(self, value: str) -> Unsigned:
        if not value.startswith("v 1;"):
            raise ValueError("not ours")
        return Unsigned(base64.urlsafe_b64decode(value[4:]), int(time.time()), False)


class _SpacedStore(ClientSessionStore):
    def bind(self, keyring: Keyring, purpose: str) -> CookieCodec:
        return _SpacedCodec()


def test_a_codec_that_does_not_promise_plain_output_is_quoted_by_werkzeug() -> None:
    def view(request: Request) -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = session_client(view, store=_SpacedStore())
    (header,) = client.get("/").headers.getlist("Set-Cookie")
    assert header.startswith('session="v 1\\073')  # dump_cookie quoted it
    assert client.get("/").text == "2"
