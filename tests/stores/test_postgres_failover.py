"""PostgresStore on a primary and a streaming replica: a real failover under load.

The test starts two private PostgreSQL servers of its own on free ports (a primary
from initdb, and a replica from ``pg_basebackup -R`` of it), never the shared one,
and stops both by their postmaster's pid at the end. The store's URL names both
hosts, the replica first, with libpq's ``target_session_attrs=read-write``: libpq
skips the read-only replica, so the store writes to the primary, and after the
promotion to the former replica, with no restart.

Replication is synchronous (``synchronous_standby_names`` on the primary names the
replica, ``synchronous_commit=on``): a commit is acknowledged only once the replica
has flushed it, so every counter value a ``200`` answered is on the replica when the
primary dies. With asynchronous replication the saves of the last moments (the
replication lag) could be lost with the primary, and the test could not promise
that nothing acknowledged is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, text_app
from tests.servers import PrivatePostgres
from tests.services import in_ci
from wsgisession import PostgresStore, SessionMiddleware, session, store_from_url

try:
    import psycopg
except ImportError:
    if in_ci():
        raise
    pytest.skip("psycopg is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow

CLIENTS = 4


def visits(request: Request) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


def wait_until(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
        return conn.execute(statement.encode()).fetchall()


@dataclass
class Pair:
    primary: PrivatePostgres
    replica: PrivatePostgres

    @property
    def url(self) -> str:
        hosts = f"127.0.0.1:{self.replica.port},127.0.0.1:{self.primary.port}"
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"


@pytest.fixture
def pair() -> Iterator[Pair]:
    servers: list[PrivatePostgres] = []
    try:
        primary = PrivatePostgres()
        servers.append(primary)
        # On the command line, not in postgresql.auto.conf: the replica's copy of the
        # data directory must not wait for a standby of its own once promoted.
        primary.start("synchronous_standby_names=replica", "synchronous_commit=on")
        replica = PrivatePostgres(primary=primary)
        servers.append(replica)
        replica.start()
        wait_until(
            lambda: sql(
                primary.url,
                "SELECT 1 FROM pg_stat_replication"
                " WHERE application_name = 'replica' AND sync_state = 'sync'"
                " AND state = 'streaming'",
            ),
            "the replica to stream synchronously",
        )
        assert sql(replica.url, "SELECT pg_is_in_recovery()") == [(True,)]
        yield Pair(primary, replica)
    finally:
        for server in servers:
            server.remove()


@dataclass
class Answer:
    at: float
    status: int
    text: str
    retry_after: str | None
    set_cookie: bool


@dataclass
class Browser:
    client: Client
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def oks_since(self, moment: float) -> int:
        return sum(1 for a in list(self.answers) if a.status == 200 and a.at >= moment)


def test_failover_to_a_promoted_replica_gives_503s_loses_no_acknowledged_save_and_resumes(
    pair: Pair,
) -> None:
    store = store_from_url(pair.url + "&timeout=1")
    assert isinstance(store, PostgresStore)
    mw = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    browsers = [Browser(Client(mw)) for _ in range(CLIENTS)]
    stop = threading.Event()
    deadline = time.monotonic() + 50

    def drive(browser: Browser) -> None:
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                response = browser.client.get("/")
                browser.answers.append(
                    Answer(
                        time.monotonic(),
                        response.status_code,
                        response.text,
                        response.headers.get("Retry-After"),
                        "Set-Cookie" in response.headers,
                    )
                )
                time.sleep(0.01)
        except BaseException as exc:  # a 500: the app raised through the middleware
            browser.errors.append(exc)

    threads = [threading.Thread(target=drive, args=(b,), daemon=True) for b in browsers]
    for thread in threads:
        thread.start()
    try:
        start = time.monotonic()
        wait_until(lambda: all(b.oks_since(start) >= 5 for b in browsers), "traffic to flow")
        cookies = [b.client.get_cookie("session") for b in browsers]
        assert all(cookie is not None for cookie in cookies)

        pair.primary.stop()  # SIGQUIT to its postmaster: pg_ctl stop -m immediate
        killed = time.monotonic()
        time.sleep(1.0)  # under load, with no writable server
        pair.replica.promote()
        promoted = time.monotonic()
        # The same store object, no restart: the pool finds the new primary.
        wait_until(
            lambda: all(b.oks_since(promoted) >= 5 for b in browsers),
            "service to resume on the promoted replica",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)

    for browser, cookie in zip(browsers, cookies, strict=True):
        assert browser.errors == []
        assert {a.status for a in browser.answers} <= {200, 503}
        for answer in browser.answers:
            if answer.status == 503:
                assert answer.retry_after, answer
                assert not answer.set_cookie, answer
        after = browser.client.get_cookie("session")
        assert after is not None
        assert cookie is not None
        assert after.value == cookie.value  # never a replaced cookie
        # Every 200 is one more than the previous 200; a 503 may hide one save that
        # committed (on both servers) without its answer reaching the app. No
        # acknowledged value is ever lost: the count never goes back.
        previous, unanswered = 0, 0
        for answer in browser.answers:
            if answer.status != 200:
                unanswered += 1
                continue
            value = int(answer.text)
            assert previous + 1 <= value <= previous + 1 + min(unanswered, 1), (
                previous,
                value,
                unanswered,
            )
            previous, unanswered = value, 0
        assert browser.oks_since(promoted) >= 5

    statuses = [a.status for b in browsers for a in b.answers if killed <= a.at <= promoted]
    assert 503 in statuses  # the switch was under load
    # The sessions are on the promoted replica, now a read-write primary.
    assert sql(pair.replica.url, "SELECT pg_is_in_recovery()") == [(False,)]
    rows = sql(pair.replica.url, f"SELECT count(*) FROM {store.qualified}")  # noqa: S608
    assert rows == [(CLIENTS,)]
    # A new session starts there too, through the same store.
    assert Client(mw).get("/").text == "1"
    store.close()
