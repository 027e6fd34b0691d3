"""Switching a Flask app to wsgisession without logging anyone out.

The old sessions are written by the real libraries being replaced: Flask 3.1's own
cookie session and Flask-Session 0.8 (on Redis, and in SQLite through SQLAlchemy),
each driven by Flask's test client with Flask-Login logging a user in. The same
cookie is then sent to the app after the switch (``init_app(app, store=...,
migrate_from="flask" | "flask-session")``), on every one of our stores: the next
request has the data and the login, once.
"""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import flask
import flask_login
import flask_session
import pytest
import redis
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine

from wsgisession import RedisStore, ServerSessionStore, revoke_all, sessions_of
from wsgisession.contrib.flask import FlaskSessionMiddleware, init_app
from wsgisession.errors import ConfigurationError, StoreUnavailable

from .conftest import REDIS_RUN_PREFIX, SECRET, Clock, set_cookies
from .services import require_redis

SITE = "http://shop.test"
OLD_SECRET = "the-old-secret-key-before-the-switch-0123456789"


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def shop(**config: Any) -> flask.Flask:
    """The app, before and after the switch: Flask-Login and a cart in the session."""
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config.update(TESTING=True, **config)
    manager = flask_login.LoginManager(app)

    @manager.user_loader
    def load(user_id: str) -> User:
        return User(user_id)

    @app.post("/login")
    def login() -> str:
        flask_login.login_user(User(flask.request.args.get("user", "ann")))
        flask.session["cart"] = ["apple"]
        flask.session.permanent = flask.request.args.get("remember") == "1"
        return "in"

    @app.get("/whoami")
    def whoami() -> str:
        user = flask_login.current_user
        name = user.id if user.is_authenticated else "anonymous"
        return f"{name}|{','.join(flask.session.get('cart', []))}"

    @app.post("/add")
    def add() -> str:
        flask.session["cart"] = [*flask.session.get("cart", []), flask.request.args["item"]]
        return "added"

    @app.get("/devices")
    @flask_login.login_required
    def devices() -> str:
        return json.dumps([device.current for device in sessions_of()])

    @app.post("/revoke-all")
    @flask_login.login_required
    def revoke() -> str:
        return str(revoke_all(flask_login.current_user.id))

    return app


def until(days: float = 31) -> datetime:
    return datetime.fromtimestamp(time.time(), UTC) + timedelta(days=days)


def middleware(app: flask.Flask) -> FlaskSessionMiddleware:
    sessions: FlaskSessionMiddleware = app.extensions["wsgisession"]
    return sessions


def old_cookie(client: FlaskClient, name: str = "session", **where: Any) -> str:
    cookie = client.get_cookie(name, **where)
    assert cookie is not None, "the old system set no cookie"
    return cookie.value


def browser_with(app: flask.Flask, value: str, name: str = "session", **where: Any) -> FlaskClient:
    """A browser that comes back after the switch with the old system's cookie."""
    client = app.test_client()
    client.set_cookie(name, value, **where)
    return client


# -- Flask's own cookie session ---------------------------------------------------


def flask_cookie_of_a_login(remember: bool = True, **config: Any) -> str:
    """Flask's own session, after a Flask-Login login: the cookie's value."""
    old = shop(**config)
    client = old.test_client()
    assert client.post(f"/login?remember={int(remember)}").text == "in"
    assert client.get("/whoami").text == "ann|apple"
    return old_cookie(client)


def test_a_flask_cookie_session_is_carried_over_with_its_login(store: Any) -> None:
    value = flask_cookie_of_a_login()
    app = shop()
    init_app(app, store=store, migrate_from="flask", migrate_until=until())
    browser = browser_with(app, value)

    first = browser.get("/whoami")
    assert first.text == "ann|apple"
    # The old cookie had our name: ours replaces it (no deletion), and keeps its
    # "remember me": a permanent session lasts PERMANENT_SESSION_LIFETIME.
    (ours,) = set_cookies(first)
    assert ours.startswith("session=")
    assert "Max-Age=2678400" in ours
    assert old_cookie(browser) != value

    assert browser.post("/add?item=pear").text == "added"
    assert browser.get("/whoami").text == "ann|apple,pear"
    status = middleware(app).session_middleware().migration.status()  # type: ignore[union-attr]
    assert status.carried == 1
    assert status.remaining is None


def test_a_browser_session_of_flask_stays_a_browser_session(store: Any) -> None:
    value = flask_cookie_of_a_login(remember=False)
    app = shop()
    init_app(app, store=store, migrate_from="flask", migrate_until=until())
    first = browser_with(app, value).get("/whoami")
    assert first.text == "ann|apple"
    (ours,) = set_cookies(first)
    assert "Max-Age" not in ours
    assert "Expires" not in ours


def test_a_flask_cookie_signed_with_a_fallback_key_is_carried_over(store: Any) -> None:
    old = shop()
    old.secret_key = OLD_SECRET
    client = old.test_client()
    client.post("/login")
    app = shop(SECRET_KEY_FALLBACKS=[OLD_SECRET])  # the key rotated at the switch
    init_app(app, store=store, migrate_from="flask", migrate_until=until())
    assert browser_with(app, old_cookie(client)).get("/whoami").text == "ann|apple"


def test_a_tampered_or_expired_flask_cookie_is_not_carried_over(
    store: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    value = flask_cookie_of_a_login(PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    app = shop(PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    init_app(app, store=store, migrate_from="flask", migrate_until=until(days=1))

    signed, _, signature = value.rpartition(".")
    forged = signed + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert browser_with(app, forged).get("/whoami").text == "anonymous|"
    assert browser_with(app, value + "x").get("/whoami").text == "anonymous|"

    clock.advance(3601)  # older than PERMANENT_SESSION_LIFETIME: Flask refuses it too
    with caplog.at_level(logging.INFO, logger="wsgisession"):
        assert browser_with(app, value).get("/whoami").text == "anonymous|"
    assert "carried a session over" not in caplog.text


def test_a_flask_cookie_is_not_honoured_after_migrate_until(store: Any, clock: Clock) -> None:
    value = flask_cookie_of_a_login()
    app = shop()
    init_app(app, store=store, migrate_from="flask", migrate_until=until(days=2))
    clock.advance(86400)
    assert browser_with(app, value).get("/whoami").text == "ann|apple"
    clock.advance(86400 + 1)  # the cookie is still valid for Flask, but the switch is over
    assert browser_with(app, value).get("/whoami").text == "anonymous|"


def test_the_old_cookie_is_deleted_with_its_path_and_domain_when_ours_has_another_name(
    store: Any,
) -> None:
    where = {"SESSION_COOKIE_DOMAIN": "shop.test", "SESSION_COOKIE_PATH": "/shop/"}
    old, app = shop(**where), shop(**where)
    for each in (old, app):
        each.add_url_rule("/shop/whoami", "shop_whoami", each.view_functions["whoami"])
    client = old.test_client()
    client.post("/login", base_url=SITE)
    value = old_cookie(client, domain="shop.test", path="/shop/")

    init_app(app, store=store, cookie_name="sid", migrate_from="flask", migrate_until=until())
    browser = browser_with(app, value, domain="shop.test", path="/shop/")
    first = browser.get("/shop/whoami", base_url=SITE)
    assert first.text == "ann|apple"
    cookies = set_cookies(first)
    assert any(c.startswith("sid=") and "Domain=shop.test" in c for c in cookies)
    (deletion,) = [c for c in cookies if c.startswith("session=")]
    assert "Max-Age=0" in deletion
    assert "Domain=shop.test" in deletion
    assert "Path=/shop/" in deletion
    assert browser.get_cookie("session", domain="shop.test", path="/shop/") is None
    assert browser.get("/shop/whoami", base_url=SITE).text == "ann|apple"


def test_migrate_from_flask_needs_migrate_until_and_says_so() -> None:
    with pytest.raises(ConfigurationError, match=r"Flask's cookie sessions.*migrate_until"):
        init_app(shop(), migrate_from="flask")
    with pytest.raises(ConfigurationError, match="more than 400 days away"):
        init_app(shop(), migrate_from="flask", migrate_until=until(days=500))
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        init_app(shop(), migrate_from="flask", migrate_until=datetime(2027, 1, 1))
    with pytest.raises(ConfigurationError, match="without migrate_from"):
        init_app(shop(), migrate_until=until())
    with pytest.raises(ConfigurationError, match="'flask' reads Flask's cookie sessions"):
        init_app(shop(), migrate_from="flask-sessions")


def test_the_reader_may_be_named_in_the_environment(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = flask_cookie_of_a_login()
    monkeypatch.setenv("WSGISESSION_MIGRATE_FROM", "flask")
    monkeypatch.setenv("WSGISESSION_MIGRATE_UNTIL", until().isoformat())
    app = shop()
    init_app(app, store=store)
    assert browser_with(app, value).get("/whoami").text == "ann|apple"


# -- Flask-Session 0.8 ---------------------------------------------------------------

#: Set when a pickled record is unpickled: it must never be.
UNPICKLED: list[str] = []


def _tripwire() -> None:
    UNPICKLED.append("unpickled")


class Tripwire:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_tripwire, ())


class FlaskSessionBackend:
    """Flask-Session's settings for one backend, and a look at its records from outside."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.prefix = f"{REDIS_RUN_PREFIX}flask-session:{uuid4().hex[:12]}:"
        self.config: dict[str, Any] = {"SESSION_KEY_PREFIX": self.prefix}
        self.databases: list[SQLAlchemy] = []
        self.apps: list[flask.Flask] = []
        if kind.startswith("redis"):
            self.client = redis.Redis.from_url(require_redis())
            self.config.update(SESSION_TYPE="redis", SESSION_REDIS=self.client)
        else:
            self.path = tmp_path / "flask-session.sqlite3"
            self.config.update(
                SESSION_TYPE="sqlalchemy", SQLALCHEMY_DATABASE_URI=f"sqlite:///{self.path}"
            )
        if kind.endswith("json"):
            self.config["SESSION_SERIALIZATION_FORMAT"] = "json"

    def app(self, **config: Any) -> flask.Flask:
        """The shop with Flask-Session's settings in its config (its own SQLAlchemy)."""
        app = shop(**self.config, **config)
        if self.kind == "sqlalchemy":
            db = SQLAlchemy()
            db.init_app(app)
            app.config["SESSION_SQLALCHEMY"] = db
            self.databases.append(db)
        self.apps.append(app)
        return app

    def old_app(self, **config: Any) -> flask.Flask:
        """The shop before the switch: Flask-Session's own session interface."""
        app = self.app(**config)
        if app.config.get("SESSION_USE_SIGNER"):
            with pytest.warns(DeprecationWarning, match="use_signer"):
                flask_session.Session(app)
        else:
            flask_session.Session(app)
        return app

    def login(self, user: str = "ann", **config: Any) -> str:
        """A Flask-Login login on Flask-Session: the value of its cookie."""
        client = self.old_app(**config).test_client()
        assert client.post(f"/login?user={user}&remember=1").text == "in"
        assert client.get("/whoami").text == f"{user}|apple"
        return old_cookie(client)

    def records(self) -> list[str]:
        """The session ids of the records Flask-Session's store holds."""
        if self.kind.startswith("redis"):
            keys = self.client.scan_iter(match=self.prefix + "*")
            return sorted(key.decode()[len(self.prefix) :] for key in keys)
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute("SELECT session_id FROM sessions").fetchall()
        conn.close()
        return sorted(row[0][len(self.prefix) :] for row in rows)

    def write(self, sid: str, raw: bytes) -> None:
        """A record written as an older Flask-Session wrote it."""
        if self.kind.startswith("redis"):
            self.client.set(self.prefix + sid, raw, ex=3600)
            return
        expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
        with sqlite3.connect(self.path) as conn:
            conn.execute(
                "INSERT INTO sessions (session_id, data, expiry) VALUES (?, ?, ?)",
                (self.prefix + sid, raw, expiry.strftime("%Y-%m-%d %H:%M:%S.%f")),
            )
        conn.close()

    def expire(self, sid: str) -> None:
        """Let the record reach its end, as its TTL or expiry column says."""
        if self.kind.startswith("redis"):
            self.client.pexpire(self.prefix + sid, 1)
            time.sleep(0.01)
            return
        past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
        with sqlite3.connect(self.path) as conn:
            conn.execute(
                "UPDATE sessions SET expiry = ? WHERE session_id = ?",
                (past.strftime("%Y-%m-%d %H:%M:%S.%f"), self.prefix + sid),
            )
        conn.close()

    def close(self) -> None:
        if self.kind.startswith("redis"):
            keys = list(self.client.scan_iter(match=self.prefix + "*"))
            if keys:
                self.client.delete(*keys)
            self.client.close()
        for db in self.databases:
            for app in self.apps:
                with app.app_context(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an app this database is not on
                    try:
                        engines = list(db.engines.values())
                    except RuntimeError:
                        continue
                for engine in engines:
                    engine.dispose()


@pytest.fixture(params=["redis", "sqlalchemy"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FlaskSessionBackend]:
    """Flask-Session on Redis (a key prefix of this test's), then on SQLite."""
    made = FlaskSessionBackend(request.param, tmp_path)
    yield made
    made.close()


def switched(backend: FlaskSessionBackend, store: Any, **options: Any) -> flask.Flask:
    """The shop after the switch, Flask-Session's settings still in its config."""
    app = backend.app()
    init_app(app, store=store, migrate_from="flask-session", **options)
    return app


def status(app: flask.Flask) -> Any:
    migration = middleware(app).session_middleware().migration  # type: ignore[union-attr]
    assert migration is not None
    return migration.status()


def test_a_flask_session_session_is_carried_over_with_its_login(
    store: Any, backend: FlaskSessionBackend
) -> None:
    value = backend.login()
    backend.login("bob")
    assert len(backend.records()) == 2
    app = switched(backend, store)
    assert status(app).remaining == 2

    browser = browser_with(app, value)
    first = browser.get("/whoami")
    assert first.text == "ann|apple"
    (ours,) = set_cookies(first)  # ours replaces the old cookie, of the same name
    assert "Max-Age=2678400" in ours  # "remember me" (session.permanent) is kept
    assert value not in backend.records(), "the old record is deleted as it is read"
    assert browser.post("/add?item=pear").text == "added"
    assert browser.get("/whoami").text == "ann|apple,pear"
    done = status(app)
    assert (done.carried, done.remaining, done.done) == (1, 1, False)


def test_a_replayed_flask_session_cookie_gets_a_fresh_session(
    store: Any, backend: FlaskSessionBackend
) -> None:
    value = backend.login()
    app = switched(backend, store)
    assert browser_with(app, value).get("/whoami").text == "ann|apple"
    # The same old cookie again: a copy of the browser, or a thief.
    assert browser_with(app, value).get("/whoami").text == "anonymous|"
    assert status(app).done


def test_concurrent_requests_with_one_old_cookie_carry_it_over_once(
    backend: FlaskSessionBackend,
) -> None:
    value = backend.login()
    reader: Any = middleware(switched(backend, None)).options["migrate_from"]
    start = threading.Barrier(8)
    results: list[dict[str, Any] | None] = []

    def read() -> None:
        start.wait()
        results.append(reader.read(value))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    carried = [data for data in results if data is not None]
    assert len(results) == 8
    assert [data["_user_id"] for data in carried] == ["ann"]


def test_without_delete_returning_the_delete_count_decides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A database without ``DELETE ... RETURNING`` (MySQL): select, then delete."""
    backend = FlaskSessionBackend("sqlalchemy", tmp_path)
    try:
        value = backend.login()
        app = switched(backend, None)
        reader: Any = middleware(app).options["migrate_from"]
        monkeypatch.setattr(reader.engine.dialect, "delete_returning", False)
        assert browser_with(app, value).get("/whoami").text == "ann|apple"
        assert browser_with(app, value).get("/whoami").text == "anonymous|"
        assert backend.records() == []
    finally:
        backend.close()


def test_a_signed_flask_session_cookie_is_carried_over_and_a_tampered_one_is_not(
    store: Any, backend: FlaskSessionBackend
) -> None:
    backend.config["SESSION_USE_SIGNER"] = True  # before the switch and after it
    value = backend.login()
    sid, _, signature = value.rpartition(".")
    assert sid in backend.records()
    app = switched(backend, store)
    forged = sid + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert browser_with(app, forged).get("/whoami").text == "anonymous|"
    assert browser_with(app, sid).get("/whoami").text == "anonymous|"  # unsigned
    assert sid in backend.records(), "a refused cookie leaves the record alone"
    assert browser_with(app, value).get("/whoami").text == "ann|apple"
    assert backend.records() == []


def test_an_expired_flask_session_record_is_not_carried_over(
    store: Any, backend: FlaskSessionBackend
) -> None:
    value = backend.login()
    backend.login("bob")
    backend.expire(value)
    app = switched(backend, store)
    assert status(app).remaining == 1  # bob's
    assert browser_with(app, value).get("/whoami").text == "anonymous|"


def test_a_pickled_flask_session_record_is_never_unpickled(
    store: Any, backend: FlaskSessionBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.old_app()  # Flask-Session creates its table
    sid = "pickled-by-flask-session-0-6-abcdefghijklmnop"
    # What Flask-Session before 0.7 wrote: the session dict, pickled.
    backend.write(sid, pickle.dumps({"_user_id": "ann", "cart": ["apple"], "x": Tripwire()}))
    app = switched(backend, store)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        assert browser_with(app, sid).get("/whoami").text == "anonymous|"
    assert UNPICKLED == []
    assert "in pickle format" in caplog.text
    assert "Convert such records with Flask-Session" in caplog.text


def test_an_old_store_outage_answers_503_and_keeps_the_old_record(
    backend: FlaskSessionBackend, tmp_path: Path
) -> None:
    value = backend.login()
    app = switched(backend, None)
    reader: Any = middleware(app).options["migrate_from"]
    if backend.kind == "redis":
        dead = redis.Redis(port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        working, reader.client = reader.client, dead
    else:
        missing = tmp_path / "no such folder" / "sessions.sqlite3"
        working, reader.engine = reader.engine, create_engine(f"sqlite:///{missing}")
    response = browser_with(app, value).get("/whoami")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert value in backend.records()
    with pytest.raises(StoreUnavailable, match="Flask-Session's"):
        status(app)

    if backend.kind == "redis":
        reader.client.close()
        reader.client = working
    else:
        reader.engine.dispose()
        reader.engine = working
    assert browser_with(app, value).get("/whoami").text == "ann|apple"


def test_flask_session_json_records_are_read_too(store: Any, tmp_path: Path) -> None:
    backend = FlaskSessionBackend("redis-json", tmp_path)
    try:
        value = backend.login()
        raw = backend.client.get(backend.prefix + value)
        assert raw is not None
        assert raw.startswith(b"{")
        app = switched(backend, store)
        assert browser_with(app, value).get("/whoami").text == "ann|apple"
    finally:
        backend.close()


def test_a_redis_prefix_shared_with_flask_session_is_named_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FlaskSessionBackend("redis", tmp_path)
    prefixes = [backend.prefix, backend.prefix + "x:", f"{REDIS_RUN_PREFIX}other:"]
    stores = [RedisStore(require_redis(), prefix=prefix) for prefix in prefixes]
    try:
        for store, overlaps in zip(stores, [True, True, False], strict=True):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="wsgisession"):
                switched(backend, store)
            assert ("overlap" in caplog.text) is overlaps, store.prefix
    finally:
        for store in stores:
            store.close()
        backend.close()


@pytest.mark.parametrize("kind", ["filesystem", "cachelib", "memcached", "null"])
def test_a_flask_session_store_that_cannot_be_read_is_refused_at_init_app(kind: str) -> None:
    app = shop(SESSION_TYPE=kind)
    expected = {"memcached": "'redis' or", "null": "SESSION_TYPE is not set"}.get(
        kind, "never unpickles"
    )
    with pytest.raises(ConfigurationError, match=expected):
        init_app(app, migrate_from="flask-session")


# -- Flask-Login's devices ------------------------------------------------------------


@pytest.mark.parametrize("source", ["flask", "flask-session"])
def test_a_carried_over_login_is_a_device_listed_and_revocable(
    server_store: ServerSessionStore, source: str, tmp_path: Path
) -> None:
    backend = FlaskSessionBackend("redis", tmp_path)
    try:
        if source == "flask":
            value = flask_cookie_of_a_login()
            app = shop()
            init_app(
                app,
                store=server_store,
                track_devices=True,
                migrate_from="flask",
                migrate_until=until(),
            )
        else:
            value = backend.login()
            app = switched(backend, server_store, track_devices=True)
        browser = browser_with(app, value)
        assert browser.get("/whoami").text == "ann|apple"
        assert json.loads(browser.get("/devices").text) == [True]
        assert browser.post("/revoke-all").text == "1"
        assert browser.get("/whoami").text == "anonymous|"
    finally:
        backend.close()
