"""PostgresStore against real PostgreSQL servers: layout, round trips, expiry, gc, outages.

Most tests use the shared server (``WSGISESSION_TEST_POSTGRES_URL``, default
127.0.0.1:5432) with a table of their own in the run's schema. The outage tests
start a private ``postgres`` (initdb + pg_ctl) on a free port, so they can stop it.
The shared store suite (tests/stores/test_server_stores.py) runs on PostgresStore
too, through ``STORES`` in conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import (
    POSTGRES_RUN_SCHEMA,
    SECRET,
    drop_store,
    postgres_sql,
    postgres_test_store,
    postgres_test_table,
    text_app,
)
from tests.servers import PrivatePostgres
from tests.services import in_ci
from wsgisession import (
    PostgresStore,
    SessionMiddleware,
    login,
    session,
    sessions_of,
    store_from_url,
    track_devices,
)
from wsgisession.cli import main
from wsgisession.errors import ConfigurationError, StoreUnavailable
from wsgisession.stores.postgres import MAX_TABLE_NAME

try:
    from psycopg import pq
except ImportError:
    if in_ci():
        raise
    pytest.skip("psycopg is not installed", allow_module_level=True)

PURPOSE = "wsgisession.session:session"


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


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    made = postgres_test_store()
    yield made
    drop_store(made)


def store_key(mw: SessionMiddleware, client: Client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    sid = mw.keyring.signer(PURPOSE).unsign(cookie.value).value.partition(b".")[0]
    return hashlib.sha256(sid).hexdigest()


# -- layout ------------------------------------------------------------------------


def test_each_session_is_one_row_of_readable_jsonb_with_the_idle_expiry(
    store: PostgresStore,
) -> None:
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store, max_age=3600)
    client = Client(mw)
    client.get("/login")
    client.get("/add?item=book")
    rows = postgres_sql(
        f"SELECT key, data, extract(epoch FROM expires - now()) FROM {store.qualified}"  # noqa: S608
    )
    assert len(rows) == 1
    key, data, seconds_left = rows[0]
    assert key == store_key(mw, client)  # the SHA-256 of the id, never the id
    assert data == {"user": '"ann"', "cart": '["book"]'}
    assert 3590 <= seconds_left <= 3600


def test_table_and_expiry_index_are_created_on_first_use_in_the_named_schema(
    postgres_url: str,
) -> None:
    table = postgres_test_table()
    store = PostgresStore(postgres_url, schema=POSTGRES_RUN_SCHEMA, table=table)
    try:
        assert postgres_sql("SELECT to_regclass(%s)", store.qualified) == [(None,)]
        assert store.load("k") is None
        indexes = postgres_sql(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            POSTGRES_RUN_SCHEMA,
            table,
        )
        assert any("(expires)" in index for (index,) in indexes), indexes
    finally:
        drop_store(store)


def test_without_create_table_a_missing_table_says_to_run_migrate(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = postgres_test_table()
    url = f"{postgres_url}?schema={POSTGRES_RUN_SCHEMA}&table={table}&create_table=false"
    store = store_from_url(url)
    assert isinstance(store, PostgresStore)
    try:
        with pytest.raises(StoreUnavailable, match="run `wsgisession migrate --store URL`"):
            store.load("k")
        assert main(["migrate", "--store", url]) == 0
        assert "is ready" in capsys.readouterr().out
        assert store.save("k", {"a": b"1"}, (), 60, create=True)
        assert store.load("k") == {"a": b"1"}
        assert main(["migrate", "--store", url]) == 0  # idempotent
    finally:
        drop_store(store)


def test_any_bytes_and_any_field_name_round_trip(store: PostgresStore) -> None:
    fields = {
        "plain": b'"ann"',
        "not-utf8": b"\x80\xff",
        "nul-in-value": b"a\x00b",
        "nul\x00in\x01name\x01\x02": b"1",
        "": b"",
    }
    store.save("k", fields, (), 60, create=True)
    assert store.load("k") == fields
    store.save("k", {}, ["nul\x00in\x01name\x01\x02"], 60, create=False)
    assert "nul\x00in\x01name\x01\x02" not in (store.load("k") or {})


# -- round trips and prepared statements ----------------------------------------------


class Trace:
    """libpq's protocol trace of the store's single connection."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> Trace:
        with self.store._get_pool().connection() as conn:
            conn.pgconn.trace(self.file.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self.store._get_pool().connection() as conn:
            conn.pgconn.untrace()
        self.file.close()

    def messages(self) -> list[str]:
        """The message types the client sent since the last call."""
        self.file.seek(0)
        sent = [line.split("\t")[2].split()[0] for line in self.file.read().decode().splitlines()]
        self.file.seek(0)
        self.file.truncate()
        return [message for message in sent if message and line_from_client(message)]


def line_from_client(message: str) -> bool:
    return message in {"Parse", "Bind", "Describe", "Execute", "Sync", "Query"}


def test_load_and_save_are_one_round_trip_each_of_a_prepared_statement(
    postgres_url: str,
) -> None:
    store = postgres_test_store(max_size=1, gc_interval=None)
    try:
        # Each statement is prepared (Parse) on its first use on a connection.
        store.save("k", {"a": b"1"}, (), 60, create=True)
        store.save("k", {"a": b"2"}, (), 60, create=False)
        store.load("k")
        store.touch("k", 60)
        with Trace(store) as trace:
            store.save("k2", {"a": b"1", "b": b"2"}, (), 60, create=True)
            assert trace.messages() == ["Bind", "Describe", "Execute", "Sync"]
            store.load("k2")
            assert trace.messages() == ["Bind", "Describe", "Execute", "Sync"]
            store.save("k2", {"a": b"3"}, ["b"], 60, create=False)
            assert trace.messages() == ["Bind", "Describe", "Execute", "Sync"]
            store.touch("k2", 60)
            assert trace.messages() == ["Bind", "Describe", "Execute", "Sync"]
            # Sync ends a round trip: one each, and no statement is parsed again.
        assert store.load("k2") == {"a": b"3"}
    finally:
        drop_store(store)


def test_a_request_that_never_touches_the_session_makes_no_connection(
    postgres_url: str,
) -> None:
    store = postgres_test_store()
    try:
        client = Client(SessionMiddleware(text_app(view), secret_key=SECRET, store=store))
        assert client.get("/untouched").text == "no session here"
        assert store._pool is None
    finally:
        drop_store(store)


# -- expiry and gc ---------------------------------------------------------------------


def expire(store: PostgresStore, *keys: str) -> None:
    postgres_sql(
        f"UPDATE {store.qualified} SET expires = now() - interval '1 second'"  # noqa: S608
        " WHERE key = ANY(%s)",
        list(keys),
    )


def test_an_expired_row_is_invisible_at_once_and_never_revived(store: PostgresStore) -> None:
    store.save("k", {"a": b"1"}, (), 60, create=True)
    expire(store, "k")
    assert store.load("k") is None
    assert store.save("k", {"b": b"2"}, (), 60, create=False) is False
    store.touch("k", 60)
    assert store.load("k") is None
    # A new session under the same key starts empty: the expired fields are gone.
    store.save("k", {"b": b"2"}, (), 60, create=True)
    assert store.load("k") == {"b": b"2"}


def test_gc_deletes_expired_rows_in_batches_and_keeps_live_ones(store: PostgresStore) -> None:
    for i in range(25):
        store.save(f"old{i}", {"a": b"1"}, (), 60, create=True)
    store.save("live", {"a": b"1"}, (), 60, create=True)
    expire(store, *(f"old{i}" for i in range(25)))
    assert [store.gc(limit=10) for _ in range(4)] == [10, 10, 5, 0]
    assert postgres_sql(f"SELECT key FROM {store.qualified}") == [("live",)]  # noqa: S608


def test_gc_reads_its_batch_from_the_expiry_index_whatever_the_statistics_say(
    store: PostgresStore,
) -> None:
    # Statistics that say many rows are expired (ANALYZEd before a purge, or old)
    # made the planner read a batch by scanning the table until it had enough: the
    # batch that finds none left, the last of every wsgisession gc, read the whole
    # table, longer than the 2-second statement timeout at ten million rows (make
    # bench-scale). Taken in expiry order, a batch is read from the expiry index.
    store.migrate()
    postgres_sql(
        f"INSERT INTO {store.qualified} (key, data, expires)"  # noqa: S608
        " SELECT 'k' || i, '{\"a\": \"1\"}',"
        " now() + CASE WHEN i % 2 = 0 THEN interval '-1 hour' ELSE interval '1 hour' END"
        " FROM generate_series(1, 20000) AS i"
    )
    postgres_sql(f"ANALYZE {store.qualified}")
    plan = "\n".join(row[0] for row in postgres_sql(f"EXPLAIN {store._sql['gc']}", 1000))
    assert f"Index Scan using {store.table}_expires" in plan, plan
    assert "Filter: (expires <= now())" not in plan, plan
    assert store.gc(limit=None) == 10000
    assert store.gc(limit=1000) == 0


def test_wsgisession_gc_purges_a_postgres_store(
    store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(7):
        store.save(f"old{i}", {"a": b"1"}, (), 60, create=True)
    store.save("live", {"a": b"1"}, (), 60, create=True)
    expire(store, *(f"old{i}" for i in range(7)))
    url = f"{store.url}?schema={store.schema}&table={store.table}"
    assert main(["gc", "--store", url, "--batch-size", "3"]) == 0
    assert "purged 7 expired sessions" in capsys.readouterr().out
    assert store.load("live") == {"a": b"1"}


# -- processes -------------------------------------------------------------------------


def test_a_forked_worker_opens_its_own_pool_and_the_parent_keeps_working(
    store: PostgresStore,
) -> None:
    store.save("parent", {"a": b"1"}, (), 60, create=True)  # the parent's pool is open
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn worker forked after first use does
        code = 1
        try:
            store.save("child", {"b": b"2"}, (), 60, create=True)
            code = 0 if store.load("parent") == {"a": b"1"} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.load("child") == {"b": b"2"}
    assert store.save("parent", {"c": b"3"}, (), 60, create=False)


# -- configuration -----------------------------------------------------------------


def test_store_url_options_reach_the_store_and_the_rest_go_to_libpq() -> None:
    store = store_from_url(
        "postgres://app@db.internal:6543/sessions?schema=web&table=s1&timeout=0.5"
        "&max_size=4&gc_interval=none&sslmode=disable"
    )
    assert isinstance(store, PostgresStore)
    assert (store.schema, store.table, store.timeout, store.max_size) == ("web", "s1", 0.5, 4)
    assert store.gc_interval is None
    assert store.qualified == '"web"."s1"'
    assert "sslmode=disable" in store.url
    assert "schema" not in store.url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://h/db?table=bad-name", "plain SQL identifier"),
        ("postgresql://h/db?schema=x;drop", "plain SQL identifier"),
        ("postgresql://h/db?timeout=0", "timeout must be a number of seconds > 0"),
        ("postgresql://h/db?max_size=0", "max_size must be a whole number >= 1"),
        ("postgresql://h/db?no_such_option=1", "invalid PostgreSQL URL"),
    ],
)
def test_a_bad_postgres_url_fails_at_start_up_saying_how_to_fix_it(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store_from_url(url)


# -- outages: a private server we can stop ----------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def test_postgres_stopped_gives_503_with_retry_after_then_resumes_losing_nothing(
    private_postgres: PrivatePostgres,
) -> None:
    store = PostgresStore(private_postgres.url, timeout=1)
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(mw)
    try:
        client.get("/login")
        client.get("/add?item=book")
        cookie = client.get_cookie("session")
        assert cookie is not None

        private_postgres.stop()
        for path in ["/", "/add?item=pen", "/logout"]:
            response = client.get(path)
            assert response.status_code == 503, response.text
            assert response.headers.get("Retry-After")
            assert "Set-Cookie" not in response.headers
        assert client.get("/untouched").status_code == 200  # no session, no store

        private_postgres.start()  # the same store: no restart of the app
        # Service resumes by itself once the pool has a fresh connection.
        deadline = time.monotonic() + 30
        while (response := client.get("/")).status_code == 503:
            assert response.headers.get("Retry-After")
            assert "Set-Cookie" not in response.headers
            assert time.monotonic() < deadline, "service did not resume"
            time.sleep(0.1)
        assert (response.status_code, response.text) == (200, "ann ['book']")
        assert client.get("/add?item=pen").text == "ann ['book', 'pen']"
        after = client.get_cookie("session")
        assert after is not None
        assert after.value == cookie.value
    finally:
        store.close()


def test_a_statement_slower_than_the_timeout_gives_503_and_service_resumes(
    private_postgres: PrivatePostgres,
) -> None:
    import psycopg

    store = PostgresStore(private_postgres.url, timeout=0.5)
    mw = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(mw)
    try:
        client.get("/login")
        key = store_key(mw, client)
        with psycopg.connect(private_postgres.url) as blocker:
            # Another transaction holds the session's row: a save must wait for it.
            blocker.execute(
                f"SELECT 1 FROM {store.qualified} WHERE key = %s FOR UPDATE",  # noqa: S608
                (key,),
            )
            response = client.get("/add?item=book")
            assert response.status_code == 503
            assert response.headers.get("Retry-After")
            blocker.rollback()
        assert client.get("/add?item=book").text == "ann ['book']"
    finally:
        store.close()


def test_concurrent_saves_wait_for_each_other_and_all_land(store: PostgresStore) -> None:
    store.save("k", {"start": b"0"}, (), 60, create=True)
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        for n in range(20):
            assert store.save("k", {f"f{i}": str(n).encode()}, (), 60, create=False)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.load("k") == {"start": b"0", **{f"f{i}": b"19" for i in range(8)}}


# -- names derived from the table's (issue 25, item 11) -------------------------------


def tracking_view(request: Request) -> str:
    """/login?user= logs in (a tracked login); /devices counts the user's sessions."""
    if request.path == "/login":
        login(request.args["user"])
        return "in"
    return str(len(sessions_of()))


@pytest.mark.parametrize("length", [MAX_TABLE_NAME + 1, 60, 63])
def test_a_table_name_too_long_for_the_names_derived_from_it_is_refused(
    postgres_url: str, length: int
) -> None:
    table = "s" * length  # a valid identifier, but <table>_devices would be cut short
    with pytest.raises(ConfigurationError, match=r"table must be at most 55 characters"):
        PostgresStore(postgres_url, schema=POSTGRES_RUN_SCHEMA, table=table)
    with pytest.raises(ConfigurationError, match=r"PostgreSQL cuts names at 63"):
        store_from_url(f"{postgres_url}?schema={POSTGRES_RUN_SCHEMA}&table={table}")


def test_the_longest_table_name_allowed_tracks_logins_with_its_expiry_index(
    postgres_url: str,
) -> None:
    table = postgres_test_table().ljust(MAX_TABLE_NAME, "x")
    store = PostgresStore(postgres_url, schema=POSTGRES_RUN_SCHEMA, table=table)
    try:
        app = SessionMiddleware(
            text_app(tracking_view), secret_key=SECRET, store=store, check_store=True
        )
        track_devices(app)
        client = Client(app)
        assert client.get("/login?user=ann").status_code == 200
        assert client.get("/devices").text == "1"
        relations = postgres_sql(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace"
            " AND relname LIKE %s ORDER BY 1",
            POSTGRES_RUN_SCHEMA,
            f"{table}%",
        )
        assert [name for (name,) in relations if not name.endswith("_pkey")] == [
            table,
            f"{table}_devices",
            f"{table}_expires",
            f"{table}_stamps",
        ]
    finally:
        drop_store(store)
        for suffix in ("_devices", "_stamps"):
            postgres_sql(f'DROP TABLE IF EXISTS "{POSTGRES_RUN_SCHEMA}"."{table}{suffix}"')


@pytest.mark.parametrize("suffix", ["_expires", "_devices", "_stamps"])
def test_a_name_the_store_needs_held_by_a_view_fails_at_start_up(
    postgres_url: str, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Another program's view (or a name PostgreSQL cut short) sits where the store
    # would create its index or a table: CREATE … IF NOT EXISTS alone skips it.
    table = postgres_test_table()
    taken = f'"{POSTGRES_RUN_SCHEMA}"."{table}{suffix}"'
    postgres_sql(f"CREATE VIEW {taken} AS SELECT 1 AS one")
    store = PostgresStore(postgres_url, schema=POSTGRES_RUN_SCHEMA, table=table)
    try:
        with pytest.raises(ConfigurationError, match=rf"{table}{suffix}.* is a view instead"):
            SessionMiddleware(text_app(view), secret_key=SECRET, store=store, check_store=True)
        app = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
        with caplog.at_level("ERROR", logger="wsgisession"):
            assert Client(app).get("/login").status_code == 503
        assert f"{table}{suffix}" in caplog.text
        assert "drop or rename what holds that name" in caplog.text
    finally:
        drop_store(store)
        postgres_sql(f"DROP VIEW {taken}")
