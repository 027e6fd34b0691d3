"""The session cookie's fast path reads exactly what werkzeug's parse_cookie reads.

``wsgisession.cookies.request_cookie_values`` answers the common case (a plain
``Cookie`` header) without werkzeug, for speed, and hands anything unusual to
werkzeug. A difference would be a security bug (a cookie werkzeug would not see,
or two cookies seen as one), so the two are compared on thousands of generated
headers, the hostile pieces of ``tests/security`` included, for several names.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.http import parse_cookie
from werkzeug.test import Client

from wsgisession import SessionMiddleware, _cookie_header, session
from wsgisession._cookie_header import expect_cookie
from wsgisession.cookies import request_cookie_values, request_cookies

from .conftest import SECRET
from .security.test_properties import SEPARATORS, as_wsgi

NAMES = ["session", "__Host-session", "sid", "a", "my.app-session_1"]

MANY = settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def werkzeug_values(raw: str, name: str) -> list[str]:
    """What the middleware read before the fast path: werkzeug, via request_cookies."""
    return request_cookies({"HTTP_COOKIE": raw}).getlist(name)


def pieces() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=20),  # any Unicode, as UTF-8 on the wire
        st.binary(max_size=20).map(lambda b: b.decode("latin-1")),  # any bytes
        st.sampled_from([*SEPARATORS, "\t", "\x1c", "\x0b", "\xa0", "\u2028", " = ", "  "]),
        st.sampled_from(NAMES),
        st.sampled_from([f"{n}=" for n in NAMES] + [f" {n} = " for n in NAMES]),
        st.sampled_from(["=session=", "Session=", "session =", "ses sion=", '"session"=']),
        st.text(alphabet=B64, min_size=1, max_size=60),
        st.text(alphabet=B64 + "= ;", max_size=60),
    )


@MANY
@given(parts=st.lists(pieces(), max_size=20), name=st.sampled_from(NAMES))
@example(parts=["session=abc.def"], name="session")
@example(parts=["a=1; session=x; session=y"], name="session")
@example(parts=["session = x y"], name="session")
@example(parts=['session="quoted"'], name="session")
@example(parts=["session=x\\y"], name="session")
@example(parts=["session=\x00"], name="session")
@example(parts=["\tsession=x"], name="session")
@example(parts=["session=x;;session"], name="session")
@example(parts=["=session=x"], name="session")
@example(parts=["xsession=1; sessionx=2"], name="session")
def test_the_fast_path_reads_what_werkzeug_reads(parts: list[str], name: str) -> None:
    raw = as_wsgi("".join(parts))
    assert request_cookie_values({"HTTP_COOKIE": raw}, name) == werkzeug_values(raw, name)


@MANY
@given(
    cookies=st.lists(
        st.tuples(
            st.sampled_from([*NAMES, "theme", "csrftoken", "_ga"]),
            st.text(alphabet=B64 + "=", max_size=80),
            st.sampled_from(["", " ", "  "]),
        ),
        max_size=8,
    ),
    separator=st.sampled_from([";", "; ", " ;", " ; "]),
    name=st.sampled_from(NAMES),
)
def test_the_fast_path_reads_what_werkzeug_reads_in_browser_shaped_headers(
    cookies: list[tuple[str, str, str]], separator: str, name: str
) -> None:
    # What browsers actually send: name=value pairs, the fast path's own ground.
    raw = separator.join(f"{pad}{key}{pad}={pad}{value}{pad}" for key, value, pad in cookies)
    assert request_cookie_values({"HTTP_COOKIE": raw}, name) == werkzeug_values(raw, name)
    if raw:
        assert werkzeug_values(raw, name) == parse_cookie(raw).getlist(name)


@pytest.mark.parametrize("header", [None, "", "other=1"])
def test_no_session_cookie_reads_as_none(header: str | None) -> None:
    environ = {} if header is None else {"HTTP_COOKIE": header}
    assert request_cookie_values(environ, "session") == []


def test_cookies_already_parsed_for_this_request_are_reused() -> None:
    environ = {"HTTP_COOKIE": "session=a"}
    request_cookies(environ)
    environ["HTTP_COOKIE"] = "session=b"  # a later change is not seen, as before
    assert request_cookie_values(environ, "session") == ["a"]


TOKEN_NAMES = [*NAMES, "a!#$%&'*+-.^_`|~1", "__Secure-x"]


@MANY
@given(
    name=st.sampled_from(TOKEN_NAMES),
    value=st.text(alphabet=B64, max_size=700),
    other=st.text(alphabet=B64, min_size=1, max_size=3),
)
@example(name="session", value="", other="x")
@example(name="session", value="a" * 43, other="b")
def test_a_cookie_a_response_set_reads_back_as_werkzeug_reads_it(
    name: str, value: str, other: str
) -> None:
    # A response set the cookie (CookieOptions.set_header with a plain value): the
    # header "name=value" the client sends back alone is answered without parsing,
    # and the answer is werkzeug's.
    expect_cookie(name, value)
    raw = f"{name}={value}"
    expected = _cookie_header._SENT[name].get(value[-_cookie_header._TAIL :])
    assert expected == (raw, value)
    assert request_cookie_values({"HTTP_COOKIE": raw}, name) == werkzeug_values(raw, name)
    assert werkzeug_values(raw, name) == [value]
    # Headers that end like it but are not it are parsed, as any other header.
    for near in (f"{other}={value}", f"{name}={other}{value}", f"x=1; {raw}", f"{raw};"):
        assert request_cookie_values({"HTTP_COOKIE": near}, name) == werkzeug_values(near, name)


def test_a_session_cookie_the_middleware_set_is_read_back_without_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [str(session["n"]).encode()]

    parsed: list[str] = []
    parse = _cookie_header._cookie_values
    monkeypatch.setattr(
        _cookie_header,
        "_cookie_values",
        lambda environ, header, name: parsed.append(header) or parse(environ, header, name),
    )
    client = Client(SessionMiddleware(app, secret_key=SECRET))
    assert [client.get("/").text for _ in range(4)] == ["1", "2", "3", "4"]
    assert parsed == []
