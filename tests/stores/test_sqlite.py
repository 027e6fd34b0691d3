"""SQLiteStore against real database files: workers, WAL, expiry, fork, locks, bad paths."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, Clock, text_app
from wsgisession import SessionMiddleware, SQLiteStore, session
from wsgisession.cli import main
from wsgisession.errors import ConfigurationError, StoreUnavailable
from wsgisession.stores.sqlite import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore(tmp_path / "sessions.sqlite3")
    yield made
    made.close()


def raw_rows(path: str, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
    finally:
        conn.close()
    return int(count)


def visits(request: Request) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


def test_two_workers_on_one_file_share_sessions(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first, second = SQLiteStore(path), SQLiteStore(path)
    try:
        worker_1 = SessionMiddleware(text_app(visits), secret_key=SECRET, store=first)
        worker_2 = SessionMiddleware(text_app(visits), secret_key=SECRET, store=second)
        client = Client(worker_1)
        assert client.get("/").text == "1"
        client.application = worker_2
        assert client.get("/").text == "2"
        client.application = worker_1
        assert client.get("/").text == "3"
    finally:
        first.close()
        second.close()


def test_the_database_runs_in_wal_mode(store: SQLiteStore) -> None:
    store.save("k", {"x": b"1"}, (), 60, create=True)
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_each_session_key_is_its_own_row(store: SQLiteStore) -> None:
    store.save("k", {"a": b"1", "b": b"2"}, (), 60, create=True)
    store.save("k", {"a": b"3"}, (), 60, create=False)
    assert raw_rows(store.path, "wsgisession_fields") == 2
    assert store.load("k") == {"a": b"3", "b": b"2"}


def test_sessions_survive_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    before = SQLiteStore(path)
    before.save("k", {"x": b"1"}, (), 60, create=True)
    before.close()
    after = SQLiteStore(path)
    assert after.load("k") == {"x": b"1"}
    after.close()


def test_expired_sessions_are_invisible_at_once_and_gc_purges_them(
    store: SQLiteStore, clock: Clock
) -> None:
    store.save("old", {"x": b"1"}, (), 60, create=True)
    store.save("new", {"x": b"2"}, (), 600, create=True)
    clock.advance(61)
    assert store.load("old") is None
    store.touch("old", 600)  # too late to renew
    assert store.load("old") is None
    assert store.gc() == 1
    assert raw_rows(store.path, "wsgisession_records") == 1
    assert raw_rows(store.path, "wsgisession_fields") == 1
    assert store.load("new") == {"x": b"2"}


def test_gc_with_a_limit_purges_in_batches(store: SQLiteStore, clock: Clock) -> None:
    for n in range(5):
        store.save(f"old{n}", {"x": b"1", "y": b"2"}, (), 60, create=True)
    store.save("live", {"x": b"3"}, (), 600, create=True)
    clock.advance(61)
    assert [store.gc(limit=2) for _ in range(4)] == [2, 2, 1, 0]
    assert raw_rows(store.path, "wsgisession_records") == 1
    assert raw_rows(store.path, "wsgisession_fields") == 1
    assert store.load("live") == {"x": b"3"}
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        store.gc(limit=0)


def test_saves_purge_expired_sessions_at_most_once_a_minute(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteStore(tmp_path / "sessions.sqlite3", gc_interval=60)
    store.save("short", {"x": b"1"}, (), 10, create=True)  # this save runs the first purge
    clock.advance(20)
    store.save("other", {"x": b"2"}, (), 600, create=True)
    assert raw_rows(store.path, "wsgisession_records") == 2  # expired, not yet purged
    clock.advance(60)
    store.save("third", {"x": b"3"}, (), 600, create=True)
    assert raw_rows(store.path, "wsgisession_records") == 2  # "short" is gone
    assert store.load("other") == {"x": b"2"}
    store.close()


def test_a_purge_by_one_worker_spares_the_others_for_a_minute(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sessions.sqlite3"
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.save("short", {"x": b"1"}, (), 10, create=True)  # purges, stamps the file
    clock.advance(20)
    second.save("other", {"x": b"2"}, (), 600, create=True)  # its first save: not due
    assert raw_rows(path.as_posix(), "wsgisession_records") == 2
    first.close()
    second.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_opens_its_own_connection(store: SQLiteStore) -> None:
    store.save("parent", {"x": b"1"}, (), 60, create=True)  # the parent has a connection
    pid = os.fork()
    if pid == 0:  # the child, as a gunicorn worker forked after the store was used
        code = 1
        try:
            if store.load("parent") == {"x": b"1"}:
                store.save("child", {"y": b"2"}, (), 60, create=True)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.load("child") == {"y": b"2"}


def test_a_database_locked_beyond_busy_timeout_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.05)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert client.get("/").text == "1"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with caplog.at_level(logging.ERROR, logger="wsgisession"):
            response = client.get("/")
    finally:
        other.rollback()
        other.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Set-Cookie" not in response.headers
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "locked" in errors[0]
    assert str(path) in errors[0]
    assert client.get("/").text == "2"  # the lock is gone: service resumes
    store.close()


def test_an_unwritable_path_fails_at_first_use_naming_the_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The middleware checks this at start-up (tests/test_startup_check.py); told
    # not to, or when the directory goes later, each request says the same.
    path = tmp_path / "no-such-directory" / "sessions.sqlite3"
    store = SQLiteStore(path)  # creating the store touches nothing
    with pytest.raises(StoreUnavailable, match="no-such-directory") as raised:
        store.load("k")
    assert "writable" in str(raised.value)
    client = Client(
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=False)
    )
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = client.get("/")
    assert response.status_code == 503
    assert str(path) in caplog.text


def test_a_file_that_is_not_a_database_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"this is not an SQLite database, just some text " * 20)
    with pytest.raises(StoreUnavailable, match=r"sessions\.sqlite3"):
        SQLiteStore(path).load("k")


@pytest.mark.parametrize("path", ["", ":memory:", "file:sessions?mode=memory"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="LRUStore"):
        SQLiteStore(path)


def test_a_negative_busy_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteStore("x.sqlite3", busy_timeout=-1)


def test_a_relative_path_is_resolved_when_the_store_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert SQLiteStore("sessions.sqlite3").path == str(tmp_path / "sessions.sqlite3")


# -- schema versions ----------------------------------------------------------------

#: The layout files had before the schema was versioned (user_version 0).
UNVERSIONED_SCHEMA = """
CREATE TABLE wsgisession_records (key TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX wsgisession_records_expires ON wsgisession_records (expires);
CREATE TABLE wsgisession_fields (
    key TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (key, field)
) WITHOUT ROWID;
CREATE TABLE wsgisession_meta (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
INSERT INTO wsgisession_meta (name, value) VALUES ('last_gc', 0);
"""


def user_version(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_database_records_its_schema_version(store: SQLiteStore) -> None:
    store.save("k", {"a": b"1"}, (), 60, create=True)
    assert user_version(store.path) == SCHEMA_VERSION


def test_a_database_from_before_versions_is_migrated_keeping_its_sessions(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as conn:
        conn.executescript(UNVERSIONED_SCHEMA)
        conn.execute("INSERT INTO wsgisession_records VALUES ('k', 9e12)")
        conn.execute("INSERT INTO wsgisession_fields VALUES ('k', 'user', CAST('1' AS BLOB))")
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.load("k") == {"user": b"1"}
        assert user_version(path) == SCHEMA_VERSION
    finally:
        store.close()


def test_a_database_from_a_newer_version_answers_503_saying_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "new.sqlite3")
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreUnavailable, match="newer wsgisession"):
        store.load("k")
    with pytest.raises(ConfigurationError, match="newer wsgisession"):  # at start-up
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    client = Client(
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=False)
    )
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        assert client.get("/").status_code == 503
    assert "schema version" in caplog.text
    store.close()


# -- files that are not ours (issue 25, item 10) -------------------------------------

#: SQLite files a store may be pointed at by mistake, by what they hold.
FOREIGN_FILES = {
    # No wsgisession ever writes a negative version: there is no migration from it.
    "negative-version": "PRAGMA user_version = -3",
    # Another program's database (an app's db.sqlite3, say).
    "another-programs-database": """
        CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
    """,
    # Says it is ours, at the current version, but the tables were dropped.
    "tables-gone": f"PRAGMA user_version = {SCHEMA_VERSION}",
    # Says version 1, but holds only part of that layout.
    "half-a-layout": """
        CREATE TABLE wsgisession_records (key TEXT PRIMARY KEY, expires REAL NOT NULL);
        PRAGMA user_version = 1;
    """,
}


def foreign_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(FOREIGN_FILES[case])
    conn.close()
    return path


def layout(path: Path) -> tuple[int, str, list[str]]:
    """The file's user_version, journal mode and tables: what a store must not change."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master ORDER BY 1")]
    finally:
        conn.close()
    return int(version), str(mode), tables


@pytest.mark.parametrize("case", list(FOREIGN_FILES))
def test_a_file_that_is_not_a_wsgisession_database_fails_at_start_up(
    tmp_path: Path, case: str
) -> None:
    path = foreign_file(tmp_path, case)
    before = layout(path)
    with pytest.raises(ConfigurationError) as error:
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=SQLiteStore(path))
    assert f"the file {str(path)!r} is not a wsgisession database" in str(error.value)
    assert "point SQLiteStore at a file of its own" in str(error.value)
    assert layout(path) == before, "the file is left as it was"


@pytest.mark.parametrize("case", list(FOREIGN_FILES))
def test_a_file_that_is_not_a_wsgisession_database_answers_503_naming_it(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = foreign_file(tmp_path, case)
    store = SQLiteStore(path)
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=False)
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        assert Client(app).get("/").status_code == 503
    assert f"{str(path)!r} is not a wsgisession database" in caplog.text
    store.close()


def test_tables_dropped_while_running_are_named_as_such(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert client.get("/").text == "1"
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TABLE wsgisession_fields")
    conn.close()
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        assert client.get("/").status_code == 503
    assert "is not a wsgisession database: no such table: wsgisession_fields" in caplog.text


@pytest.mark.parametrize("command", ["check", "gc"])
@pytest.mark.parametrize("case", list(FOREIGN_FILES))
def test_the_cli_says_a_file_is_not_a_wsgisession_database(
    tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = foreign_file(tmp_path, case)
    status = main([command, "--store", f"sqlite:///{path}"])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert err.startswith(f"wsgisession: error: the file {str(path)!r} is not a wsgisession")
    assert len(err.splitlines()) == 1, "one line, no traceback"
