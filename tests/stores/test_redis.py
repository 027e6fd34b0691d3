"""RedisStore against real Redis servers: layout, round trips, outages, bad records,
and the sessions 1.0 wrote (a hash each), read and moved to one string.

Most tests use the shared server (``WSGISESSION_TEST_REDIS_URL``, default
127.0.0.1:6379) under a key prefix unique to the test. The outage tests start a
private ``redis-server`` on a free port, so they can kill and pause it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import (
    REDIS_RUN_PREFIX,
    SECRET,
    Clock,
    back_to_1_0,
    drop_store,
    redis_pack,
    redis_record_name,
    redis_test_store,
    redis_unpack,
    require_redis,
    text_app,
    write_1_0,
)
from tests.servers import PrivateRedis, free_port, start_private_redis
from tests.services import in_ci
from wsgisession import RedisStore, SessionMiddleware, session, store_from_url
from wsgisession.errors import ConfigurationError, StoreUnavailable
from wsgisession.stores.redis import _OLD_SHA, _SAVE_SHA

try:
    import redis
except ImportError:
    if in_ci():
        raise
    pytest.skip("the redis package is not installed", allow_module_level=True)

PURPOSE = "wsgisession.session:session"


class CountingRedis(redis.Redis):
    """A redis-py client that records each command it sends: one per round trip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def view(request: Request) -> str:
    if request.path == "/login":
        session["user"] = "ann"
    elif request.path == "/add":
        session["cart"] = [*session.get("cart", []), request.args["item"]]
    elif request.path == "/logout":
        session.invalidate()
    elif request.path == "/untouched":
        return "no session here"
    return f"{session.get('user')} {session.get('cart')}"


def visits(request: Request) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


@pytest.fixture
def counted(redis_url: str) -> Iterator[tuple[RedisStore, CountingRedis]]:
    client = CountingRedis.from_url(redis_url)
    store = RedisStore(client=client, prefix=f"{REDIS_RUN_PREFIX}{uuid4().hex[:12]}:")
    # The first save on a server may need EVAL after a NOSCRIPT; count from after it.
    store.save("warm-up", {"x": b"1"}, (), 10, create=True)
    store.delete("warm-up")
    client.commands.clear()
    yield store, client
    drop_store(store)
    client.close()


@pytest.fixture
def store() -> Iterator[RedisStore]:
    made = redis_test_store()
    yield made
    drop_store(made)


def signed_id(mw: SessionMiddleware, client: Client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")[0].decode()


# -- layout ------------------------------------------------------------------------


def test_each_session_is_one_string_under_the_prefix_with_the_idle_ttl(store: RedisStore) -> None:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600)
    client = Client(mw)
    client.get("/login")
    client.get("/add?item=book")
    key = hashlib.sha256(signed_id(mw, client).encode()).hexdigest()
    name = redis_record_name(store, key)
    assert len(name) == len(store.prefix) + 32  # 24 bytes of the sha256, base64url
    assert list(store.client.scan_iter(match=store.prefix + "*")) == [name.encode()]
    assert store.client.type(name) == b"string"
    blob = store.client.get(name)
    assert blob == b'\x01\x02\x04\x05\x04\x08user"ann"cart["book"]'
    assert redis_unpack(blob) == {"user": b'"ann"', "cart": b'["book"]'}
    assert 3590 <= store.client.ttl(name) <= 3600


def test_touch_resets_the_ttl(store: RedisStore) -> None:
    store.save("k", {"x": b"1"}, (), 100, create=True)
    store.touch("k", 5000)
    assert 4990 <= store.client.ttl(store.prefix + "k") <= 5000


def corrupt(blob: bytes) -> Any:
    """Overwrite the record with *blob*, as something else writing there would."""

    def write(store: RedisStore, name: str) -> None:
        store.client.set(name, blob)

    return pytest.param(write, id=repr(blob[:12]))


def a_hash(store: RedisStore, name: str) -> None:
    store.client.delete(name)
    store.client.hset(name, "user", b'"mallory"')


@pytest.mark.parametrize(
    "overwrite",
    [
        pytest.param(a_hash, id="a-hash"),
        corrupt(b"something else wrote here"),  # "s": no such format
        corrupt(b'\x01\x01\x04\x05user"an'),  # cut short
        corrupt(b'\x01\x01\x04\x03user"ann"'),  # longer than its lengths say
        corrupt(b'\x07\x01\x04\x05user"ann"'),  # an unknown format byte
        corrupt(b"\x02\x00\x01\x00\x04\x00"),  # lengths and no data
        corrupt(b"\x01\x01\x02\x01\xff\xfe1"),  # a name that is not UTF-8
        corrupt(b""),
    ],
)
def test_a_record_that_is_not_ours_is_deleted_and_gives_a_fresh_session_never_a_500(
    store: RedisStore, caplog: pytest.LogCaptureFixture, overwrite: Any
) -> None:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(mw)
    client.get("/login")
    name = redis_record_name(store, hashlib.sha256(signed_id(mw, client).encode()).hexdigest())
    overwrite(store, name)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "None None")
    assert "deleted a corrupt session record" in caplog.text
    assert store.client.exists(name) == 0
    assert client.get("/login").text == "ann None"  # and the next login works


def test_a_key_that_is_not_a_hash_is_deleted_and_gives_a_fresh_session(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Under a 1.0 record's name (prefix + sha256 in hex), where a load that finds no
    # record looks for a hash: anything else there is not ours either.
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(mw)
    client.get("/login")
    key = hashlib.sha256(signed_id(mw, client).encode()).hexdigest()
    store.client.delete(redis_record_name(store, key))
    store.client.set(store.prefix + key, "something else wrote here")
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "None None")
    assert "corrupt" in caplog.text
    assert store.client.exists(store.prefix + key) == 0


def test_a_save_over_a_record_that_is_not_ours_writes_a_whole_new_one(store: RedisStore) -> None:
    # The Lua merge parses the record too: one it cannot read counts as none.
    store.client.set(store.prefix + "k", b"\x01\x09garbage")
    assert store.save("k", {"x": b"1"}, (), 60, create=False) is False
    assert store.client.get(store.prefix + "k") == b"\x01\x09garbage"  # left alone
    assert store.save("k", {"x": b"1"}, (), 60, create=True) is True
    assert store.load("k") == {"x": b"1"}


# -- round trips -----------------------------------------------------------------


def test_a_request_that_never_touches_the_session_makes_no_round_trip(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    client.commands.clear()
    app.get("/untouched")
    assert client.commands == []


def test_loading_is_one_round_trip_and_a_read_only_request_makes_no_other(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    client.commands.clear()
    assert app.get("/").text == "ann None"
    assert client.commands == ["GET"]


def test_saving_a_changed_session_is_one_round_trip(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    assert client.commands == ["EVALSHA"]  # a new session: nothing to load
    client.commands.clear()
    app.get("/add?item=book")
    assert client.commands == ["GET", "EVALSHA"]


def test_renewing_the_idle_timeout_is_one_expire_at_most_once_per_interval(
    counted: tuple[RedisStore, CountingRedis], clock: Clock
) -> None:
    store, client = counted
    mw = SessionMiddleware(
        text_app(view), secret_key=SECRET, store=store, max_age=600, refresh_interval=60
    )
    app = Client(mw)
    app.get("/login")
    clock.advance(61)
    client.commands.clear()
    app.get("/")
    app.get("/")
    assert client.commands == ["GET", "EXPIRE", "GET"]


def test_logout_deletes_the_record_in_one_round_trip(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    client.commands.clear()
    app.get("/logout")
    assert client.commands == ["GET", "DEL"]
    assert list(client.scan_iter(match=store.prefix + "*")) == []


def test_the_script_is_sent_again_after_the_server_forgot_it(
    counted: tuple[RedisStore, CountingRedis], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, client = counted
    monkeypatch.setattr("wsgisession.stores.redis._SAVE_SHA", "0" * 40)  # never cached
    assert store.save("k", {"x": b"1"}, (), 60, create=True)
    assert client.commands == ["EVALSHA", "EVAL"]
    assert store.load("k") == {"x": b"1"}


# -- the store's own connections (a store made from a URL) ---------------------------


def test_the_stores_own_connections_send_the_script_again_after_script_flush(
    private_redis: PrivateRedis,
) -> None:
    # A Redis whose script cache was emptied (SCRIPT FLUSH, a failover) answers
    # NOSCRIPT: the save must still land, not become a 503.
    store = RedisStore(private_redis.url, socket_timeout=1)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert client.get("/").text == "1"
    admin = redis.Redis.from_url(private_redis.url)
    admin.script_flush()
    assert client.get("/").text == "2"
    assert admin.script_exists(_SAVE_SHA) == [True]
    admin.close()
    store.close()


def test_an_error_reply_on_the_stores_own_connections_is_redis_pys_error(
    redis_url: str,
) -> None:
    store = redis_test_store()
    admin = redis.Redis.from_url(redis_url)
    admin.set(store.prefix + "plain", "not a hash")
    fast = store._fast()
    assert fast is not None
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        fast.call("HGETALL", store.prefix + "plain")
    with pytest.raises(redis.exceptions.NoScriptError):
        fast.call("EVALSHA", "0" * 40, 0)
    # An error reply is a whole reply: the connection goes on answering in order.
    assert fast.call("GET", store.prefix + "plain") == b"not a hash"
    admin.delete(store.prefix + "plain")
    admin.close()
    drop_store(store)


def test_threads_sharing_one_store_each_get_their_own_sessions_replies() -> None:
    # gthread workers: many threads, one store. A reply read on the wrong thread's
    # connection would hand one user another user's session.
    store = redis_test_store()
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    failures: list[str] = []

    def browse(n: int) -> None:
        client = Client(app)
        for expected in range(1, 31):
            got = client.get("/").text
            if got != str(expected):
                failures.append(f"thread {n}: visit {expected} answered {got}")
                return

    threads = [threading.Thread(target=browse, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    drop_store(store)


def test_a_redis_restart_between_requests_costs_no_503(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # The idle connection kept from the first request is dead after the restart:
    # the command is sent again on a new one instead of failing the request.
    store = RedisStore(private_redis.url, socket_timeout=1)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert client.get("/").text == "1"
    private_redis.kill()
    private_redis.start()
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        assert client.get("/").text == "2"
    assert errors_logged(caplog) == []
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_never_uses_the_parents_connections() -> None:
    # gunicorn --preload: a store used in the master before the fork. Parent and
    # child on one socket would read each other's replies.
    store = redis_test_store()
    store.save("k", {"who": b'"parent"'}, (), 60, create=True)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            fresh = store._connections is not None and store._connections._idle == []
            store.save("k", {"child": b"1"}, (), 60, create=False)
            if fresh and store.load("k") == {"who": b'"parent"', "child": b"1"}:
                status = 0
        finally:
            os.write(write, bytes([status]))
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"\x00", "the child reused the parent's connection"
    os.waitpid(pid, 0)
    os.close(read)
    assert store.load("k") == {"who": b'"parent"', "child": b"1"}
    drop_store(store)


# -- configuration and the client ----------------------------------------------------


def test_a_client_passed_in_is_used_and_left_open(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client=client, prefix=f"{REDIS_RUN_PREFIX}{uuid4().hex[:12]}:")
    store.save("k", {"x": b"1"}, (), 60, create=True)
    store.close()
    assert redis_unpack(client.get(store.prefix + "k")) == {"x": b"1"}
    client.delete(store.prefix + "k")
    client.close()


def test_the_url_prefix_option_sets_the_key_prefix() -> None:
    url = require_redis()
    prefix = f"{REDIS_RUN_PREFIX}{uuid4().hex[:12]}:"
    store = store_from_url(f"{url}?prefix={prefix}")
    assert isinstance(store, RedisStore)
    assert store.prefix == prefix
    store.save("k", {"x": b"1"}, (), 60, create=True)
    assert store.client.exists(prefix + "k") == 1
    drop_store(store)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:6379/0?sockettimeout=1", "unknown option 'sockettimeout'"),
        ("http://127.0.0.1:6379/0", "invalid Redis URL"),
    ],
)
def test_a_bad_url_is_refused_at_start_up(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisStore(url)


def test_without_the_redis_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'sessionlayer\[redis\]'"):
        RedisStore()
    with pytest.raises(ConfigurationError, match="pip install"):
        store_from_url("redis://127.0.0.1:6379/0")


# -- outages, with a private server --------------------------------------------------

# Every test using private_redis starts and stops a redis-server: slow.


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = start_private_redis(tmp_path)
    yield server
    server.stop()


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.slow
def test_redis_down_answers_503_then_service_resumes_with_nothing_lost(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(private_redis.url, socket_timeout=1)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    cookie = client.get_cookie("session")
    assert cookie is not None

    private_redis.kill()
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.mimetype == "text/plain"
    assert "try again" in response.text
    assert "Set-Cookie" not in response.headers
    assert len(errors_logged(caplog)) == 1
    assert "ConnectionError" in errors_logged(caplog)[0]

    private_redis.start()
    assert client.get("/").text == "3"  # same id, same data: the count goes on
    assert client.get_cookie("session") == cookie
    store.close()


@pytest.mark.slow
def test_redis_timing_out_answers_503_then_service_resumes_with_nothing_lost(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(private_redis.url, socket_timeout=0.2)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]

    private_redis.signal(signal.SIGSTOP)  # alive but silent, as an overloaded server
    try:
        with caplog.at_level(logging.ERROR, logger="wsgisession"):
            response = client.get("/")
    finally:
        private_redis.signal(signal.SIGCONT)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Set-Cookie" not in response.headers
    assert len(errors_logged(caplog)) == 1
    assert "TimeoutError" in errors_logged(caplog)[0]

    assert client.get("/").text == "3"
    store.close()


def test_a_request_that_never_touches_the_session_needs_no_redis() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    assert client.get("/untouched").status_code == 200
    assert client.get("/login").status_code == 503
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1"):
        store.load("k")
    store.close()


def test_the_adapter_takes_redis_pys_public_path_when_its_internals_move() -> None:
    # The one module that reads redis-py's private details (_redis_adapter) checks
    # for them: a release that renames them costs speed, never a failure.
    import redis

    from wsgisession.stores._redis_adapter import Connections

    url = require_redis()
    client = redis.Redis.from_url(url, protocol=2)
    connections = Connections(redis, lambda: client.connection_pool.make_connection())
    conn = client.connection_pool.make_connection()
    assert connections._direct(conn, b"*1\r\n$4\r\nPING\r\n") is not None
    parser, conn._parser = conn._parser, object()  # a parser without parse_error
    assert connections._direct(conn, b"*1\r\n$4\r\nPING\r\n") is None
    conn._parser = parser
    conn.disconnect()


# -- the record: one string, its memory and its limits ------------------------------


def benchmark_session(user_id: int) -> dict[str, bytes]:
    """benchmarks/common.py's session, each value serialized as benchmarks/scale.py does."""
    from benchmarks.common import SESSION
    from wsgisession import serialization

    fields = {key: serialization.dumps(value).encode("ascii") for key, value in SESSION.items()}
    return {**fields, "user_id": b"%d" % user_id}


@pytest.mark.parametrize("user_id", [9_999, 999_999])
def test_the_benchmark_session_takes_at_most_550_bytes_of_redis_memory(user_id: int) -> None:
    # MEMORY USAGE counts the key, the value and Redis's own overhead: a byte count
    # of the allocator's sizes, not a timing. The prefix has the default's length
    # ("wsgisession:", 12 characters): the key takes 44 bytes, the most that fits
    # Redis's 48-byte allocation. The 1.0 hash took 1,136 (its values over 64 bytes
    # made Redis keep it as a hash table).
    store = RedisStore(require_redis(), prefix=f"t{uuid4().hex[:10]}:")
    assert len(store.prefix) == len("wsgisession:")
    try:
        key = hashlib.sha256(b"session %d" % user_id).hexdigest()
        assert store.save(key, benchmark_session(user_id), (), 3600, create=True)
        name = redis_record_name(store, key)
        assert len(name) == 44
        assert store.client.object("encoding", name) == b"raw"
        assert store.client.memory_usage(name, samples=0) <= 550
    finally:
        drop_store(store)


def test_pack_gives_the_bytes_a_save_writes_for_a_new_record(store: RedisStore) -> None:
    # What the benchmarks' bulk fills rely on.
    record = benchmark_session(7)
    key = hashlib.sha256(b"packed").hexdigest()
    store.save(key, record, (), 60, create=True)
    name = store.prefix + RedisStore._record_name(key)
    assert name == redis_record_name(store, key)
    assert store.client.get(name) == RedisStore._pack(record) == redis_pack(record)
    store.client.set(name, RedisStore._pack({"a": b"1"}), ex=60)
    assert store.load(key) == {"a": b"1"}


def test_many_fields_large_and_binary_values_round_trip_and_merge(store: RedisStore) -> None:
    record = {f"field-{i}": bytes([i % 256]) * (i % 5) for i in range(300)}  # > 255 fields
    record["binary"] = bytes(range(256)) * 3
    record["large"] = b"\x00\xff" * 40_000  # 80,000 bytes: lengths of 4 bytes
    record["ключ"] = b"\r\n$3\r\n"
    record[""] = b""
    key = hashlib.sha256(b"big").hexdigest()
    assert store.save(key, record, (), 60, create=True)
    name = redis_record_name(store, key)
    blob = store.client.get(name)
    assert blob[0] == 3
    assert redis_unpack(blob) == record
    assert store.load(key) == record
    # Through the Lua merge: change, add, remove; the record stays in its order.
    changes = {"field-1": b"\x00" * 70_000, "field-299": b"\xfe", "new": b"\x01\x02"}
    removed = ["large", "field-5", "not-there"]
    assert store.save(key, changes, removed, 60, create=False)
    model = {**record, **changes}
    for field in removed:
        model.pop(field, None)
    assert store.load(key) == model
    assert store.client.get(name) == redis_pack(model)
    # Back to a small record: the smallest format that holds it.
    assert store.save(key, {}, [field for field in model if field != "binary"], 60, create=False)
    assert store.client.get(name) == redis_pack({"binary": record["binary"]})
    assert store.client.get(name)[0] == 2  # one value of 768 bytes
    assert store.save(key, {"binary": b"x"}, (), 60, create=False)
    assert store.client.get(name) == b"\x01\x01\x06\x01binaryx"


def test_a_record_emptied_by_a_save_is_deleted(store: RedisStore) -> None:
    assert store.save("k", {"a": b"1", "b": b"2"}, (), 60, create=True)
    assert store.save("k", {}, ["a", "b"], 60, create=False)
    assert store.client.exists(store.prefix + "k") == 0
    assert store.save("k", {"a": b"1"}, (), 60, create=False) is False  # gone: not brought back
    assert store.client.exists(store.prefix + "k") == 0


# -- records of 1.0: a hash per session, read and moved ------------------------------


def assert_retired(store: RedisStore, old: str) -> None:
    """The hash under *old* is gone: a marker that it moved is left for 10 seconds."""
    assert store.client.type(old) == b"string"
    assert store.client.get(old) == b"moved"
    assert 0 < store.client.pttl(old) <= 10_000


def logged_in(store: RedisStore, **options: Any) -> tuple[SessionMiddleware, Client, str]:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store, **options)
    client = Client(mw)
    client.get("/login")
    client.get("/add?item=book")
    return mw, client, hashlib.sha256(signed_id(mw, client).encode()).hexdigest()


def test_a_session_of_1_0_is_read_and_moved_to_one_string_with_the_time_it_had_left(
    store: RedisStore,
) -> None:
    _, client, key = logged_in(store, max_age=3600)
    old = back_to_1_0(store, key, ttl=1000)
    assert store.client.type(old) == b"hash"
    assert store.client.hgetall(old) == {b"user": b'"ann"', b"cart": b'["book"]'}

    assert client.get("/").text == "ann ['book']"
    name = redis_record_name(store, key)
    assert_retired(store, old)
    assert store.client.type(name) == b"string"
    assert redis_unpack(store.client.get(name)) == {"user": b'"ann"', "cart": b'["book"]'}
    assert 990_000 <= store.client.pttl(name) <= 1_000_000  # not the session's 3600 s
    # It is a record like any other from then on.
    assert client.get("/add?item=pen").text == "ann ['book', 'pen']"
    assert redis_unpack(store.client.get(name)) == {"user": b'"ann"', "cart": b'["book","pen"]'}
    assert 3590 <= store.client.ttl(name) <= 3600
    assert client.get("/logout").text == "None None"
    assert list(store.client.scan_iter(match=store.prefix + "*")) == []


def test_a_miss_costs_a_second_round_trip_and_a_session_of_1_0_four_once(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    assert store.load(hashlib.sha256(b"nobody").hexdigest()) is None
    assert client.commands == ["GET", "EVALSHA"]  # this layout's name, then 1.0's
    client.commands.clear()
    assert store.load("not-a-sha256") is None  # a name of its own: nothing older to look for
    assert client.commands == ["GET"]

    key = hashlib.sha256(b"before the upgrade").hexdigest()
    write_1_0(client, store.prefix, key, {"user": b'"ann"'}, 600)
    client.commands.clear()
    assert store.load(key) == {"user": b'"ann"'}
    assert client.commands == ["GET", "EVALSHA", "SET", "EVALSHA"]
    client.commands.clear()
    assert store.load(key) == {"user": b'"ann"'}
    assert client.commands == ["GET"]


def test_delete_removes_a_session_of_1_0_never_loaded(store: RedisStore) -> None:
    key = hashlib.sha256(b"old").hexdigest()
    old = write_1_0(store.client, store.prefix, key, {"user": b'"ann"'}, 600)
    store.delete(key)
    assert store.client.exists(old) == 0
    assert store.load(key) is None


class Interleaving(redis.Redis):
    """A client that runs *meanwhile* once, right after it read a record of 1.0."""

    meanwhile: Any = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = super().execute_command(*args, **options)
        if self.meanwhile is not None and args[0] == "EVALSHA" and args[1] == _OLD_SHA:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return reply


@pytest.fixture
def interleaving(redis_url: str, store: RedisStore) -> Iterator[tuple[RedisStore, Interleaving]]:
    """A second store object on *store*'s records, on an :class:`Interleaving` client."""
    client = Interleaving.from_url(redis_url)
    yield RedisStore(client=client, prefix=store.prefix), client
    client.close()


def test_a_request_that_read_a_session_of_1_0_another_moved_meanwhile_reads_its_copy(
    store: RedisStore, interleaving: tuple[RedisStore, Interleaving]
) -> None:
    # Two requests of one session right after the upgrade: both read the hash; the
    # other moves it and saves a change before this one writes its copy.
    slow, client = interleaving
    key = hashlib.sha256(b"raced").hexdigest()
    write_1_0(store.client, store.prefix, key, {"user": b'"ann"'}, 600)

    def other_request() -> None:
        assert store.load(key) == {"user": b'"ann"'}
        assert store.save(key, {"cart": b'["book"]'}, (), 600, create=False)

    client.meanwhile = other_request
    assert slow.load(key) == {"user": b'"ann"', "cart": b'["book"]'}  # not the stale hash
    assert slow.save(key, {"theme": b'"dark"'}, (), 600, create=False)
    assert store.load(key) == {"user": b'"ann"', "cart": b'["book"]', "theme": b'"dark"'}
    assert_retired(store, store.prefix + key)


def test_a_session_of_1_0_logged_out_while_a_request_moved_it_stays_logged_out(
    store: RedisStore, interleaving: tuple[RedisStore, Interleaving]
) -> None:
    slow, client = interleaving
    key = hashlib.sha256(b"logged out").hexdigest()
    write_1_0(store.client, store.prefix, key, {"user": b'"ann"'}, 600)
    client.meanwhile = partial(store.delete, key)  # a logout, between the read and the copy
    assert slow.load(key) is None
    assert list(store.client.scan_iter(match=store.prefix + "*")) == []


def test_concurrent_requests_on_a_session_of_1_0_lose_no_write(store: RedisStore) -> None:
    # The first requests after the upgrade, six tabs at once: each moves the record
    # or reads the copy another moved, and each one's change lands.
    mw = SessionMiddleware(text_app(tab_view), secret_key=SECRET, store=store)
    for round_ in range(5):
        first = Client(mw)
        first.get("/set?k=start&v=0")
        key = hashlib.sha256(signed_id(mw, first).encode()).hexdigest()
        back_to_1_0(store, key)
        cookie = first.get_cookie("session")
        assert cookie is not None
        assert six_tabs_at_once(mw, cookie.value) == [200] * 6, round_
        expected = {"start": b'"0"', **{f"tab{n}": f'"{n}"'.encode() for n in range(6)}}
        assert store.load(key) == expected, round_
        assert_retired(store, store.prefix + key)


def six_tabs_at_once(mw: SessionMiddleware, cookie: str) -> list[int]:
    """Six requests of the session *cookie*, released together; their statuses."""
    barrier = threading.Barrier(6)
    answers: list[int] = []

    def tab(n: int) -> None:
        client = Client(mw)
        client.set_cookie("session", cookie)
        barrier.wait()
        answers.append(client.get(f"/set?k=tab{n}&v={n}").status_code)

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def tab_view(request: Request) -> str:
    session[request.args["k"]] = request.args["v"]
    return "ok"


def test_revoking_a_device_removes_its_session_of_1_0_never_loaded(store: RedisStore) -> None:
    from tests.test_devices import browser, devices_of, make

    mw, _ = make(store)
    laptop, phone = browser(mw, "Laptop/1.0"), browser(mw, "Phone/2.0")
    assert laptop.get("/login?user=ann").text == "ok"
    assert phone.get("/login?user=ann").text == "ok"
    cookie = phone.get_cookie("session")
    assert cookie is not None
    sid = mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")[0]
    old = back_to_1_0(store, hashlib.sha256(sid).hexdigest())
    # The listing sees it alive (under its 1.0 name), and revoking it deletes it.
    listed = devices_of(laptop)
    assert sorted(device["ua"] for device in listed) == ["Laptop/1.0", "Phone/2.0"]
    other = next(device["handle"] for device in listed if not device["current"])
    assert laptop.get(f"/revoke?handle={other}").text == "True"
    assert store.client.exists(old) == 0
    assert phone.get("/me").text == "anon"
    assert laptop.get("/me").text == "ann"


def test_a_login_over_the_cap_ends_a_session_of_1_0(store: RedisStore) -> None:
    from tests.test_devices import browser, make

    mw, _ = make(store, max_per_user=1)
    laptop, phone = browser(mw, "Laptop/1.0"), browser(mw, "Phone/2.0")
    assert laptop.get("/login?user=ann").text == "ok"
    cookie = laptop.get_cookie("session")
    assert cookie is not None
    sid = mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")[0]
    old = back_to_1_0(store, hashlib.sha256(sid).hexdigest())
    assert phone.get("/login?user=ann").text == "ok"  # the laptop's session is ended
    assert store.client.exists(old) == 0
    assert laptop.get("/me").text == "anon"
    assert phone.get("/me").text == "ann"
