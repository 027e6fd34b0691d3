"""The ``wsgisession`` command: serve, secret, inspect, check and gc, as a user types them."""

from __future__ import annotations

import importlib.metadata
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

import wsgisession
from tests.conftest import (
    POSTGRES_RUN_SCHEMA,
    SECRET,
    Clock,
    postgres_sql,
    postgres_test_table,
    redis_test_store,
    require_postgres,
    text_app,
)
from tests.servers import BIN, ROOT, Browser, free_port, running, wait_for_port
from wsgisession import (
    ClientSessionStore,
    CookieStore,
    LRUStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
    session,
)
from wsgisession import cli as cli_module
from wsgisession.cli import main

OLD_KEY = "an-old-key-that-was-rotated-out-0123456789"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `serve` exports its options as WSGISESSION_* variables. Set, then deleted, so
    # that monkeypatch records each and puts back what was there (or nothing).
    for name in ("SECRET_KEY", "STORE", "STORE_OPTIONS", "COOKIE_NAME", "MAX_AGE"):
        monkeypatch.setenv(f"WSGISESSION_{name}", "")
        monkeypatch.delenv(f"WSGISESSION_{name}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main(argv): the exit status, stdout and stderr."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wsgisession: error: ")
    return lines[0]


def cart(request: Request) -> str:
    session["cart"] = [*session.get("cart", []), "apple"]
    session["user"] = "alice"
    return "ok"


def cookie_from(store: ClientSessionStore | ServerSessionStore, **options: Any) -> str:
    """A real session cookie, as a browser would hold it after one request."""
    client = Client(SessionMiddleware(text_app(cart), secret_key=SECRET, store=store, **options))
    client.get("/")
    cookie = client.get_cookie(options.get("cookie_name", "session"))
    assert cookie is not None
    return cookie.value


# -- --help and secret -------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["serve"], ["secret"], ["inspect"], ["gc"]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: wsgisession" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        "wsgisession: error: the following arguments are required: COMMAND (see wsgisession --help)"
    )


def test_version_names_the_version_and_the_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The distribution is sessionlayer: wsgisession on the package index is another's.
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"wsgisession {importlib.metadata.version('sessionlayer')} (sessionlayer)\n"
    assert wsgisession.__version__ in out


def test_secret_prints_a_new_32_byte_key_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = run(capsys, "secret")[1], run(capsys, "secret")[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\n", first)
    assert first != second


# -- inspect -------------------------------------------------------------------------


def test_inspect_shows_a_signed_cookie_s_data_age_and_expiry(
    capsys: pytest.CaptureFixture[str], clock: Clock
) -> None:
    value = cookie_from(CookieStore())
    clock.advance(3 * 3600)
    status, out, _ = run(capsys, "inspect", value, "--secret-key", SECRET)
    assert status == 0
    assert "valid session cookie 'session' (CookieStore(" in out
    assert "data      {'cart': ['apple'], 'user': 'alice'}" in out
    assert re.search(r"created   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(3 hours ago\)", out)
    assert re.search(r"expires   .* UTC \(in 13 days\), unless used before", out)
    assert "the current secret key" in out


def test_inspect_decrypts_an_encrypted_cookie(capsys: pytest.CaptureFixture[str]) -> None:
    value = cookie_from(CookieStore(encrypt=True))
    status, out, _ = run(
        capsys, "inspect", value, "--secret-key", SECRET, "--store", "cookie://?encrypt=true"
    )
    assert status == 0
    assert "'user': 'alice'" in out


def test_inspect_says_an_encrypted_cookie_needs_the_encrypted_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = cookie_from(CookieStore(encrypt=True))
    status, _, err = run(capsys, "inspect", value, "--secret-key", SECRET)
    assert status == 1
    assert "--store 'cookie://?encrypt=true'" in one_error_line(err)


def test_inspect_looks_a_server_side_id_up_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    value = cookie_from(store)
    url = f"sqlite:///{store.path}"
    status, out, _ = run(capsys, "inspect", value, "--secret-key", SECRET, "--store", url)
    assert status == 0
    assert "(SQLiteStore(" in out
    assert re.search(r"store key [0-9a-f]{64}\n", out)
    assert "'cart': ['apple']" in out
    status, _, err = run(capsys, "inspect", value, "--secret-key", SECRET)
    assert status == 1
    assert "looks like a server-side session id: pass the app's --store URL" in err
    store.close()


def test_inspect_takes_an_id_and_a_key_that_start_with_a_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL-safe base64 starts with "-" one time in 64: session ids, signed cookies and
    # the keys `wsgisession secret` prints. argparse would take them for options.
    token_urlsafe = secrets.token_urlsafe
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: "-" + token_urlsafe(n)[1:])
    key = "-" + SECRET
    store = SQLiteStore(tmp_path / "s.sqlite3")
    client = Client(SessionMiddleware(text_app(cart), secret_key=key, store=store))
    client.get("/")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.value.startswith("-")
    url = f"sqlite:///{store.path}"
    for argv in (
        [cookie.value, "--secret-key", key, "--store", url],
        ["--secret-key", key, cookie.value, "--store", url],
        ["--secret-key", key, "--store", url, "--", cookie.value],
        ["--secret", key, "--store", url, f"session={cookie.value}"],
    ):
        status, out, err = run(capsys, "inspect", *argv)
        assert (status, err) == (0, ""), argv
        assert "'cart': ['apple']" in out
    store.close()
    # A mistyped option is still named as one.
    with pytest.raises(SystemExit):
        main(["inspect", cookie.value, "--secret-key", key, "--no-such"])
    assert "error: unrecognized arguments: --no-such" in capsys.readouterr().err


def test_inspect_reads_a_redis_session(capsys: pytest.CaptureFixture[str]) -> None:
    store = redis_test_store()
    try:
        value = cookie_from(store)
        url = f"{store.url}?prefix={store.prefix}"
        status, out, _ = run(capsys, "inspect", value, "--secret-key", SECRET, "--store", url)
    finally:
        store.client.delete(*store.client.keys(store.prefix + "*"))
        store.close()
    assert status == 0
    assert "'user': 'alice'" in out


def test_inspect_explains_an_id_whose_session_has_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    value = cookie_from(store)
    SQLiteStore(tmp_path / "other").ping()  # another app's database, without this session
    status, _, err = run(
        capsys, "inspect", value, "--secret-key", SECRET, "--store", f"sqlite:///{tmp_path}/other"
    )
    assert status == 1
    assert "holds no session under this id (it expired, was logged out" in one_error_line(err)
    store.close()


def test_inspect_refuses_a_tampered_cookie_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = cookie_from(CookieStore())
    tampered = ("A" if value[0] != "A" else "B") + value[1:]
    status, out, err = run(capsys, "inspect", tampered, "--secret-key", SECRET)
    assert status == 1
    assert out == ""
    assert "invalid: signature does not match: the cookie was altered" in one_error_line(err)


def test_inspect_refuses_a_cookie_signed_with_another_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = cookie_from(CookieStore())
    status, _, err = run(capsys, "inspect", value, "--secret-key", "another-key-" + "x" * 32)
    assert status == 1
    assert "made with another secret key" in one_error_line(err)


def test_inspect_names_a_cookie_signed_with_a_fallback_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    value = cookie_from(CookieStore())
    monkeypatch.setenv("WSGISESSION_FALLBACK_SECRET_KEYS", SECRET)
    status, out, _ = run(capsys, "inspect", value, "--secret-key", OLD_KEY)
    assert status == 0
    assert "a fallback key (the next response re-issues it" in out


def test_inspect_says_why_an_old_cookie_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Clock
) -> None:
    value = cookie_from(CookieStore(), max_age=600)
    (tmp_path / "sessions.toml").write_text("[wsgisession]\nmax_age = 600\n")
    config = str(tmp_path / "sessions.toml")
    clock.advance(601)
    status, _, err = run(capsys, "inspect", value, "--secret-key", SECRET, "--config", config)
    assert status == 1
    assert "invalid: expired, it was idle too long (created" in one_error_line(err)


def test_inspect_takes_name_equals_value_and_another_cookie_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = cookie_from(CookieStore(), cookie_name="sid")
    status, out, _ = run(
        capsys, "inspect", f"sid={value}", "--secret-key", SECRET, "--cookie-name", "sid"
    )
    assert status == 0
    assert "valid session cookie 'sid'" in out
    status, _, err = run(capsys, "inspect", value, "--secret-key", SECRET)
    assert status == 1
    assert "not named 'session' (--cookie-name)" in err


def test_inspect_without_a_secret_key_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "inspect", "x.y.z")
    assert status == 1
    line = one_error_line(err)
    assert "pass the app's key with --secret-key KEY" in line
    assert "WSGISESSION_SECRET_KEY" in line


def test_inspect_with_a_mistyped_sqlite_path_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run(
        capsys, "inspect", "x.y.z", "--secret-key", SECRET, "--store", "sqlite:///sesions.db"
    )
    assert status == 1
    assert f"there is no session database at {str(tmp_path / 'sesions.db')!r}" in one_error_line(
        err
    )
    assert list(tmp_path.iterdir()) == []


# -- gc ------------------------------------------------------------------------------


def test_gc_purges_expired_sqlite_sessions_in_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Clock
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    for n in range(5):
        store.save(f"old{n}", {"x": b"1"}, (), 60, create=True)
    store.save("live", {"x": b"1"}, (), 6000, create=True)
    clock.advance(61)
    url = f"sqlite:///{store.path}"
    status, out, err = run(capsys, "gc", "--store", url, "--batch-size", "2")
    assert status == 0
    assert err.splitlines() == [f"purged {n} expired sessions so far…" for n in (2, 4, 5)]
    assert re.fullmatch(r"purged 5 expired sessions from SQLiteStore\('.*'\) in \d+\.\d s\n", out)
    assert store.load("live") == {"x": b"1"}
    assert run(capsys, "gc", "--store", url)[1].startswith("purged 0 expired sessions")
    store.close()


def test_gc_reads_the_store_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.save("k", {"x": b"1"}, (), 60, create=True)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{store.path}")
    assert run(capsys, "gc")[0] == 0
    store.close()


def test_gc_leaves_redis_to_expire_sessions_itself(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "gc", "--store", "redis://127.0.0.1:1/0")
    assert status == 0
    assert "Redis expires sessions by itself (TTL); nothing to purge" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gc"], "no store: pass --store URL"),
        (["gc", "--store", "sqlite:///nowhere/s.sqlite3"], "no session database at"),
        (["gc", "--store", "memory://"], "gc is for SQLite and PostgreSQL stores"),
        (["gc", "--store", "bogus://x"], "unknown store URL scheme 'bogus'"),
    ],
)
def test_gc_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 1
    assert message in one_error_line(err)


def test_gc_refuses_a_batch_size_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["gc", "--store", "sqlite:///x", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "must be a positive whole number" in capsys.readouterr().err


# -- serve (the server itself replaced, to see what it would serve) ------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `serve` hands to werkzeug's run_simple, which is not started here."""
    seen: dict[str, Any] = {}

    def run_simple(host: str, port: int, app: Any, **options: Any) -> None:
        seen.update(host=host, port=port, app=app, **options)

    monkeypatch.setattr(cli_module, "run_simple", run_simple)
    # The port is not bound here either (test_serve_fails_on_a_busy_port_before_the_banner).
    monkeypatch.setattr(cli_module, "_check_port", lambda host, port: None)
    return seen


def test_serve_wraps_a_bare_app_and_says_it_is_for_development(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "serve", "tests.counter_app:app", "--store", "memory://", "--port", "5123"
    )
    assert status == 0
    app = served["app"]
    assert isinstance(app, SessionMiddleware)
    assert isinstance(app.store, LRUStore)
    assert (served["host"], served["port"], served["use_reloader"]) == ("127.0.0.1", 5123, False)
    assert "No secret key given: using a random one" in out
    assert "This is a development server: do not use it in production." in out
    assert "gunicorn --workers 4 --bind 127.0.0.1:8000 tests.counter_app:app" in out
    assert "wrap it there first" in out
    client = Client(app)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]


def test_serve_uses_the_given_key_and_the_reloader(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "serve", "tests.counter_app:app", "--secret-key", SECRET, "--reload"
    )
    assert status == 0
    assert served["use_reloader"] is True
    assert served["app"].keyring.keys == [SECRET.encode()]
    assert "random" not in out
    assert "CookieStore" in out


def test_serve_does_not_wrap_an_app_wrapped_already(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.counter_app import wrapped

    status, out, _ = run(capsys, "serve", "tests.counter_app:wrapped")
    assert status == 0
    assert served["app"] is wrapped
    assert "with sessions in LRUStore(" in out
    assert "wrap it there first" not in out
    assert "random" not in out  # the app signs with its own key


def test_serve_says_when_an_app_that_reads_the_environment_got_the_random_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "env_cli_app.py").write_text(
        "import wsgisession\n"
        "from tests.counter_app import app as bare\n"
        "app = wsgisession.from_config(bare)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out, _ = run(capsys, "serve", "env_cli_app:app")
    assert status == 0
    assert "No secret key given: using a random one" in out


def test_serve_fails_on_a_busy_port_before_the_banner(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_module, "run_simple", lambda *a, **k: pytest.fail("served"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out, err = run(capsys, "serve", "tests.counter_app:app", "--port", str(port))
    assert status == 1
    assert out == ""
    line = one_error_line(err)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert "pick another with --port" in line


def test_serve_calls_an_app_factory(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.counter_app import wrapped

    status, out, _ = run(capsys, "serve", "tests.counter_app:create_app()")
    assert status == 0
    assert served["app"] is wrapped
    assert "--bind 127.0.0.1:8000 'tests.counter_app:create_app()'" in out


def test_serve_no_wrap_serves_the_app_as_it_is(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.counter_app import app

    assert run(capsys, "serve", "tests.counter_app:app", "--no-wrap")[0] == 0
    assert served["app"] is app


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.no_such_module:app", "no module named 'tests.no_such_module'"),
        ("tests.counter_app:missing", "has no WSGI application named 'missing'"),
        ("tests.counter_app:not_an_app", "has no WSGI application named 'not_an_app'"),
        ("tests.counter_app:app(1)", "is not MODULE:APP"),
        (
            "tests.counter_app:broken_factory()",
            "tests.counter_app:broken_factory() failed: KeyError: 'DATABASE_URL' at ",
        ),
    ],
)
def test_serve_errors_are_one_line(
    spec: str, message: str, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "serve", spec)
    assert status == 1
    assert message in one_error_line(err)
    assert served == {}


def test_serve_says_where_a_broken_module_failed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "broken_cli_app.py").write_text("app = None\nraise RuntimeError('no database')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    status, _, err = run(capsys, "serve", "broken_cli_app:app")
    assert status == 1
    assert re.search(
        r"importing 'broken_cli_app' failed: RuntimeError: no database at .*broken_cli_app.py:2$",
        one_error_line(err),
    )


# -- serve: the options, when the app is wrapped already ------------------------------

OTHER_KEY = "another-key-" + "x" * 32
#: The key tests.counter_app:wrapped signs with.
WRAPPED_KEY = "counter-app-key-" + "c" * 32

#: An app that builds its middleware from configuration, as the docs recommend.
FROM_CONFIG_APP = """
from wsgisession import from_config, session


def app(environ, start_response):
    session["visits"] = session.get("visits", 0) + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(session["visits"]).encode()]


app = from_config(app)  # reads WSGISESSION_SECRET_KEY and WSGISESSION_STORE
"""


def config_file(tmp_path: Path) -> str:
    path = tmp_path / "sessions.toml"
    path.write_text('[wsgisession]\nstore = "memory://"\n')
    return str(path)


@pytest.mark.parametrize(
    ("options", "ignored"),
    [
        pytest.param(
            ["--store", "sqlite:///dev.sqlite3"], "--store sqlite:///dev.sqlite3", id="store"
        ),
        pytest.param(["--secret-key", OTHER_KEY], "--secret-key", id="secret-key"),
        pytest.param(["--config", "{config}"], "--config {config}", id="config"),
        pytest.param(
            ["--store", "memory://?max_entries=5", "--secret-key", OTHER_KEY],
            "--store memory://?max_entries=5, --secret-key",
            id="store-and-key",
        ),
    ],
)
def test_serve_refuses_options_that_an_app_wrapped_already_would_ignore(
    options: list[str],
    ignored: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    config = config_file(tmp_path)
    argv = [option.format(config=config) for option in options]
    status, out, err = run(capsys, "serve", "tests.counter_app:wrapped", *argv)
    assert (status, out) == (1, "")
    line = one_error_line(err)
    assert "tests.counter_app:wrapped is wrapped in SessionMiddleware already, with" in line
    assert "with sessions in LRUStore(max_entries=" in line
    assert f"so {ignored.format(config=config)} would be ignored: " in line
    assert "wsgisession.from_config(app)" in line
    assert served == {}
    assert [path.name for path in tmp_path.iterdir()] == ["sessions.toml"]  # no dev.sqlite3


def test_serve_takes_options_that_the_wrapped_app_uses_already(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.counter_app import wrapped

    status, _, _ = run(
        capsys,
        "serve",
        "tests.counter_app:wrapped",
        *("--store", "memory://", "--secret-key", WRAPPED_KEY),
    )
    assert status == 0
    assert served["app"] is wrapped


def test_serve_options_reach_an_app_that_builds_its_middleware_from_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    served: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "from_config_cli_app.py").write_text(FROM_CONFIG_APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    url = f"sqlite:///{tmp_path}/dev.sqlite3"
    status, out, _ = run(
        capsys, "serve", "from_config_cli_app:app", "--store", url, "--secret-key", SECRET
    )
    assert status == 0
    app = served["app"]
    assert isinstance(app, SessionMiddleware)
    assert repr(app.store) == f"SQLiteStore({str(tmp_path / 'dev.sqlite3')!r})"
    assert app.keyring.keys[0] == SECRET.encode()
    assert f"with sessions in {app.store!r}" in out
    client = Client(app)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]
    assert isinstance(app.store, SQLiteStore)
    app.store.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--store", "mysql://x"], "unknown store URL scheme 'mysql' in 'mysql://x'"),
        (["--store", "sqlite:///dev.sqlite3?timeout=5"], "unknown option 'timeout'"),
        (["--config", "missing.toml"], "cannot read the config file 'missing.toml'"),
        (["--secret-key", ""], "--secret-key is empty"),
    ],
)
@pytest.mark.parametrize("spec", ["tests.counter_app:wrapped", "tests.no_such_module:app"])
def test_serve_reports_a_bad_value_before_the_port_and_the_app(
    options: list[str],
    message: str,
    spec: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Neither the busy port nor the missing module is what the error is about.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_module, "run_simple", lambda *a, **k: pytest.fail("served"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        status, out, err = run(capsys, "serve", spec, "--port", port, *options)
    assert (status, out) == (1, "")
    assert message in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_config_file_it_would_not_read(
    tmp_path: Path, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path)
    status, _, err = run(capsys, "serve", "tests.counter_app:app", "--no-wrap", "--config", config)
    assert status == 1
    assert "--no-wrap serves it as it is: drop one of the two" in one_error_line(err)
    assert served == {}


# -- serve: the address ----------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "65536", "0", "http", "-1"])
def test_serve_refuses_a_port_out_of_range_in_one_line(
    port: str, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "tests.counter_app:app", "--port", port])
    assert exit_info.value.code == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"wsgisession: error: argument --port: must be a port number from 1 to 65535,"
        f" not {port!r} (see wsgisession serve --help)"
    )
    assert served == {}


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        # TEST-NET-1 (RFC 5737): documentation only, no machine's address.
        ("192.0.2.1", "this machine has no address 192.0.2.1 ("),
        # .invalid (RFC 2606) never resolves.
        ("no-such-host.invalid", "cannot resolve the host 'no-such-host.invalid' ("),
    ],
)
def test_serve_says_why_it_cannot_listen_on_a_host(
    host: str, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_module, "run_simple", lambda *a, **k: pytest.fail("served"))
    status, out, err = run(capsys, "serve", "tests.counter_app:app", "--host", host)
    assert (status, out) == (1, "")
    line = one_error_line(err)
    assert f"cannot listen on {host}:5000: {reason}" in line
    assert "--host" in line
    assert "in use" not in line


# -- check: it reports, and creates and changes nothing ---------------------------------


def files_in(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}


def test_check_creates_no_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "check", "--store", "sqlite:///dev.sqlite3")
    assert (status, out) == (1, "")
    line = one_error_line(err)
    assert f"there is no session database at {str(tmp_path / 'dev.sqlite3')!r}: check" in line
    assert "the app creates the file when it first starts" in line
    assert list(tmp_path.iterdir()) == []


def test_check_reads_a_database_without_changing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.save("key", {"x": b"1"}, (), 60, create=True)
    store.close()
    before = files_in(tmp_path)
    assert list(before) == ["s.sqlite3"]
    status, out, _ = run(capsys, "check", "--store", f"sqlite:///{store.path}")
    assert (status, out) == (0, f"SQLiteStore({store.path!r}) works\n")
    assert files_in(tmp_path) == before


def test_check_reads_a_database_in_use_without_changing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.save("key", {"x": b"1"}, (), 60, create=True)  # its connection stays open
    names = sorted(path.name for path in tmp_path.iterdir())
    database = (tmp_path / "s.sqlite3").read_bytes()
    assert run(capsys, "check", "--store", f"sqlite:///{store.path}")[0] == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == names
    assert (tmp_path / "s.sqlite3").read_bytes() == database
    assert store.load("key") == {"x": b"1"}
    store.close()


def test_check_passes_an_older_database_without_migrating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.ping()
    conn = sqlite3.connect(store.path)
    # Version 1: before the per-user index's two tables.
    conn.executescript(
        "DROP TABLE wsgisession_devices; DROP TABLE wsgisession_stamps; PRAGMA user_version = 1;"
    )
    conn.close()
    assert run(capsys, "check", "--store", f"sqlite:///{store.path}")[0] == 0
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()


def test_check_creates_no_postgres_table(capsys: pytest.CaptureFixture[str]) -> None:
    table = postgres_test_table()
    url = f"{require_postgres()}?schema={POSTGRES_RUN_SCHEMA}&table={table}"
    status, out, err = run(capsys, "check", "--store", url)
    assert (status, out) == (1, "")
    line = one_error_line(err)
    assert f'the session table "{POSTGRES_RUN_SCHEMA}"."{table}" does not exist' in line
    assert "wsgisession migrate --store URL" in line
    qualified = f'"{POSTGRES_RUN_SCHEMA}"."{table}"'
    assert postgres_sql("SELECT to_regclass(%s)::text", qualified) == [(None,)]
    assert run(capsys, "migrate", "--store", url)[0] == 0
    status, out, _ = run(capsys, "check", "--store", url)
    assert status == 0
    assert out.endswith(" works\n")


# -- the exit statuses docs/cli.md documents ----------------------------------------------

#: For each documented status but 130 (Ctrl-C, tested below), a command that ends so.
EXIT_STATUS_EXAMPLES = {
    0: ["secret"],
    1: ["gc", "--store", "sqlite:///no/such/directory/s.sqlite3"],
    2: ["serve", "tests.counter_app:app", "--port", "99999"],
}


def test_every_documented_exit_status_is_tested() -> None:
    table = (ROOT / "docs" / "cli.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| `(\d+)` \|", table, re.MULTILINE)}
    assert documented == {*EXIT_STATUS_EXAMPLES, 130}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "argv"),
    [pytest.param(status, argv, id=str(status)) for status, argv in EXIT_STATUS_EXAMPLES.items()],
)
def test_the_console_script_exits_with_the_documented_status(status: int, argv: list[str]) -> None:
    done = subprocess.run(
        [str(BIN / "wsgisession"), *argv], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == status, done.stderr
    if status:
        one_error_line(done.stderr)


def sigint_as_in_a_terminal() -> None:
    # A child of a shell's background job inherits SIGINT ignored; a terminal's does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_exits_130_without_a_traceback() -> None:
    with socket.socket() as hung:  # accepts, never answers: a hung Redis
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        hung.settimeout(30)
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0?socket_timeout=30"
        process = subprocess.Popen(
            [str(BIN / "wsgisession"), "check", "--store", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_as_in_a_terminal,
        )
        connection, _ = hung.accept()  # `check` is waiting for Redis to answer
        with connection:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert (out, err) == ("", "")


@pytest.mark.slow
def test_serve_stops_on_ctrl_c_with_status_0(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "wsgisession"), "serve", "tests.counter_app:app", "--port", str(port)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=sigint_as_in_a_terminal,
        )
    try:
        wait_for_port(port, process, log)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the installed console script, for real ------------------------------------------


@pytest.mark.slow
def test_the_console_script_is_installed_and_fails_in_one_line() -> None:
    script = str(BIN / "wsgisession")
    secret = subprocess.run([script, "secret"], capture_output=True, text=True, check=True)
    assert len(secret.stdout.strip()) == 43
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout == f"wsgisession {wsgisession.__version__} (sessionlayer)\n"
    bad = subprocess.run(
        [script, "inspect", "garbage", "--secret-key", SECRET], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("wsgisession: error: invalid: ")
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
    as_module = subprocess.run(
        [sys.executable, "-m", "wsgisession", "gc", "--help"], capture_output=True, text=True
    )
    assert as_module.returncode == 0
    assert as_module.stdout.startswith("usage: wsgisession gc")


@pytest.mark.slow
def test_serve_serves_requests_with_sessions(tmp_path: Path) -> None:
    port = free_port()
    command = [
        str(BIN / "wsgisession"),
        "serve",
        "tests.counter_app:app",
        "--port",
        str(port),
        "--store",
        f"sqlite:///{tmp_path}/dev.sqlite3",
    ]
    log = tmp_path / "serve.log"
    with running(command, port, log):
        browser = Browser(port)
        assert [browser.get("/") for _ in range(3)] == ["1", "2", "3"]
    output = log.read_text()
    assert "do not use it in production" in output
    assert "SQLiteStore(" in output


@pytest.mark.slow
def test_serve_refuses_a_store_that_a_middleware_written_out_in_code_would_ignore(
    tmp_path: Path,
) -> None:
    # The README's shape of app: SessionMiddleware(app, secret_key=...) in the code.
    (tmp_path / "myapp.py").write_text(
        FROM_CONFIG_APP.replace("from_config, ", "SessionMiddleware, ").replace(
            "app = from_config(app)", f"app = SessionMiddleware(app, secret_key={SECRET!r})"
        )
    )
    done = subprocess.run(
        [str(BIN / "wsgisession"), "serve", "myapp:app", "--store", "sqlite:///dev.sqlite3"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    line = one_error_line(done.stderr)
    assert (
        "myapp:app is wrapped in SessionMiddleware already, with sessions in CookieStore(" in line
    )
    assert "so --store sqlite:///dev.sqlite3 would be ignored" in line
    assert [path.name for path in tmp_path.iterdir()] == ["myapp.py"]


@pytest.mark.slow
def test_serve_keeps_sessions_in_the_store_given_for_an_app_built_by_from_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "myapp.py").write_text(FROM_CONFIG_APP)
    port = free_port()
    database = tmp_path / "dev.sqlite3"
    command = [
        *(str(BIN / "wsgisession"), "serve", "myapp:app", "--port", str(port)),
        *("--store", f"sqlite:///{database}"),
    ]
    log = tmp_path / "serve.log"
    with running(command, port, log, env={"PYTHONPATH": str(tmp_path)}):
        browser = Browser(port)
        assert [browser.get("/") for _ in range(3)] == ["1", "2", "3"]
    assert f"with sessions in SQLiteStore({str(database)!r})" in log.read_text()
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT count(*) FROM wsgisession_records").fetchone() == (1,)
    conn.close()
