"""A store that cannot work fails at start-up, with the message a request would log.

SessionMiddleware pings an SQLite store when it is made (cheap and local), every
server store with ``check_store=True``, and ``from_config`` (so ``wsgisession serve``
and any app configured from a URL) passes ``True``. ``wsgisession check`` runs the
same check from the shell.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from tests.conftest import (
    POSTGRES_RUN_SCHEMA,
    SECRET,
    postgres_test_store,
    postgres_test_table,
    redis_test_store,
    require_postgres,
    text_app,
)
from tests.servers import free_port
from wsgisession import (
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
    from_config,
    session,
)
from wsgisession.cli import main
from wsgisession.errors import ConfigurationError


def visits(request: Any) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


def broken_sqlite(tmp_path: Path) -> tuple[ServerSessionStore, str]:
    path = tmp_path / "no-such-directory" / "sessions.sqlite3"
    return SQLiteStore(path), f"sqlite:///{path}"


def closed_redis(tmp_path: Path) -> tuple[ServerSessionStore, str]:
    url = f"redis://127.0.0.1:{free_port()}/0"
    return RedisStore(url, socket_timeout=0.5), url


def closed_postgres(tmp_path: Path) -> tuple[ServerSessionStore, str]:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    return PostgresStore(url, timeout=1), url


#: A store that cannot work, its URL, and what the message names.
BROKEN: dict[str, tuple[Callable[[Path], tuple[ServerSessionStore, str]], str]] = {
    "sqlite-missing-directory": (broken_sqlite, r"no-such-directory.*writable"),
    "redis-closed-port": (closed_redis, r"Redis at redis://127\.0\.0\.1:\d+/0 failed"),
    "postgres-closed-port": (closed_postgres, r"PostgreSQL at 127\.0\.0\.1:\d+/postgres failed"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_store_fails_at_start_up_with_the_message_a_request_would_log(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make, names = BROKEN[case]
    store, _ = make(tmp_path)
    with pytest.raises(ConfigurationError, match=names) as raised:
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=True)
    assert "check_store=False" in str(raised.value)
    logged_at_start = str(raised.value.__cause__)

    # The same store, unchecked: the first request answers 503 and logs the same words.
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=False)
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = Client(app).get("/")
    assert response.status_code == 503
    head = logged_at_start.split(":")[0]  # "cannot use the session database '…'", "Redis at …"
    assert head in caplog.text
    assert logged_at_start.split(": ")[0] in str(raised.value)
    store.close()


@pytest.mark.parametrize("case", list(BROKEN))
def test_from_config_checks_a_store_url_at_start_up_when_asked(case: str, tmp_path: Path) -> None:
    make, names = BROKEN[case]
    _, url = make(tmp_path)
    with pytest.raises(ConfigurationError, match=names):
        from_config(
            text_app(visits),
            {"secret_key": SECRET, "store": url},
            environ={"WSGISESSION_CHECK_STORE": "true"},
        )


def test_from_config_leaves_a_network_store_alone_by_default(tmp_path: Path) -> None:
    # A gunicorn worker restarted while Redis is down would fail to boot, and
    # gunicorn would stop the whole server rather than answer 503 until Redis is back.
    _, url = closed_redis(tmp_path)
    app = from_config(text_app(visits), {"secret_key": SECRET, "store": url})
    assert Client(app).get("/").status_code == 503


def test_an_unwritable_sqlite_path_fails_by_default_without_being_asked(tmp_path: Path) -> None:
    store, _ = broken_sqlite(tmp_path)
    with pytest.raises(ConfigurationError, match="no-such-directory"):
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)


def test_a_network_store_is_not_contacted_by_default(tmp_path: Path) -> None:
    # Redis may start after the app (compose, systemd ordering): only asked for.
    store, _ = closed_redis(tmp_path)
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    assert Client(app).get("/").status_code == 503


def test_the_sqlite_check_creates_the_database_and_keeps_no_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sessions.sqlite3")
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    assert (tmp_path / "sessions.sqlite3").exists()
    # Nothing pooled: a worker forked now (gunicorn --preload) inherits no connection.
    assert store._opened == []
    assert [Client(app).get("/").text for _ in range(2)] == ["1", "1"]
    client = Client(app)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    store.close()


def test_a_working_redis_passes_the_check_without_keeping_a_connection() -> None:
    store = redis_test_store()
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=True)
    assert store._client is None
    assert store._connections is None
    client = Client(app)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    store.close()


def test_a_working_postgres_passes_the_check_and_creates_the_table() -> None:
    store = postgres_test_store()
    app = SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=True)
    assert store._pool is None  # the pool is made after the fork, in each worker
    client = Client(app)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    store.close()


def test_a_postgres_table_that_is_missing_fails_the_check_when_it_may_not_be_created() -> None:
    store = PostgresStore(
        require_postgres(),
        schema=POSTGRES_RUN_SCHEMA,
        table=postgres_test_table(),
        create_table=False,
    )
    with pytest.raises(ConfigurationError, match="wsgisession migrate"):
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store, check_store=True)


def test_check_store_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="check_store must be True or False or None"):
        SessionMiddleware(text_app(visits), secret_key=SECRET, check_store="yes")  # type: ignore[arg-type]


# -- wsgisession check ---------------------------------------------------------------


def test_check_command_says_a_working_store_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    SQLiteStore("sessions.sqlite3").ping()  # made by the app; `check` creates nothing
    assert main(["check", "--store", "sqlite:///sessions.sqlite3"]) == 0
    assert capsys.readouterr().out == f"SQLiteStore({str(tmp_path / 'sessions.sqlite3')!r}) works\n"


@pytest.mark.parametrize("case", list(BROKEN))
def test_check_command_fails_in_one_line_naming_the_problem(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, names = BROKEN[case]
    _, url = make(tmp_path)
    assert main(["check", "--store", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("wsgisession: error: ")
    assert re.search(names, err)


# -- Flask's init_app: the middleware is built per configuration, checked once -----


def test_flask_init_app_checks_the_store_when_it_is_called(tmp_path: Path) -> None:
    import flask

    from wsgisession.contrib.flask import init_app

    _, sqlite_url = broken_sqlite(tmp_path)
    with pytest.raises(ConfigurationError, match="no-such-directory"):
        init_app(flask.Flask(__name__), store=sqlite_url)
    _, redis_url = closed_redis(tmp_path)
    with pytest.raises(ConfigurationError, match="Redis at"):
        init_app(flask.Flask(__name__), store=redis_url, check_store=True)
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    init_app(app, store=redis_url)  # not asked: Redis may come up after the app

    @app.get("/")
    def index() -> str:
        flask.session["x"] = 1
        return "ok"

    assert app.test_client().get("/").status_code == 503


def test_a_database_locked_by_another_process_passes_the_check(tmp_path: Path) -> None:
    # A worker that gunicorn restarts while another process writes must still boot.
    import sqlite3

    path = tmp_path / "sessions.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.1)
    store.ping()  # creates the database
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        SessionMiddleware(text_app(visits), secret_key=SECRET, store=store)
    finally:
        other.rollback()
        other.close()
    store.close()
