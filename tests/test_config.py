"""Configuration: store URLs, dicts, TOML files and WSGISESSION_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, text_app
from wsgisession import (
    CookieStore,
    LRUStore,
    PostgresStore,
    RedisStore,
    SessionMiddleware,
    SQLiteStore,
    from_config,
    session,
    store_from_url,
)
from wsgisession.errors import ConfigurationError

from .fakes import DictStore


def visits(request: Request) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


def configured(config: Any, **environ: str) -> SessionMiddleware:
    return from_config(text_app(visits), config, environ=environ)


# -- store_from_url ----------------------------------------------------------------


def test_sqlite_url_with_four_slashes_is_an_absolute_path() -> None:
    store = store_from_url("sqlite:////var/lib/app/sessions.sqlite3?busy_timeout=2")
    assert isinstance(store, SQLiteStore)
    assert store.path == "/var/lib/app/sessions.sqlite3"
    assert store.busy_timeout == 2


def test_sqlite_url_with_three_slashes_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = store_from_url("sqlite:///dev.sqlite3")
    assert isinstance(store, SQLiteStore)
    assert store.path == str(tmp_path / "dev.sqlite3")
    (tmp_path / "data").mkdir()
    nested = store_from_url("sqlite:///data/sessions.sqlite3")
    assert isinstance(nested, SQLiteStore)
    assert nested.path == str(tmp_path / "data" / "sessions.sqlite3")


def test_sqlite_url_with_a_host_part_is_refused_with_both_spellings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"has a host part.*sqlite:///.*sqlite:////"):
        store_from_url("sqlite://data/sessions.sqlite3")
    assert not (tmp_path / "data").exists()


def test_old_absolute_sqlite_url_that_now_means_a_missing_folder_says_four_slashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: sqlite:///tmp/x meant /tmp/x. /tmp exists, ./tmp does not.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"write sqlite:////tmp/s\.sqlite3"):
        store_from_url("sqlite:///tmp/s.sqlite3")


def test_memory_url_takes_max_entries() -> None:
    store = store_from_url("memory://?max_entries=500")
    assert isinstance(store, LRUStore)
    assert store.max_entries == 500


def test_cookie_url_is_the_cookie_store() -> None:
    assert isinstance(store_from_url("cookie://"), CookieStore)


def test_cookie_url_can_ask_for_encryption() -> None:
    store = store_from_url("cookie://?encrypt=true")
    assert isinstance(store, CookieStore)
    assert store.encrypt is True


@pytest.mark.parametrize("url", ["redis://cache:6379/2", "rediss://cache:6380/0", "unix:///r.sock"])
def test_redis_urls_make_a_redis_store_without_connecting(url: str) -> None:
    store = store_from_url(url + "?prefix=myapp:")
    assert isinstance(store, RedisStore)
    assert store.prefix == "myapp:"
    assert "prefix" not in store.url


def test_a_redis_url_without_prefix_uses_the_default_prefix() -> None:
    store = store_from_url("redis://cache:6379/0?socket_timeout=1")
    assert isinstance(store, RedisStore)
    assert store.prefix == "wsgisession:"
    assert store.url.endswith("?socket_timeout=1")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///sessions.sqlite3?encrypt=true",
        "redis://cache:6379/0?encrypt=1&prefix=app:&socket_timeout=1",
        "unix:///run/redis.sock?encrypt=yes",
        "redis+sentinel://s1:26379,s2:26379/mymaster/0?encrypt=true&socket_timeout=1",
        "postgresql://app@db/app?encrypt=true&table=sessions&sslmode=require",
    ],
)
def test_a_server_store_url_can_ask_for_encryption_at_rest(url: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, SQLiteStore | RedisStore | PostgresStore)
    assert store.encrypt is True
    assert "encrypt" not in getattr(store, "url", "")  # not passed on to redis-py or libpq
    assert "encrypt=True" in repr(store)
    off = store_from_url(url.split("?")[0] + "?encrypt=off")
    assert off.encrypt is False
    assert "encrypt" not in repr(off)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.sqlite3?encrypt=maybe", "encrypt in the store URL .* true or false"),
        ("redis://cache:6379/0?encrypt=maybe", "encrypt in the store URL .* true or false"),
        ("postgresql://db/app?encrypt=maybe", "encrypt in the store URL .* true or false"),
        ("memory://?encrypt=true", "unknown option 'encrypt'"),
        ("memcached://cache:11211", "unknown store URL scheme 'memcached'"),
        ("sessions.sqlite3", "has no scheme"),
        ("memory://?max_entry=5", "did you mean 'max_entries'"),
        ("memory://?max_entries=lots", "max_entries in the store URL .* whole number"),
        ("memory://somehost", "takes no host"),
        ("sqlite:///x.sqlite3?timeout=5", "unknown option 'timeout'"),
        ("cookie://?compress=1", "compress_min_size"),
    ],
)
def test_a_bad_store_url_names_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store_from_url(url)


# -- from_config -------------------------------------------------------------------


def test_a_dict_configures_the_middleware_and_its_store(tmp_path: Path) -> None:
    mw = configured(
        {
            "secret_key": SECRET,
            "store": f"sqlite:///{tmp_path}/sessions.sqlite3",
            "cookie_name": "sid",
            "max_age": 600,
            "samesite": "Strict",
        }
    )
    client = Client(mw)
    response = client.get("/")
    assert response.text == "1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    assert "Max-Age=600" in cookie
    assert "SameSite=Strict" in cookie
    assert client.get("/").text == "2"
    assert isinstance(mw.store, SQLiteStore)
    mw.store.close()


def test_a_toml_file_with_a_wsgisession_table(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(
        f"""
[database]
url = "postgres://elsewhere"

[wsgisession]
secret_key = "{SECRET}"
fallback_secret_keys = ["old-key-0123456789abcdefghijklmnopqrstuvwxyz"]
store = "wsgisession.LRUStore"
store_options = {{ max_entries = 50 }}
max_age = "none"
secure = true
"""
    )
    mw = configured(path)
    assert isinstance(mw.store, LRUStore)
    assert mw.store.max_entries == 50
    response = Client(mw).get("/")
    cookie = response.headers["Set-Cookie"]
    assert "Max-Age" not in cookie  # a browser-session cookie
    assert "Secure" in cookie


def test_a_store_table_names_the_class_and_its_options_as_in_xitrum(tmp_path: Path) -> None:
    path = tmp_path / "sessions.toml"
    path.write_text(f'secret_key = "{SECRET}"\n[store."tests.fakes.DictStore"]\ndefault_ttl = 60\n')
    mw = configured(path)
    assert isinstance(mw.store, DictStore)
    assert mw.store.default_ttl == 60
    client = Client(mw)
    assert [client.get("/").text for _ in range(2)] == ["1", "2"]


def test_a_custom_store_by_dotted_path_runs_sessions() -> None:
    mw = configured({"secret_key": SECRET, "store": "tests.fakes:DictStore"})
    assert isinstance(mw.store, DictStore)
    client = Client(mw)
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    mw = configured(
        {"secret_key": "from-the-file-but-overridden-0123456789", "store": "cookie://"},
        WSGISESSION_SECRET_KEY=SECRET,
        WSGISESSION_STORE="memory://?max_entries=7",
        WSGISESSION_COOKIE_NAME="__Host-sid",
        WSGISESSION_HTTPONLY="false",
        WSGISESSION_MAX_AGE="900",
        WSGISESSION_SECURE="auto",
    )
    assert isinstance(mw.store, LRUStore)
    assert mw.store.max_entries == 7
    cookie = Client(mw).get("https://localhost/").headers["Set-Cookie"]
    assert cookie.startswith("__Host-sid=")
    assert "HttpOnly" not in cookie
    assert "Max-Age=900" in cookie
    assert "Secure" in cookie
    # The key from the environment signs: a middleware with the file's key refuses it.
    assert mw.keyring.keys == SessionMiddleware(text_app(visits), secret_key=SECRET).keyring.keys


def test_environment_alone_is_enough() -> None:
    mw = from_config(
        text_app(visits),
        environ={
            "WSGISESSION_SECRET_KEY": SECRET,
            "WSGISESSION_STORE": "tests.fakes.DictStore",
            "WSGISESSION_STORE_OPTIONS": '{"default_ttl": 5}',
            "WSGISESSION_FALLBACK_SECRET_KEYS": "old-one-0123456789abcdefghijklmnopqrstuv, old-two",
        },
    )
    assert isinstance(mw.store, DictStore)
    assert mw.store.default_ttl == 5
    assert len(mw.keyring.keys) == 3


def test_a_store_from_the_environment_drops_the_file_store_options() -> None:
    mw = configured(
        {
            "secret_key": SECRET,
            "store": "wsgisession.LRUStore",
            "store_options": {"max_entries": 3},
        },
        WSGISESSION_STORE="cookie://",
    )
    assert isinstance(mw.store, CookieStore)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "secret_key is not set.*WSGISESSION_SECRET_KEY"),
        (
            {"secret_key": SECRET, "max_agee": 5},
            "unknown setting 'max_agee': did you mean 'max_age'",
        ),
        ({"secret_key": SECRET, "store": "myapp.nowhere.Store"}, "could not be imported"),
        ({"secret_key": SECRET, "store": "wsgisession.NoSuchStore"}, "has no 'NoSuchStore'"),
        ({"secret_key": SECRET, "store": "wsgisession.Session"}, "not a ClientSessionStore"),
        ({"secret_key": SECRET, "store": "Store"}, "could not be imported: a store is a URL or a"),
        (
            {"secret_key": SECRET, "store": "wsgisession.LRUStore", "store_options": {"size": 1}},
            "unknown store option 'size'.*max_entries",
        ),
        (
            {"secret_key": SECRET, "store": "memory://", "store_options": {"max_entries": 1}},
            "put the options in the URL",
        ),
        ({"secret_key": SECRET, "store_options": {"x": 1}}, "store is not"),
        ({"secret_key": SECRET, "max_age": "two weeks"}, "max_age must be a whole number"),
        ({"secret_key": SECRET, "httponly": "maybe"}, "httponly must be true or false"),
        ({"secret_key": SECRET, "fallback_secret_keys": 5}, "fallback_secret_keys must be"),
    ],
)
def test_a_bad_config_names_the_setting(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        configured(config)


def test_a_bad_environment_variable_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="STORE_OPTIONS must be a JSON object"):
        configured({"secret_key": SECRET}, WSGISESSION_STORE_OPTIONS="max_entries=5")


def test_a_missing_or_invalid_toml_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the config file"):
        configured(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("secret_key = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        configured(bad)
