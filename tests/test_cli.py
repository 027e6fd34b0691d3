"""The ``wsgisession`` command: serve, secret, inspect and gc, as a user types them."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, Clock, redis_test_store, text_app
from tests.servers import BIN, Browser, free_port, running
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
    assert "required: COMMAND" in capsys.readouterr().err


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
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port" in line


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


# -- the installed console script, for real ------------------------------------------


@pytest.mark.slow
def test_the_console_script_is_installed_and_fails_in_one_line() -> None:
    script = str(BIN / "wsgisession")
    secret = subprocess.run([script, "secret"], capture_output=True, text=True, check=True)
    assert len(secret.stdout.strip()) == 43
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
