"""Shared fixtures: a secret key, a controllable clock, tiny WSGI apps and every store."""

from __future__ import annotations

import base64
import functools
import os
import re
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request, Response

from wsgisession import (
    ClientSessionStore,
    CookieStore,
    LRUStore,
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
    register_converter,
    unregister_converter,
)
from wsgisession.context import _environ

from .services import require_redis, skip_or_fail

SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def text_app(view: Callable[[Request], Any]) -> Any:
    """A WSGI app whose *view* gets the werkzeug Request and returns a str or a Response."""

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        result = view(request)
        if isinstance(result, Response):
            return result
        return Response("" if result is None else str(result), content_type="text/plain")

    return app


def set_cookies(response: TestResponse) -> list[str]:
    """The ``Set-Cookie`` headers of *response*."""
    return response.headers.getlist("Set-Cookie")


def session_client(view: Callable[[Request], Any], **options: Any) -> Client:
    """A test client for *view* wrapped in SessionMiddleware(**options)."""
    options.setdefault("secret_key", SECRET)
    return Client(SessionMiddleware(text_app(view), **options))


# -- Redis: the server on 127.0.0.1:6379 or $WSGISESSION_TEST_REDIS_URL ----------
# (checked by tests/services.py, which the Flask compatibility plugin shares)

#: Every key this test run writes starts with this, so runs never see each other's
#: data and each test's keys can be deleted afterwards.
REDIS_RUN_PREFIX = f"wsgisession-test:{uuid4().hex}:"


def redis_test_store(**options: Any) -> RedisStore:
    """A RedisStore on the test server under a key prefix of its own."""
    return RedisStore(require_redis(), prefix=f"{REDIS_RUN_PREFIX}{uuid4().hex[:12]}:", **options)


# RedisStore's record, read and written as docs/stores.md describes it, without the
# store's own code (wsgisession/stores/_redis_record.py): the tests check the format.


def redis_record_name(store: RedisStore, key: str) -> str:
    """The Redis key of the record of store key *key*: ``prefix + name``."""
    if re.fullmatch(r"[0-9a-f]{64}", key):
        return store.prefix + base64.urlsafe_b64encode(bytes.fromhex(key)[:24]).decode()
    return store.prefix + key


def redis_unpack(blob: bytes) -> dict[str, bytes]:
    """The fields of a record's string: format, count, lengths, then the data."""
    code = {1: "B", 2: "H", 3: "I"}[blob[0]]
    width = struct.calcsize(code)
    (count,) = struct.unpack_from(">" + code, blob, 1)
    lengths = struct.unpack_from(f">{2 * count}{code}", blob, 1 + width)
    pos, fields = 1 + width * (1 + 2 * count), {}
    for name_size, value_size in zip(lengths[::2], lengths[1::2], strict=True):
        name = blob[pos : pos + name_size].decode()
        fields[name] = blob[pos + name_size : pos + name_size + value_size]
        pos += name_size + value_size
    assert pos == len(blob), "the lengths do not add up to the record's size"
    return fields


def redis_pack(fields: dict[str, bytes]) -> bytes:
    """*fields* as a record's string, in the smallest format that holds them."""
    parts = [part for name, value in fields.items() for part in (name.encode(), value)]
    top = max([len(fields), *map(len, parts)])
    fmt, code = (1, "B") if top < 256 else (2, "H") if top < 65536 else (3, "I")
    lengths = struct.pack(f">{1 + len(parts)}{code}", len(fields), *map(len, parts))
    return bytes([fmt]) + lengths + b"".join(parts)


#: The script 1.0 saved with (RedisStore._SAVE of 1.0): one hash per session under
#: prefix + sha256(id) in hex, a field per session key.
SAVE_1_0 = b"""
local key = KEYS[1]
if ARGV[1] == '0' and redis.call('EXISTS', key) == 0 then return 0 end
local n = tonumber(ARGV[3])
for i = 4, 2 + 2 * n, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', key, ARGV[i]) end
if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ARGV[2]) end
return 1
"""


def write_1_0(client: Any, prefix: str, key: str, fields: dict[str, bytes], ttl: int) -> str:
    """Write *fields* as 1.0's RedisStore did; the hash's name."""
    args: list[Any] = ["1", ttl, len(fields)]
    for field, value in fields.items():
        args += (field, value)
    client.eval(SAVE_1_0, 1, prefix + key, *args)
    return prefix + key


def back_to_1_0(store: RedisStore, key: str, ttl: int | None = None) -> str:
    """Turn *key*'s record into 1.0's hash: a session from before the upgrade."""
    name = redis_record_name(store, key)
    fields = redis_unpack(store.client.get(name))
    left = store.client.ttl(name) if ttl is None else ttl
    store.client.delete(name)
    return write_1_0(store.client, store.prefix, key, fields, left)


def redis_records(store: RedisStore) -> dict[str, dict[str, bytes]]:
    """Every session record *store* holds, by its Redis key: strings, and hashes of 1.0.

    The device index's keys (``user:`` hashes, ``notbefore:`` strings) and the markers
    left for 10 seconds in place of a hash of 1.0 moved to a string are left out.
    """
    client, found = store.client, {}
    for raw in client.scan_iter(match=store.prefix + "*"):
        name = raw.decode()
        rest = name[len(store.prefix) :]
        kind, of_1_0 = client.type(raw), re.fullmatch(r"[0-9a-f]{64}", rest)
        if kind == b"string" and not of_1_0 and not rest.startswith("notbefore:"):
            found[name] = redis_unpack(client.get(raw))
        elif kind == b"hash" and of_1_0:
            found[name] = {f.decode(): v for f, v in client.hgetall(raw).items()}
    return found


# -- PostgreSQL: the server on 127.0.0.1:5432 or $WSGISESSION_TEST_POSTGRES_URL -----

POSTGRES_URL = os.environ.get(
    "WSGISESSION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

#: Every table this test run creates is in this schema, dropped when the run ends.
POSTGRES_RUN_SCHEMA = f"wsgisession_test_{uuid4().hex[:12]}"


@functools.cache
def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{POSTGRES_RUN_SCHEMA}"')
    except psycopg.Error as exc:
        return (
            f"no PostgreSQL at {POSTGRES_URL} ({exc}); start one or set"
            " WSGISESSION_TEST_POSTGRES_URL"
        )
    return None


def require_postgres() -> str:
    """The test PostgreSQL URL; skips the test without one, but fails it under ``CI=true``.

    The run's schema exists once this returns.
    """
    problem = _postgres_problem()
    if problem is not None:
        skip_or_fail(problem)
    return POSTGRES_URL


def postgres_sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run *statement* on the test PostgreSQL, outside any store; its rows, if any."""
    import psycopg

    with psycopg.connect(require_postgres(), autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


def postgres_test_table() -> str:
    """A table name of its own for one test (in the run's schema)."""
    return f"s_{uuid4().hex[:12]}"


def postgres_test_store(**options: Any) -> PostgresStore:
    """A PostgresStore on the test server, with a table of its own in the run's schema."""
    options.setdefault("table", postgres_test_table())
    return PostgresStore(require_postgres(), schema=POSTGRES_RUN_SCHEMA, **options)


@pytest.fixture(scope="session", autouse=True)
def _drop_the_postgres_schema() -> Iterator[None]:
    yield
    if _postgres_problem.cache_info().currsize and _postgres_problem() is None:
        postgres_sql(f'DROP SCHEMA IF EXISTS "{POSTGRES_RUN_SCHEMA}" CASCADE')


#: The field an old id's record keeps once its session moved to a new id.
MOVED = "_wsgisession.moved"


def record_count(store: ServerSessionStore) -> int:
    """How many session records *store* holds, looked at from outside the store.

    The record an id keeps for a second (or ``rotation_grace``) after its session
    moved to a new id holds only a marker, no session data, and is not counted.
    """
    if isinstance(store, LRUStore):
        return sum(1 for key in list(store._entries) if set(store._entries[key][1]) != {MOVED})
    if isinstance(store, SQLiteStore) and store.encrypt:
        return _sealed_record_count(store)
    if isinstance(store, SQLiteStore):
        if not os.path.exists(store.path):
            return 0  # never written: the store creates its file on first use
        conn = sqlite3.connect(store.path)
        try:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM wsgisession_records AS r WHERE EXISTS"
                " (SELECT 1 FROM wsgisession_fields AS f WHERE f.key = r.key AND f.field != ?)",
                (MOVED,),
            ).fetchone()
        finally:
            conn.close()
        return int(count)
    if isinstance(store, RedisStore):
        return sum(1 for fields in redis_records(store).values() if set(fields) != {MOVED})
    if isinstance(store, PostgresStore):
        if not postgres_sql("SELECT to_regclass(%s) IS NOT NULL", store.qualified)[0][0]:
            return 0  # never used: the store creates its table on first use
        return int(
            postgres_sql(
                f"SELECT count(*) FROM {store.qualified} WHERE data - %s <> '{{}}'::jsonb",  # noqa: S608
                MOVED,
            )[0][0]
        )
    raise TypeError(f"cannot count the records of {store!r}")


def _sealed_record_count(store: SQLiteStore) -> int:
    """record_count() of an encrypting store: its field names are keyed hashes."""
    from wsgisession.stores._sealed import SealedStore

    if not os.path.exists(store.path):
        return 0
    view = store.bind([SECRET.encode()])
    assert isinstance(view, SealedStore)
    conn = sqlite3.connect(store.path)
    try:
        keys = [key for (key,) in conn.execute("SELECT key FROM wsgisession_records")]
    finally:
        conn.close()
    count = 0
    for key in keys:
        raw = store.load(key)
        if not raw:
            continue
        try:
            opened, _ = view.sealer.open_record(key, raw)
        except ValueError:
            opened = raw  # sealed under another key: a record all the same
        count += set(opened) != {MOVED}
    return count


def drop_store(store: ClientSessionStore | ServerSessionStore) -> None:
    """Delete what a test store holds outside the test's tmp_path, and close it."""
    if isinstance(store, RedisStore):
        keys = list(store.client.scan_iter(match=store.prefix + "*"))
        if keys:
            store.client.delete(*keys)
    if isinstance(store, PostgresStore):
        store.close()
        postgres_sql(f"DROP TABLE IF EXISTS {store.qualified}")
    if isinstance(store, ServerSessionStore):
        store.close()


#: Every store the shared session suite runs against, by parametrize id. Each entry
#: builds a fresh, empty store for one test (tmp_path is the test's own directory).
STORES: dict[str, Callable[[Path], ClientSessionStore | ServerSessionStore]] = {
    "cookie": lambda tmp_path: CookieStore(),
    "encrypted-cookie": lambda tmp_path: CookieStore(encrypt=True),
    "lru": lambda tmp_path: LRUStore(),
    "sqlite": lambda tmp_path: SQLiteStore(tmp_path / "sessions.sqlite3"),
    # Each value sealed (encryption at rest): the view the middleware calls is
    # another class; the store under it is SQLite's (see stores/_sealed.py).
    "encrypted-sqlite": lambda tmp_path: SQLiteStore(tmp_path / "sessions.sqlite3", encrypt=True),
    "redis": lambda tmp_path: redis_test_store(),
    "postgres": lambda tmp_path: postgres_test_store(),
}
#: The server stores whose raw records the store contract and security tests read
#: and plant; an encrypting store's are checked in tests/stores/test_encrypted_records.py.
SERVER_STORES = [name for name in STORES if not name.endswith("cookie") and "encrypted" not in name]


@pytest.fixture(params=list(STORES))
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ClientSessionStore | ServerSessionStore]:
    """Each store in turn: tests using it run once per store."""
    made = STORES[request.param](tmp_path)
    yield made
    drop_store(made)


@pytest.fixture(params=SERVER_STORES)
def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerSessionStore]:
    """Each server-side store in turn (LRU, SQLite, Redis, PostgreSQL)."""
    made = STORES[request.param](tmp_path)
    assert isinstance(made, ServerSessionStore)
    yield made
    drop_store(made)


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL URL (skips, or fails under CI, when there is none)."""
    return require_postgres()


@pytest.fixture
def redis_url() -> str:
    """The test Redis URL (skips, or fails under CI, when there is none)."""
    return require_redis()


@pytest.fixture(autouse=True)
def _no_request_bound() -> Iterator[None]:
    # A response a test never closed leaves its request bound in this thread; start
    # every test from a clean context so "unbound after close" means what it says.
    token = _environ.set(None)
    yield
    _environ.reset(token)


class Clock:
    """Stands in for time.time(), so expiry can be tested without sleeping."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


@pytest.fixture
def converters() -> Iterator[Callable[[type[Any], Callable[[str], Any]], None]]:
    """register_converter for one test: every converter it registers is undone after."""
    registered: list[type[Any]] = []

    def register(type_: type[Any], fn: Callable[[str], Any]) -> None:
        register_converter(type_, fn)
        registered.append(type_)

    yield register
    for type_ in registered:
        unregister_converter(type_)


@pytest.fixture
def count_dumps(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[object]]:
    """Call it to start counting: the values serialization.dumps is given from then on."""
    from wsgisession import serialization

    def start() -> list[object]:
        calls: list[object] = []
        dumps = serialization.dumps

        def counting(value: object, **kwargs: Any) -> str:
            calls.append(value)
            return dumps(value, **kwargs)

        monkeypatch.setattr(serialization, "dumps", counting)
        return calls

    return start
