"""Property tests (hypothesis) for every store: the cookie store, signed and
encrypted, and the server-side stores (LRU, SQLite, Redis).

- Any ``Cookie`` header, however mangled, gives a 200 with either no session or the
  one session whose cookie it carries intact: never a 500, never someone else's.
- Any change to a valid cookie's characters (or an encrypted cookie's bytes) gives
  a fresh session.
- Any value of the supported types survives a round trip through the middleware
  (set in one request, read in the next) with its exact types, and reading it back
  does not re-issue the cookie (nor rewrite a server-side record).

Each store is made once per module (the ``cookie_app`` and ``server_app``
fixtures) and shared by the examples: every example uses sessions of its own, so
they never meet.

Example counts are kept modest so the suite stays fast; hypothesis keeps failing
examples in ``.hypothesis/`` and replays them first.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.http import parse_cookie
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import (
    ClientSessionStore,
    CookieStore,
    ServerSessionStore,
    SessionMiddleware,
    session,
)
from wsgisession.cookies import request_cookies
from wsgisession.errors import SessionTooLarge

from ..conftest import SECRET, SERVER_STORES, STORES, drop_store, text_app
from .forge import b64, unb64

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def view(request: Request) -> str:
    if request.path == "/set":
        session["user"] = request.args["user"]
    # Write as well as read, so the save path meets whatever was loaded.
    session["hits"] = session.get("hits", 0) + 1
    return repr(session.get("user"))


class Saves:
    """Wraps a server store's ``save`` to count the writes."""

    def __init__(self, save: Callable[..., bool]) -> None:
        self.wrapped = save
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        self.count += 1
        return self.wrapped(*args, **kwargs)


class App:
    """One store, the middleware around ``view`` and a genuine cookie per user."""

    def __init__(self, name: str, store: ClientSessionStore | ServerSessionStore) -> None:
        self.name = name
        self.store = store
        self.saves = Saves(store.save) if isinstance(store, ServerSessionStore) else None
        if self.saves is not None:
            store.save = self.saves  # type: ignore[method-assign,union-attr]
        self.middleware = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
        self._cookies: dict[str, str] = {}

    def valid_cookie(self, user: str) -> str:
        if user not in self._cookies:
            response = Client(self.middleware).get(f"/set?user={user}")
            header = response.headers["Set-Cookie"].split(";", 1)[0]
            self._cookies[user] = parse_cookie(header)["session"]
        return self._cookies[user]

    def request_with_cookie(self, raw_header: str) -> tuple[int, str]:
        client = Client(self.middleware, use_cookies=False)
        response = client.get("/", environ_overrides={"HTTP_COOKIE": raw_header})
        return response.status_code, response.text


@functools.cache
def encrypted_app() -> App:
    """The encrypted cookie store alone, for the test of its bytes (it keeps nothing)."""
    return App("encrypted-cookie", CookieStore(encrypt=True))


def make_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> App:
    tmp_path: Path = tmp_path_factory.mktemp(request.param)
    made = App(request.param, STORES[request.param](tmp_path))
    request.addfinalizer(lambda: drop_store(made.store))
    return made


@pytest.fixture(scope="module", params=["cookie", "encrypted-cookie"])
def cookie_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> App:
    """The cookie store, signed then encrypted, made once for all the examples."""
    return make_app(request, tmp_path_factory)


@pytest.fixture(scope="module", params=SERVER_STORES)
def server_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> App:
    """Each server-side store in turn, made once for all the examples."""
    return make_app(request, tmp_path_factory)


#: The server-side stores run fewer examples: the code that reads a cookie is the
#: same for all three, and what differs (the store) is exercised by every example.
SERVER = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- any Cookie header --------------------------------------------------------------

SEPARATORS = [";", "; ", "=", ",", " ", "\t", '"', "\\", "\x00", "\r\n", "\x7f", "%", "$"]


def pieces(app: App) -> st.SearchStrategy[str]:
    alice, bob = app.valid_cookie("alice"), app.valid_cookie("bob")
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


@FAST
@given(data=st.data())
def test_any_cookie_header_gives_no_session_or_the_one_it_carries(
    cookie_app: App, data: st.DataObject
) -> None:
    check_any_cookie_header(cookie_app, data)


@SERVER
@given(data=st.data())
def test_any_cookie_header_gives_no_session_or_the_one_it_carries_server_side(
    server_app: App, data: st.DataObject
) -> None:
    check_any_cookie_header(server_app, data)


def check_any_cookie_header(app: App, data: st.DataObject) -> None:
    parts = data.draw(st.lists(pieces(app), max_size=25), label="parts")
    header = "".join(parts)
    status, body = app.request_with_cookie(as_wsgi(header))
    assert status == 200
    carried = request_cookies({"HTTP_COOKIE": as_wsgi(header)}).getlist("session")
    owners = {app.valid_cookie(user): repr(user) for user in ("alice", "bob")}
    if len(carried) == 1 and carried[0] in owners:
        assert body == owners[carried[0]]
    else:
        assert body == "None"


CHARS = st.sampled_from("ABCDEFabcdef0189-_.=")


@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0), char=CHARS)
def test_any_one_character_change_to_a_valid_cookie_is_refused(
    cookie_app: App, index: int, char: str
) -> None:
    check_one_character_change(cookie_app, index, char)


@SERVER
@given(index=st.integers(min_value=0), char=CHARS)
def test_any_one_character_change_to_a_valid_cookie_is_refused_server_side(
    server_app: App, index: int, char: str
) -> None:
    check_one_character_change(server_app, index, char)


def check_one_character_change(app: App, index: int, char: str) -> None:
    value = app.valid_cookie("alice")
    index %= len(value)
    changed = value[:index] + char + value[index + 1 :]
    if changed == value:
        changed = value[:index] + value[index + 1 :]  # a deletion instead
    assert app.request_with_cookie(f"session={changed}") == (200, "None")


@settings(max_examples=150, deadline=None)
@given(index=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_any_byte_change_to_an_encrypted_cookie_is_refused(index: int, mask: int) -> None:
    app = encrypted_app()
    blob = bytearray(unb64(app.valid_cookie("alice")))
    blob[index % len(blob)] ^= mask
    assert app.request_with_cookie(f"session={b64(bytes(blob))}") == (200, "None")


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


@settings(max_examples=100, deadline=None)
@given(data=sessions)
def test_any_supported_value_round_trips_unchanged(cookie_app: App, data: dict[str, Any]) -> None:
    check_round_trip(cookie_app, data)


@SERVER
@given(data=sessions)
def test_any_supported_value_round_trips_unchanged_server_side(
    server_app: App, data: dict[str, Any]
) -> None:
    check_round_trip(server_app, data)


def check_round_trip(app: App, data: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []

    def keep(request: Request) -> str:
        if request.path == "/set":
            session.update(data)
        else:
            seen.append(dict(session))
        return "ok"

    client = Client(SessionMiddleware(text_app(keep), secret_key=SECRET, store=app.store))
    try:
        client.get("/set")
    except SessionTooLarge:
        assert app.saves is None  # only a cookie has a size limit
        return  # too big for any cookie: SessionTooLarge is the right answer
    saves = app.saves.count if app.saves is not None else 0
    response = client.get("/read")
    assert same(seen[0], data), (seen[0], data)
    # Reading every value back is not a change: the cookie is not re-issued and a
    # server-side record is not rewritten.
    assert response.headers.getlist("Set-Cookie") == []
    assert (app.saves.count if app.saves is not None else 0) == saves
