"""Switching from Django's session engines to ours without logging anyone out.

Django's own SessionMiddleware and engine write the session first: its test client
logs a user in and a view fills a cart. Then the project switches ``MIDDLEWARE`` and
``SESSION_ENGINE`` to ours with ``WSGISESSION["migrate_from"]`` naming the old
engine, and the next request, through our integration, has the cart and the
logged-in user: for each engine (db, cache on locmem and on Redis, cached_db, file,
signed_cookies), on our stores. The lifetime Django's ``set_expiry()`` gave a session
comes along: a login that was to end with the browser still does.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from werkzeug.test import Client

from wsgisession import (
    ClientSessionStore,
    ServerSessionStore,
    revoke_all,
    session,
    sessions_of,
)
from wsgisession.contrib.django import DjangoEngineReader, wrap
from wsgisession.errors import ConfigurationError

from .conftest import REDIS_RUN_PREFIX, SECRET, STORES, Clock, drop_store
from .djangoapp import _UrlConf, django_app, migrate
from .services import require_redis

Store = ClientSessionStore | ServerSessionStore

DJANGO_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
OUR_MIDDLEWARE = [
    "wsgisession.contrib.django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
OUR_ENGINE = "wsgisession.contrib.django.engine"
ENGINE = "django.contrib.sessions.backends."
TWO_WEEKS = 14 * 86400


def urls() -> _UrlConf:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def whoami(request: HttpRequest) -> HttpResponse:
        user = request.user
        name = user.get_username() if user.is_authenticated else "anonymous"
        return HttpResponse(f"{name}|{','.join(request.session.get('cart', []))}")

    def buy(request: HttpRequest) -> HttpResponse:
        request.session.setdefault("cart", []).append(request.GET["item"])
        request.session.modified = True  # for Django's engines: a change in place
        return HttpResponse(",".join(request.session["cart"]))

    def set_expiry(request: HttpRequest) -> HttpResponse:
        if "seconds" in request.GET:
            request.session.set_expiry(int(request.GET["seconds"]))  # 0: "remember me" unticked
        else:
            request.session.set_expiry(timedelta(hours=float(request.GET["hours"])))
        return HttpResponse(",".join(sorted(request.session.keys())))

    def lifetime(request: HttpRequest) -> HttpResponse:
        # Django's getters first: they see the carried lifetime at the session's first use.
        django_session = request.session
        ends = django_session.get_expire_at_browser_close()
        age = django_session.get_expiry_age()
        user = request.user
        name = user.get_username() if user.is_authenticated else "anonymous"
        return HttpResponse(f"{name}|{ends}|{age}|{','.join(sorted(django_session.keys()))}")

    def core_cart(request: HttpRequest) -> HttpResponse:
        # wsgisession's own session, not request.session (nor request.user).
        return HttpResponse(",".join(session.get("cart", [])))

    def devices(request: HttpRequest) -> HttpResponse:
        return HttpResponse(json.dumps([d.user_agent for d in sessions_of()]))

    def revoke(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(revoke_all(request.GET["pk"])))

    return _UrlConf(
        [
            path("whoami", whoami),
            path("buy", buy),
            path("set-expiry", set_expiry),
            path("lifetime", lifetime),
            path("core-cart", core_cart),
            path("devices", devices),
            path("revoke-all", revoke),
        ]
    )


# -- the engine being replaced ----------------------------------------------------


@dataclass
class OldEngine:
    """One of Django's engines, with the settings it reads (kept across the switch)."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return ENGINE + self.name

    @property
    def client_side(self) -> bool:
        return self.name == "signed_cookies"

    def store(self, key: str | None = None) -> Any:
        from importlib import import_module

        return import_module(self.path).SessionStore(session_key=key)


def locmem_caches() -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "old": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": uuid4().hex,
        },
    }


def redis_caches(url: str, prefix: str) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "old": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        },
    }


ENGINES = ["db", "cache-locmem", "cache-redis", "cached_db", "file", "signed_cookies"]
SERVER_ENGINES = [name for name in ENGINES if name != "signed_cookies"]


@pytest.fixture(scope="module")
def ada() -> Any:
    """The user, and the tables of django.contrib.sessions next to auth's."""
    migrate()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test.utils import modify_settings

    with modify_settings(INSTALLED_APPS={"append": "django.contrib.sessions"}):
        call_command("migrate", "sessions", verbosity=0, interactive=False)
    user = User.objects.filter(username="ada").first()
    return user or User.objects.create_user("ada", password="lovelace")


@pytest.fixture(params=ENGINES)
def old(request: pytest.FixtureRequest, tmp_path: Path, ada: Any) -> Iterator[OldEngine]:
    """The old engine, its settings in force for the whole test (the switch keeps them)."""
    with old_engine(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture(params=SERVER_ENGINES)
def old_server(request: pytest.FixtureRequest, tmp_path: Path, ada: Any) -> Iterator[OldEngine]:
    """Each server-side old engine."""
    with old_engine(request.param, tmp_path) as engine:
        yield engine


@contextmanager
def old_engine(kind: str, tmp_path: Path) -> Iterator[OldEngine]:
    from django.contrib.sessions.models import Session
    from django.test.utils import modify_settings, override_settings

    name, _, cache_kind = kind.partition("-")
    engine = OldEngine(name)
    prefix = f"{REDIS_RUN_PREFIX}django-{uuid4().hex[:12]}"
    if name in ("cache", "cached_db"):
        caches = redis_caches(require_redis(), prefix) if cache_kind else locmem_caches()
        engine.settings = {"CACHES": caches, "SESSION_CACHE_ALIAS": "old"}
    if name == "file":
        engine.settings = {"SESSION_FILE_PATH": str(tmp_path)}
    Session.objects.all().delete()
    try:
        with (
            modify_settings(INSTALLED_APPS={"append": "django.contrib.sessions"}),
            override_settings(ROOT_URLCONF=urls(), **engine.settings),
        ):
            forget_the_file_path()
            yield engine
    finally:
        if cache_kind:
            import redis

            client = redis.Redis.from_url(require_redis())
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)


def forget_the_file_path() -> None:
    """Django's file engine keeps the first SESSION_FILE_PATH it saw (its own tests
    delete it too)."""
    from django.contrib.sessions.backends.file import SessionStore

    if "_storage_path" in vars(SessionStore):
        del SessionStore._storage_path


@contextmanager
def djangos_own(engine: OldEngine) -> Iterator[None]:
    """Before the switch: Django's middleware and engine."""
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=DJANGO_MIDDLEWARE, SESSION_ENGINE=engine.path):
        yield


@contextmanager
def ours(engine: OldEngine, store: Store, **options: Any) -> Iterator[None]:
    """After the switch: our middleware and engine, reading the old engine's sessions."""
    from django.test.utils import override_settings

    wsgisession = {"store": store, "secret_key": SECRET, "migrate_from": engine.path}
    if engine.client_side:
        wsgisession["migrate_until"] = datetime.now(UTC) + timedelta(days=30)
    with override_settings(
        MIDDLEWARE=OUR_MIDDLEWARE,
        SESSION_ENGINE=OUR_ENGINE,
        WSGISESSION={**wsgisession, **options},
    ):
        yield


def client(cookies: dict[str, str] | None = None, agent: str = "laptop") -> Any:
    """A Django test client (with the middleware of the settings in force at its first
    request) that sends *cookies*."""
    from django.test import Client

    made = Client(HTTP_USER_AGENT=agent)
    for name, value in (cookies or {}).items():
        made.cookies[name] = value
    return made


def text(response: Any) -> str:
    return response.content.decode()  # type: ignore[no-any-return]


def logged_in_before_the_switch(engine: OldEngine) -> dict[str, str]:
    """Log ada in with Django's test client, fill a cart through Django's middleware;
    the cookies the browser then holds."""
    with djangos_own(engine):
        browser = client()
        assert browser.login(username="ada", password="lovelace")
        assert text(browser.get("/buy?item=tea")) == "tea"
        assert text(browser.get("/buy?item=jam")) == "tea,jam"
        assert text(browser.get("/whoami")) == "ada|tea,jam"
    return {name: morsel.value for name, morsel in browser.cookies.items()}


@pytest.fixture(params=["cookie", "sqlite", "redis"])
def some_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Our cookie, SQLite and Redis stores, for the stories that need not run on all."""
    made = STORES[request.param](tmp_path)
    yield made
    drop_store(made)


# -- the switch ---------------------------------------------------------------------


def test_a_session_of_the_old_engine_is_carried_over_with_its_login(
    old: OldEngine, store: Store
) -> None:
    cookies = logged_in_before_the_switch(old)
    old_value = cookies["sessionid"]

    with ours(old, store):
        browser = client(cookies)
        first = browser.get("/whoami")
        assert text(first) == "ada|tea,jam"
        # Ours replaces the old cookie of the same name: a new value, our lifetime.
        ours_now = first.cookies["sessionid"]
        assert ours_now.value not in ("", old_value)
        assert ours_now["max-age"] == TWO_WEEKS
        # From now on the session is ours, and goes on changing.
        assert text(browser.get("/buy?item=milk")) == "tea,jam,milk"
        assert text(browser.get("/whoami")) == "ada|tea,jam,milk"


def with_expiry(engine: OldEngine, cookies: dict[str, str], expiry: str) -> dict[str, str]:
    """``set_expiry()`` through Django's middleware and engine (``seconds=0``,
    ``hours=2`` …); the session cookie the browser then holds."""
    with djangos_own(engine):
        browser = client(cookies)
        assert "_session_expiry" in text(browser.get(f"/set-expiry?{expiry}"))
    return {"sessionid": browser.cookies["sessionid"].value}


def lifetime_of(morsel: Any) -> tuple[Any, Any]:
    """The Max-Age and Expires a Set-Cookie gives (``""``: none, a browser session)."""
    return morsel["max-age"], morsel["expires"]


KEYS = "_auth_user_backend,_auth_user_hash,_auth_user_id,cart"


@pytest.mark.parametrize("old", ["db", "signed_cookies"], indirect=True)
@pytest.mark.parametrize("kind", ["cookie", "sqlite"])
@pytest.mark.parametrize(
    ("expiry", "max_age", "getters"),
    [
        ("seconds=0", None, f"True|{TWO_WEEKS}"),  # "remember me" unticked
        ("seconds=3600", 3600, "False|3600"),
        (None, TWO_WEEKS, f"False|{TWO_WEEKS}"),  # Django's default: ours
    ],
)
def test_the_old_session_s_own_lifetime_is_carried_over(
    old: OldEngine,
    kind: str,
    tmp_path: Path,
    expiry: str | None,
    max_age: int | None,
    getters: str,
) -> None:
    cookies = logged_in_before_the_switch(old)
    if expiry is not None:
        cookies = with_expiry(old, cookies, expiry)
    with ours(old, STORES[kind](tmp_path)):
        browser = client(cookies)
        first = browser.get("/lifetime")
        # Still logged in, with the lifetime Django gave the session, and without
        # Django's key for it, from the session's first use on.
        assert text(first) == f"ada|{getters}|{KEYS}"
        ours_now = first.cookies["sessionid"]
        assert ours_now.value not in ("", cookies["sessionid"])
        if max_age is None:  # ends with the browser: neither Max-Age nor Expires
            assert lifetime_of(ours_now) == ("", "")
            assert "max-age" not in ours_now.output().lower()
            assert "expires" not in ours_now.output().lower()
        else:
            assert ours_now["max-age"] == max_age
            assert ours_now["expires"]
        # Kept with the session of ours from now on.
        assert text(browser.get("/buy?item=milk")) == "tea,jam,milk"
        assert text(browser.get("/lifetime")) == f"ada|{getters}|{KEYS}"


@pytest.mark.parametrize("old", ["db", "signed_cookies"], indirect=True)
def test_a_date_set_with_set_expiry_is_carried_over(old: OldEngine, tmp_path: Path) -> None:
    cookies = with_expiry(old, logged_in_before_the_switch(old), "hours=2")
    with ours(old, STORES["sqlite"](tmp_path)):
        browser = client(cookies)
        first = browser.get("/whoami")
        assert text(first) == "ada|tea,jam"
        assert 7200 - 60 <= first.cookies["sessionid"]["max-age"] <= 7200


@pytest.mark.parametrize("old", ["db", "signed_cookies"], indirect=True)
def test_expire_at_browser_close_is_carried_over_where_max_age_differs(
    old: OldEngine, tmp_path: Path
) -> None:
    from django.test.utils import override_settings

    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        cookies = logged_in_before_the_switch(old)
        # Ours is given a lifetime of its own: our new sessions get it…
        with ours(old, STORES["sqlite"](tmp_path), max_age=TWO_WEEKS):
            assert client().get("/buy?item=x").cookies["sessionid"]["max-age"] == TWO_WEEKS
            # … but the old ones ended with the browser, and still do.
            browser = client(cookies)
            first = browser.get("/lifetime")
            assert text(first) == f"ada|True|{TWO_WEEKS}|{KEYS}"
            assert lifetime_of(first.cookies["sessionid"]) == ("", "")


@pytest.mark.parametrize("old", ["db"], indirect=True)
def test_the_view_s_own_set_expiry_wins_over_the_carried_one(
    old: OldEngine, tmp_path: Path
) -> None:
    cookies = with_expiry(old, logged_in_before_the_switch(old), "seconds=0")
    with ours(old, STORES["cookie"](tmp_path)):
        browser = client(cookies)
        first = browser.get("/set-expiry?seconds=600")
        assert text(first) == KEYS
        assert first.cookies["sessionid"]["max-age"] == 600
        assert text(browser.get("/lifetime")) == f"ada|False|600|{KEYS}"


@pytest.mark.parametrize("old", ["signed_cookies"], indirect=True)
@pytest.mark.parametrize("expiry", ["seconds=3600", "hours=1"])
def test_a_signed_cookie_past_its_own_lifetime_is_not_carried_over(
    old: OldEngine, tmp_path: Path, clock: Clock, expiry: str
) -> None:
    cookies = with_expiry(old, logged_in_before_the_switch(old), expiry)
    with ours(old, STORES["cookie"](tmp_path)):
        clock.advance(3500)
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"
        # The browser dropped it an hour after it was set: only a copy sends it now
        # (Django itself checked SESSION_COOKIE_AGE only).
        clock.advance(200)
        assert text(client(cookies).get("/whoami")) == "anonymous|"


@pytest.mark.parametrize("old", ["db"], indirect=True)
@pytest.mark.parametrize("wrapped", [False, True], ids=["middleware", "wrap"])
def test_the_lifetime_is_carried_over_when_only_wsgisession_s_session_is_used(
    old: OldEngine, tmp_path: Path, wrapped: bool
) -> None:
    cookies = with_expiry(old, logged_in_before_the_switch(old), "seconds=0")
    with ours(old, STORES["sqlite"](tmp_path)):
        app = django_app(urls().urlpatterns, OUR_MIDDLEWARE)
        browser = Client(wrap(app) if wrapped else app)
        browser.set_cookie("sessionid", cookies["sessionid"])
        # Only wsgisession's session is used, never request.session: the cookie set
        # with the response (by the WSGI layer inside wrap()) still has the lifetime.
        first = browser.get("/core-cart")
        assert first.text == "tea,jam"
        (set_cookie,) = first.headers.getlist("Set-Cookie")
        assert set_cookie.strip().startswith("sessionid=")
        assert "max-age" not in set_cookie.lower()
        assert "expires" not in set_cookie.lower()
        assert browser.get("/lifetime").text == f"ada|True|{TWO_WEEKS}|{KEYS}"


def test_a_replayed_old_cookie_gets_a_fresh_session(
    old_server: OldEngine, some_store: Store
) -> None:
    cookies = logged_in_before_the_switch(old_server)
    with ours(old_server, some_store):
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"
        # The same old cookie again: a copy of the browser, or a thief.
        assert text(client(cookies).get("/whoami")) == "anonymous|"


def test_a_tampered_old_cookie_is_not_carried_over(old: OldEngine, some_store: Store) -> None:
    cookies = logged_in_before_the_switch(old)
    value = cookies["sessionid"]
    tampered = value[:-1] + ("a" if value[-1] != "a" else "b")
    with ours(old, some_store):
        assert text(client({"sessionid": tampered}).get("/whoami")) == "anonymous|"
        # The real one still works: the tampered cookie took nothing.
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"


@pytest.mark.parametrize("old", ["db"], indirect=True)
def test_a_tampered_old_record_is_not_carried_over(old: OldEngine, tmp_path: Path) -> None:
    from django.contrib.sessions.models import Session

    cookies = logged_in_before_the_switch(old)
    record = Session.objects.get(session_key=cookies["sessionid"])
    record.session_data = record.session_data[:-2] + "xx"
    record.save()
    with ours(old, STORES["cookie"](tmp_path)):
        assert text(client(cookies).get("/whoami")) == "anonymous|"


def expire(engine: OldEngine, key: str, clock: Clock) -> None:
    """Make the old session *key* expired, as time would."""
    from django.contrib.sessions.models import Session
    from django.core.cache import caches

    past = datetime.now(UTC) - timedelta(seconds=1)
    if engine.name in ("db", "cached_db"):
        Session.objects.filter(session_key=key).update(expire_date=past)
    if engine.name in ("cache", "cached_db"):
        caches["old"].touch(engine.store(key).cache_key, 0)
    if engine.name == "file":
        then = past.timestamp() - TWO_WEEKS
        os.utime(
            os.path.join(engine.settings["SESSION_FILE_PATH"], "sessionid" + key), (then, then)
        )
    if engine.name == "signed_cookies":
        clock.advance(TWO_WEEKS + 1)


def test_an_expired_old_session_is_not_carried_over(
    old: OldEngine, some_store: Store, clock: Clock
) -> None:
    cookies = logged_in_before_the_switch(old)
    expire(old, cookies["sessionid"], clock)
    with ours(old, some_store):
        assert text(client(cookies).get("/whoami")) == "anonymous|"


@pytest.mark.parametrize("old", ["signed_cookies"], indirect=True)
def test_a_signed_cookie_is_not_honoured_after_migrate_until(
    old: OldEngine, clock: Clock, tmp_path: Path
) -> None:
    cookies = logged_in_before_the_switch(old)
    until = datetime.fromtimestamp(clock.now, UTC) + timedelta(days=3)
    with ours(old, STORES["cookie"](tmp_path), migrate_until=until):
        # Client-side: nothing to delete, so a copy is honoured too, until the end date.
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"
        clock.advance(3 * 86400 + 1)
        assert text(client(cookies).get("/whoami")) == "anonymous|"


@pytest.mark.parametrize("old", ["signed_cookies"], indirect=True)
def test_signed_cookies_needs_migrate_until(old: OldEngine, tmp_path: Path) -> None:
    with (
        ours(old, STORES["cookie"](tmp_path), migrate_until=None),
        pytest.raises(ConfigurationError, match="migrate_until is required"),
    ):
        client().get("/whoami")


def test_a_password_changed_before_the_switch_still_ends_the_session(
    old: OldEngine, some_store: Store, ada: Any
) -> None:
    cookies = logged_in_before_the_switch(old)
    ada.set_password("changed")
    ada.save()
    try:
        with ours(old, some_store):
            # The carried _auth_user_hash no longer matches: auth flushes the session.
            assert text(client(cookies).get("/whoami")) == "anonymous|"
    finally:
        ada.set_password("lovelace")
        ada.save()


def test_an_old_cookie_of_another_name_is_deleted(old: OldEngine, some_store: Store) -> None:
    cookies = logged_in_before_the_switch(old)
    with ours(old, some_store, cookie_name="wsid"):
        browser = client(cookies)
        first = browser.get("/whoami")
        assert text(first) == "ada|tea,jam"
        assert first.cookies["wsid"].value
        gone = first.cookies["sessionid"]
        assert (gone.value, gone["max-age"], gone["path"]) == ("", 0, "/")
        assert text(browser.get("/whoami")) == "ada|tea,jam"


def test_two_requests_racing_with_one_old_cookie_carry_it_once(
    old_server: OldEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsgisession.contrib.django import _migration as migration

    cookies = logged_in_before_the_switch(old_server)
    reader = DjangoEngineReader(old_server.path)
    load = migration._load
    raced: list[Any] = []

    def racing(store: Any) -> Any:
        data = load(store)
        if not raced:
            # Another request reads the same session between this one's read and delete.
            raced.append(None)
            raced[0] = reader.read(cookies["sessionid"])
        return data

    monkeypatch.setattr(migration, "_load", racing)
    assert reader.read(cookies["sessionid"]) is None
    assert raced[0]["cart"] == ["tea", "jam"]
    assert reader.read(cookies["sessionid"]) is None


def test_remaining_counts_the_old_sessions_left(old: OldEngine, tmp_path: Path) -> None:
    from wsgisession.contrib.django import _config

    cookies = logged_in_before_the_switch(old)
    reader = DjangoEngineReader(old.path)
    expected = {"db": 1, "cached_db": 1, "file": 1}.get(old.name)
    assert reader.remaining() == expected
    with ours(old, STORES["sqlite"](tmp_path)):
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"
        migration = _config.core_middleware().migration
        assert migration is not None
        status = migration.status()
    assert status.carried == 1
    assert status.remaining == (None if expected is None else 0)
    assert status.done is (expected is not None)


def test_a_carried_over_login_is_a_device_and_revoke_all_ends_it(
    old_server: OldEngine, server_store: ServerSessionStore, ada: Any
) -> None:
    cookies = logged_in_before_the_switch(old_server)
    with ours(old_server, server_store, track_devices=True):
        laptop, admin = client(cookies, "laptop"), client(agent="admin")
        assert text(laptop.get("/whoami")) == "ada|tea,jam"
        assert json.loads(text(laptop.get("/devices"))) == ["laptop"]
        assert text(admin.get(f"/revoke-all?pk={ada.pk}")) == "1"
        assert text(laptop.get("/whoami")) == "anonymous|"


# -- outages ------------------------------------------------------------------------


@pytest.mark.parametrize("old", ["db", "cached_db"], indirect=True)
def test_a_database_outage_answers_503_and_keeps_the_old_session(
    old: OldEngine, tmp_path: Path
) -> None:
    from django.db import OperationalError, connection

    cookies = logged_in_before_the_switch(old)

    def down(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if "django_session" in sql:
            raise OperationalError("the database is down")
        return execute(sql, *args)

    with ours(old, STORES["sqlite"](tmp_path)):
        with connection.execute_wrapper(down):
            answer = client(cookies).get("/whoami")
        assert answer.status_code == 503
        assert "Retry-After" in answer
        assert "sessionid" not in answer.cookies
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"


@pytest.mark.parametrize("old", ["cache-redis", "cached_db-redis"], indirect=True)
def test_a_redis_cache_outage_answers_503_and_keeps_the_old_session(
    old: OldEngine, tmp_path: Path
) -> None:
    from django.test.utils import override_settings

    cookies = logged_in_before_the_switch(old)
    prefix = old.settings["CACHES"]["old"]["KEY_PREFIX"]
    with ours(old, STORES["sqlite"](tmp_path)):
        with override_settings(CACHES=redis_caches("redis://127.0.0.1:1/0", prefix)):
            assert client(cookies).get("/whoami").status_code == 503
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"


# -- never pickle -------------------------------------------------------------------


class PickleSerializer:
    """What Django's PickleSerializer was (removed in Django 5.0): a project may still
    have one of its own in SESSION_SERIALIZER."""

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - the old project's, never called by ours


class Plant:
    """Unpickling this creates a file: proof that the pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("old", ["db"], indirect=True)
def test_a_pickle_serializer_is_never_used_and_its_sessions_are_not_carried_over(
    old: OldEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from django.test.utils import override_settings

    engine = old
    planted = tmp_path / "planted"
    with override_settings(SESSION_SERIALIZER=f"{__name__}.PickleSerializer"):
        with djangos_own(engine):
            browser = client()
            assert browser.login(username="ada", password="lovelace")
            old = engine.store(browser.cookies["sessionid"].value)
            old["plant"] = Plant(planted)
            old.save()
            assert not planted.exists()
        with (
            caplog.at_level(logging.WARNING, logger="wsgisession"),
            ours(engine, STORES["sqlite"](tmp_path)),
        ):
            assert text(client({"sessionid": old.session_key}).get("/whoami")) == "anonymous|"
    assert not planted.exists()
    assert f"SESSION_SERIALIZER is '{__name__}.PickleSerializer'" in caplog.text


# -- settings -----------------------------------------------------------------------


@pytest.mark.parametrize("old", ["db"], indirect=True)
def test_an_engine_path_in_the_environment_is_read_too(
    old: OldEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookies = logged_in_before_the_switch(old)
    monkeypatch.setenv("WSGISESSION_MIGRATE_FROM", old.path)
    with ours(old, STORES["cookie"](tmp_path), migrate_from=None):
        assert text(client(cookies).get("/whoami")) == "ada|tea,jam"


@pytest.mark.parametrize("old", ["db"], indirect=True)
def test_what_is_not_an_engine_is_refused_at_start_up(old: OldEngine, tmp_path: Path) -> None:
    from django.test.utils import override_settings

    with pytest.raises(ConfigurationError, match="not a Django session engine"):
        DjangoEngineReader("django.contrib.auth")
    with (
        ours(old, STORES["cookie"](tmp_path), migrate_from="django.contrib.auth.models"),
        pytest.raises(ConfigurationError, match="migrate_from"),
    ):
        client().get("/whoami")
    forget_the_file_path()
    with (
        override_settings(SESSION_FILE_PATH=str(tmp_path / "missing")),
        pytest.raises(ConfigurationError, match="SESSION_FILE_PATH"),
    ):
        DjangoEngineReader(ENGINE + "file")


#: A Django project mid-migration from the db engine, as `wsgisession
#: migration-status` loads it: one old session left in django_session.
MIGRATING_PROJECT = """
import django
from django.conf import settings

settings.configure(
    SECRET_KEY="a key long enough for Django's checks, for this test only",
    INSTALLED_APPS=[
        "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"
    ],
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "{db}"}}}},
    MIDDLEWARE=["wsgisession.contrib.django.SessionMiddleware"],
    SESSION_ENGINE="wsgisession.contrib.django.engine",
    WSGISESSION={{"store": "memory://", "migrate_from": "django.contrib.sessions.backends.db"}},
    ROOT_URLCONF=[],
    USE_TZ=True,
)
django.setup()

from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

call_command("migrate", verbosity=0)
old = SessionStore()
old["cart"] = ["apple"]
old.create()
application = get_wsgi_application()
"""


def test_migration_status_counts_the_old_sessions_of_a_django_project(tmp_path: Path) -> None:
    (tmp_path / "migrating_project.py").write_text(
        MIGRATING_PROJECT.format(db=tmp_path / "db.sqlite3")
    )
    done = subprocess.run(
        [sys.executable, "-m", "wsgisession", "migration-status", "migrating_project:application"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "reading: DjangoEngineReader ('sessionid' cookies)" in done.stdout
    assert "old sessions not carried over yet: 1" in done.stdout
    assert "not done: keep the reader" in done.stdout
