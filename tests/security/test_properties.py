"""Property tests (hypothesis) for the cookie store, signed and encrypted.

- Any ``Cookie`` header, however mangled, gives a 200 with either no session or the
  one session whose cookie it carries intact: never a 500, never someone else's.
- Any change to a valid cookie's characters (or an encrypted cookie's bytes) gives
  a fresh session.
- Any value of the supported types survives a round trip through the middleware
  (set in one request, read in the next) with its exact types, and reading it back
  does not re-issue the cookie.

Example counts are kept modest so the suite stays fast; hypothesis keeps failing
examples in ``.hypothesis/`` and replays them first.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.http import parse_cookie
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import CookieStore, SessionMiddleware, session
from wsgisession.cookies import request_cookies
from wsgisession.errors import SessionTooLarge

from ..conftest import SECRET, text_app
from .forge import b64, unb64

FORMATS = ["signed", "encrypted"]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def view(request: Request) -> str:
    if request.path == "/set":
        session["user"] = request.args["user"]
    # Write as well as read, so the save path meets whatever was loaded.
    session["hits"] = session.get("hits", 0) + 1
    return repr(session.get("user"))


@functools.cache
def middleware(fmt: str) -> SessionMiddleware:
    store = CookieStore(encrypt=fmt == "encrypted")
    return SessionMiddleware(text_app(view), secret_key=SECRET, store=store)


@functools.cache
def valid_cookie(fmt: str, user: str) -> str:
    response = Client(middleware(fmt)).get(f"/set?user={user}")
    return parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])["session"]


def request_with_cookie(fmt: str, raw_header: str) -> tuple[int, str]:
    client = Client(middleware(fmt), use_cookies=False)
    response = client.get("/", environ_overrides={"HTTP_COOKIE": raw_header})
    return response.status_code, response.text


# -- any Cookie header --------------------------------------------------------------

SEPARATORS = [";", "; ", "=", ",", " ", "\t", '"', "\\", "\x00", "\r\n", "\x7f", "%", "$"]


def pieces(fmt: str) -> st.SearchStrategy[str]:
    alice, bob = valid_cookie(fmt, "alice"), valid_cookie(fmt, "bob")
    return st.one_of(
        st.text(max_size=30),  # any Unicode, as UTF-8 on the wire
        st.binary(max_size=30).map(lambda b: b.decode("latin-1")),  # any bytes, not UTF-8
        st.sampled_from(SEPARATORS),
        st.sampled_from(["session", "session=", "__Host-session=", "=session="]),
        st.sampled_from([alice, bob, alice[:-1], alice + "=", bob.upper()]),
        st.just(f"session={alice}"),
        st.just(f"session={bob}"),
    )


def as_wsgi(header: str) -> str:
    """*header* as a WSGI server passes it: the raw bytes decoded as latin-1."""
    return header.encode("utf-8", "surrogatepass").decode("latin-1")


@pytest.mark.parametrize("fmt", FORMATS)
@FAST
@given(data=st.data())
def test_any_cookie_header_gives_no_session_or_the_one_it_carries(
    fmt: str, data: st.DataObject
) -> None:
    parts = data.draw(st.lists(pieces(fmt), max_size=25), label="parts")
    header = "".join(parts)
    status, body = request_with_cookie(fmt, as_wsgi(header))
    assert status == 200
    carried = request_cookies({"HTTP_COOKIE": as_wsgi(header)}).getlist("session")
    owners = {valid_cookie(fmt, user): repr(user) for user in ("alice", "bob")}
    if len(carried) == 1 and carried[0] in owners:
        assert body == owners[carried[0]]
    else:
        assert body == "None"


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0), char=st.sampled_from("ABCDEFabcdef0189-_.="))
def test_any_one_character_change_to_a_valid_cookie_is_refused(
    fmt: str, index: int, char: str
) -> None:
    value = valid_cookie(fmt, "alice")
    index %= len(value)
    changed = value[:index] + char + value[index + 1 :]
    if changed == value:
        changed = value[:index] + value[index + 1 :]  # a deletion instead
    assert request_with_cookie(fmt, f"session={changed}") == (200, "None")


@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_any_byte_change_to_an_encrypted_cookie_is_refused(index: int, mask: int) -> None:
    blob = bytearray(unb64(valid_cookie("encrypted", "alice")))
    blob[index % len(blob)] ^= mask
    assert request_with_cookie("encrypted", f"session={b64(bytes(blob))}") == (200, "None")


# -- any supported value round-trips ---------------------------------------------------

offsets = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
)
timezones = st.one_of(st.just(dt.UTC), st.builds(dt.timezone, offsets))
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.datetimes(),  # naive
    st.datetimes(timezones=timezones),  # aware
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    hashables,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=12,
)
sessions = st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=4)


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down (1 == 1.0 == True in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, (float, Decimal)):
        return repr(a) == repr(b)  # keeps -0.0 and Decimal('1.10') exact
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    assert isinstance(a, (str, bytes, int, bool, type(None), dt.date, UUID)), type(a)
    return bool(a == b)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=sessions)
def test_any_supported_value_round_trips_unchanged(fmt: str, data: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []

    def keep(request: Request) -> str:
        if request.path == "/set":
            session.update(data)
        else:
            seen.append(dict(session))
        return "ok"

    store = CookieStore(encrypt=fmt == "encrypted")
    client = Client(SessionMiddleware(text_app(keep), secret_key=SECRET, store=store))
    try:
        client.get("/set")
    except SessionTooLarge:
        return  # too big for any cookie: SessionTooLarge is the right answer
    response = client.get("/read")
    assert same(seen[0], data), (seen[0], data)
    # Reading every value back is not a change: the cookie is not re-issued.
    assert response.headers.getlist("Set-Cookie") == []
