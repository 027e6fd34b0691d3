"""RedisStore against real Redis servers: layout, round trips, outages, bad records.

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
    drop_store,
    redis_test_store,
    require_redis,
    text_app,
)
from tests.servers import PrivateRedis, free_port, start_private_redis
from tests.services import in_ci
from wsgisession import RedisStore, SessionMiddleware, session, store_from_url
from wsgisession.errors import ConfigurationError, StoreUnavailable
from wsgisession.stores.redis import _SAVE_SHA

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


def test_each_session_is_one_hash_under_the_prefix_with_the_idle_ttl(store: RedisStore) -> None:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600)
    client = Client(mw)
    client.get("/login")
    client.get("/add?item=book")
    name = store.prefix + hashlib.sha256(signed_id(mw, client).encode()).hexdigest()
    assert list(store.client.scan_iter(match=store.prefix + "*")) == [name.encode()]
    assert store.client.type(name) == b"hash"
    assert store.client.hgetall(name) == {b"user": b'"ann"', b"cart": b'["book"]'}
    assert 3590 <= store.client.ttl(name) <= 3600


def test_touch_resets_the_ttl(store: RedisStore) -> None:
    store.save("k", {"x": b"1"}, (), 100, create=True)
    store.touch("k", 5000)
    assert 4990 <= store.client.ttl(store.prefix + "k") <= 5000


def test_a_key_that_is_not_a_hash_is_deleted_and_gives_a_fresh_session(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(mw)
    client.get("/login")
    name = store.prefix + hashlib.sha256(signed_id(mw, client).encode()).hexdigest()
    store.client.set(name, "something else wrote here")
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "None None")
    assert "corrupt" in caplog.text
    assert store.client.exists(name) == 0


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
    assert client.commands == ["HGETALL"]


def test_saving_a_changed_session_is_one_round_trip(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    assert client.commands == ["EVALSHA"]  # a new session: nothing to load
    client.commands.clear()
    app.get("/add?item=book")
    assert client.commands == ["HGETALL", "EVALSHA"]


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
    assert client.commands == ["HGETALL", "EXPIRE", "HGETALL"]


def test_logout_deletes_the_hash_in_one_round_trip(
    counted: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counted
    app = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
    app.get("/login")
    client.commands.clear()
    app.get("/logout")
    assert client.commands == ["HGETALL", "DEL"]
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
    assert client.hgetall(store.prefix + "k") == {b"x": b"1"}
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
