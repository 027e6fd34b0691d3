"""Hostile input against every server-side store (LRU, SQLite, Redis), through the Client.

The cookie of a server-side session is a signed ``id.created``. Whatever an attacker
puts there — an id with CR/LF, NUL, ``../``, 10 KB of it, the wrong characters,
signed with the real key or not — never reaches the store: the request gets a fresh
session, nothing is created, and the store is only ever asked for keys that are
SHA-256 hex digests. A pickle, signed as the cookie or planted straight into a
Redis hash or an SQLite row, is never unpickled. A session id in the query string,
a form field or another header is not the session.

The basic cases (unknown ids, 10,000 random ids, corrupt records, hashed keys) are
in ``tests/stores/test_server_stores.py``; these are what an attacker tries next.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import sqlite3
import time
from pathlib import Path

import pytest
from werkzeug.http import parse_cookie
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

from wsgisession import (
    LRUStore,
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
)
from wsgisession import session as the_session
from wsgisession.stores._postgres_sql import encode_value as _encode

from ..conftest import (
    SECRET,
    drop_store,
    postgres_sql,
    record_count,
    redis_pack,
    redis_record_name,
    redis_test_store,
    redis_unpack,
    text_app,
)
from .test_cookie_store import Plant

PURPOSE = "wsgisession.session:session"
STORE_KEY = re.compile(r"[0-9a-f]{64}")


def view(request: Request) -> str:
    if request.path == "/login":
        the_session["user"] = request.args.get("user", "alice")
    elif request.path == "/write":
        the_session["hits"] = the_session.get("hits", 0) + 1
    return repr(the_session.get("user"))


class Spy:
    """Records every key the middleware asks the store to load."""

    def __init__(self, store: ServerSessionStore) -> None:
        self.keys: list[str] = []
        self._load = store.load
        store.load = self  # type: ignore[method-assign]

    def __call__(self, key: str) -> dict[str, bytes] | None:
        self.keys.append(key)
        return self._load(key)


def middleware(store: ServerSessionStore) -> SessionMiddleware:
    return SessionMiddleware(text_app(view), secret_key=SECRET, store=store)


def send(mw: SessionMiddleware, cookie_header: str, path: str = "/") -> TestResponse:
    """A request with this exact ``Cookie`` header (its bytes as latin-1, as WSGI has it)."""
    client = Client(mw, use_cookies=False)
    return client.get(path, environ_overrides={"HTTP_COOKIE": cookie_header})


def sign(mw: SessionMiddleware, value: bytes) -> str:
    """*value* validly signed as a session cookie, as WSGI hands the header over."""
    return mw.keyring.signer(PURPOSE).sign(value).decode("latin-1")


def cookie_of(response: TestResponse) -> str:
    (header,) = response.headers.getlist("Set-Cookie")
    return parse_cookie(header.split(";", 1)[0])["session"]


def session_id(mw: SessionMiddleware, cookie: str) -> bytes:
    return mw.keyring.signer(PURPOSE).unsign(cookie).value.partition(b".")[0]


@pytest.fixture(autouse=True)
def _capture_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wsgisession")


# -- hostile ids ----------------------------------------------------------------------

GOOD_ID = b"A" * 43
HOSTILE_IDS = [
    pytest.param(b"abc\r\nSet-Cookie: session=planted", id="crlf"),
    pytest.param(b"\r\n" + GOOD_ID, id="crlf-prefix"),
    pytest.param(GOOD_ID[:20] + b"\x00" + GOOD_ID[21:], id="nul-inside"),
    pytest.param(GOOD_ID + b"\x00", id="nul-suffix"),
    pytest.param(b"../../../../etc/passwd", id="dot-dot-slash"),
    pytest.param(b"../" * 14 + b"A", id="dot-dot-slash-43-chars"),
    pytest.param(b"A" * 10_240, id="10kb"),
    pytest.param(b"A" * 42, id="one-short"),
    pytest.param(b"A" * 44, id="one-long"),
    pytest.param(b"+/" * 21 + b"A", id="standard-base64-charset"),
    pytest.param(b"A" * 42 + b"=", id="padding"),
    pytest.param(b"A" * 42 + b" ", id="space"),
    pytest.param("é".encode() * 21 + b"A", id="utf8-non-ascii"),
    pytest.param(b"\xff" * 43, id="not-utf8"),
    pytest.param(b"*", id="glob-star"),
    pytest.param(b"wsgisession:*", id="redis-pattern"),
    pytest.param(b"' OR '1'='1", id="sql-quote"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("sid", HOSTILE_IDS)
def test_a_hostile_session_id_never_reaches_the_store(
    server_store: ServerSessionStore, sid: bytes, signed: bool
) -> None:
    mw = middleware(server_store)
    spy = Spy(server_store)
    value = b"%s.%d" % (sid, int(time.time()))
    cookie = sign(mw, value) if signed else value.decode("latin-1")

    response = send(mw, f"session={cookie}")
    assert (response.status_code, response.text) == (200, "None")
    assert spy.keys == []
    assert record_count(server_store) == 0

    # A request that writes gets a new, random id of its own, never the hostile one.
    response = send(mw, f"session={cookie}", "/write")
    assert response.status_code == 200
    new_id = session_id(mw, cookie_of(response))
    assert re.fullmatch(rb"[A-Za-z0-9_-]{43}", new_id)
    assert new_id != sid
    assert record_count(server_store) == 1
    assert all(STORE_KEY.fullmatch(key) for key in spy.keys)


def test_a_raw_cookie_header_with_crlf_and_nul_is_a_fresh_session(
    server_store: ServerSessionStore,
) -> None:
    mw = middleware(server_store)
    good = cookie_of(Client(mw).get("/login"))
    for header in [
        f"session={good}\r\nX-Injected: 1",
        f"session={good}\x00",
        f"session=\x00{good}",
        f"session={good[:-1]}\r\n",
    ]:
        assert send(mw, header).text == "None", repr(header)
    assert send(mw, f"session={good}").text == "'alice'"  # the control
    assert record_count(server_store) == 1


def test_the_store_is_only_ever_asked_for_sha256_keys(server_store: ServerSessionStore) -> None:
    mw = middleware(server_store)
    spy = Spy(server_store)
    client = Client(mw)
    client.get("/login")
    client.get("/write")
    client.get("/")
    assert len(spy.keys) == 2
    assert all(STORE_KEY.fullmatch(key) for key in spy.keys)
    sid = session_id(mw, cookie_of(Client(mw).get("/login")))
    assert sid.decode() not in spy.keys


# -- pickles ----------------------------------------------------------------------------


def armed(tmp_path: Path) -> Path:
    """A path, after proving that unpickling a Plant really creates its file."""
    proof = tmp_path / "proof-the-payload-works"
    pickle.loads(pickle.dumps(Plant(proof))).close()  # noqa: S301 - our own, to arm the test
    assert proof.exists()
    return tmp_path / "planted"


PROTOCOLS = [0, 2, pickle.HIGHEST_PROTOCOL]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_validly_signed_pickle_as_the_cookie_is_never_executed(
    server_store: ServerSessionStore,
    protocol: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    planted = armed(tmp_path)
    mw = middleware(server_store)
    spy = Spy(server_store)
    payload = pickle.dumps(Plant(planted), protocol=protocol)
    response = send(mw, f"session={sign(mw, payload)}")
    assert (response.status_code, response.text) == (200, "None")
    assert "ignored an invalid session cookie" in caplog.text
    assert not planted.exists()
    assert spy.keys == []


def plant(store: ServerSessionStore, key: str, fields: dict[str, bytes]) -> None:
    """Write *fields* into the record under *key* from outside the store's API."""
    if isinstance(store, RedisStore):
        name = redis_record_name(store, key)
        record = redis_unpack(store.client.get(name))
        store.client.set(name, redis_pack({**record, **fields}), keepttl=True)
    elif isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO wsgisession_fields (key, field, value) VALUES (?, ?, ?)",
                [(key, field, value) for field, value in fields.items()],
            )
        finally:
            conn.close()
    elif isinstance(store, PostgresStore):
        # In the store's own format (a value that is not text is stored as base64).
        data = json.dumps({field: _encode(value) for field, value in fields.items()})
        update = f"UPDATE {store.qualified} SET data = data || %s::jsonb WHERE key = %s"  # noqa: S608
        postgres_sql(update, data, key)
    else:
        assert isinstance(store, LRUStore)
        store._entries[key][1].update(fields)


@pytest.mark.parametrize("field", ["user", "extra"], ids=["replacing-a-value", "added-field"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_pickle_planted_in_a_stored_record_is_never_executed(
    server_store: ServerSessionStore,
    protocol: int,
    field: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    planted = armed(tmp_path)
    mw = middleware(server_store)
    client = Client(mw)
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    key = hashlib.sha256(session_id(mw, cookie.value)).hexdigest()
    plant(server_store, key, {field: pickle.dumps(Plant(planted), protocol=protocol)})

    response = client.get("/")
    assert (response.status_code, response.text) == (200, "None")
    assert "corrupt session record" in caplog.text
    assert not planted.exists()
    assert server_store.load(key) is None  # the poisoned record is gone


def test_a_pickle_planted_as_a_whole_redis_value_is_never_executed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = redis_test_store()
    try:
        planted = armed(tmp_path)
        mw = middleware(store)
        client = Client(mw)
        client.get("/login")
        cookie = client.get_cookie("session")
        assert cookie is not None
        key = hashlib.sha256(session_id(mw, cookie.value)).hexdigest()
        name = redis_record_name(store, key)
        store.client.set(name, pickle.dumps(Plant(planted)))  # not a record
        response = client.get("/")
        assert (response.status_code, response.text) == (200, "None")
        assert not planted.exists()
        assert store.client.exists(name) == 0
    finally:
        drop_store(store)


# -- where the id may come from -------------------------------------------------------------


def test_a_session_id_in_the_query_string_form_or_another_header_is_ignored(
    server_store: ServerSessionStore,
) -> None:
    mw = middleware(server_store)
    mallory = cookie_of(Client(mw).get("/login?user=mallory"))
    sid = session_id(mw, mallory).decode()
    client = Client(mw, use_cookies=False)
    for response in [
        client.get(f"/?session={mallory}"),
        client.get(f"/?session_id={sid}&sid={sid}&session={sid}"),
        client.post("/", data={"session": mallory}),
        client.get("/", headers={"X-Session": mallory, "Authorization": f"Bearer {mallory}"}),
    ]:
        assert (response.status_code, response.text) == (200, "None")
    # A request that writes gets its own session, not mallory's (no fixation by URL).
    response = client.get(f"/write?session={mallory}")
    assert session_id(mw, cookie_of(response)).decode() != sid


def test_a_well_signed_id_the_server_never_issued_is_not_adopted(
    server_store: ServerSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Fixation with the key leaked: the attacker signs an id of their choosing.
    mw = middleware(server_store)
    chosen = b"F" * 43
    cookie = sign(mw, b"%s.%d" % (chosen, int(time.time())))
    response = send(mw, f"session={cookie}", "/login?user=victim")
    issued = session_id(mw, cookie_of(response))
    assert issued != chosen
    assert server_store.load(hashlib.sha256(chosen).hexdigest()) is None
    assert send(mw, f"session={cookie}").text == "None"
