"""Write the upgrade fixtures of this version into ``tests/upgrade/fixtures/<major.minor>/``.

Run only when adding a NEW fixture set for a new version (at each minor release, see
docs/development.md); never regenerate an old one: an old set is what users of that
version hold, and it must keep reading as it was written. The script refuses to
touch a directory that exists.

    .venv/bin/python -m tests.upgrade.make_fixtures     # Redis and PostgreSQL must be up

It writes, with a fixed secret key, through the public API of this version (the
pages of ``tests/upgrade/site.py`` driven by werkzeug's test ``Client``):

- ``manifest.json``: the time written, the key, and each *site* (a store and its
  options, a plain WSGI, Flask or Django app) with its sessions: the cookies a
  browser holds and what each read page answered, in ``site.plain`` form;
- ``sqlite/sessions.sqlite3``: the SQLite store's file (records, devices, stamps);
- ``redis/keys.json``: every Redis key, relative to the store's prefix, with its
  type, fields, value and remaining TTL;
- ``postgres/tables.json``: the statements that made the tables and their rows,
  expiry kept as the seconds left.

The sessions hold a value of every type the serializer supports, a login, flash
messages, a CSRF secret (and a token issued for it), a typed ``SessionVar`` and a
device record; a long one is compressed, one has a lifetime of its own; a separate
signed cookie; cookie sessions revoked by a "not before" stamp in each server store;
and Flask's and Django's session cookies. ``test_read_old_versions.py`` reads every
set back, exactly.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from markupsafe import Markup
from werkzeug.test import Client

import wsgisession
from wsgisession import (
    CookieStore,
    PostgresStore,
    RedisStore,
    SessionMiddleware,
    SQLiteStore,
    track_devices,
)

from . import site

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Signs (and seals) every fixture. Published here on purpose: these are test data.
SECRET_KEY = "upgrade-fixtures-Zq4Kx9mW2pLr7TbN3vYc8Hd5Jf6Qs1"

REDIS_URL = os.environ.get("WSGISESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "WSGISESSION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

#: One value of every type the session serializer stores, nested and not.
DATA: dict[str, Any] = {
    "str": "plain text",
    "non_ascii": "Grüße,東京, שלום, emoji 🎉, and a NUL-free \u2028 separator",
    "empty_str": "",
    "int": 42,
    "negative_int": -7,
    "big_int": 2**70,
    "float": 3.25,
    "tiny_float": 1.5e-300,
    "negative_zero": -0.0,
    "true": True,
    "false": False,
    "none": None,
    "list": [1, "two", 3.0, None, True],
    "empty_list": [],
    "dict": {"a": 1, "b": [2, 3], "ключ": "значение"},
    "empty_dict": {},
    "nested": {"level1": {"level2": {"level3": [{"deep": True}, [1, [2, [3]]]]}}},
    "tuple": (1, "a", (2, 3)),
    "set": {1, 2, 3},
    "frozenset": frozenset({"x", "y"}),
    "bytes": b"\x00\x01binary\xff",
    "datetime_utc": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    "datetime_offset": datetime(
        2026, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))
    ),
    "datetime_naive": datetime(2026, 1, 2, 3, 4, 5),
    "date": date(2026, 2, 28),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("1234.5600"),
    "markup": Markup("<em>saved</em>"),
    "non_str_keys": {1: "one", (2, 3): "pair"},
    "looks_tagged": {" t": "a dict, not a tuple"},
    "tagged_in_a_list": [b"a", (1,), {2}, date(2026, 1, 1)],
}

#: Long enough to be compressed in a cookie (CookieStore's compress_min_size is 512).
NOTES = "Remember me: " + "the same words, again and again; " * 40

#: What the separate signed cookie holds.
SIGNED = {"lang": "fr", "since": date(2026, 3, 1), "pages": (1, 2)}

#: The browser of the logins a device record keeps (user agent and address).
BROWSER: dict[str, Any] = {
    "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 Ünï"},
    "environ_overrides": {"REMOTE_ADDR": "203.0.113.7"},
}

STORES = ("cookie", "cookie-encrypted", "sqlite", "redis", "postgres")
SERVER_STORES = ("sqlite", "redis", "postgres")


class Clock:
    """Stands in for ``time.time``: each step of the script a second after the last."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 1


def cookie_of(client: Client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie was set"
    return cookie.value


def read_pages(app: Any, cookies: dict[str, str], paths: list[str]) -> dict[str, Any]:
    """What each read page answers to a browser holding *cookies*."""
    client = Client(app)
    for name, value in cookies.items():
        client.set_cookie(name, value)
    pages = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        pages[path] = response.json
    return pages


# -- the sites -------------------------------------------------------------------


def wsgi_sites(stores: dict[str, Any], clock: Clock) -> list[dict[str, Any]]:
    """The plain WSGI sites: every store, then cookie sessions revoked by a stamp."""
    sites = []
    for kind in STORES:
        store, tracked = stores[kind], kind in SERVER_STORES
        options = {"cookie_name": "session"}
        writer = SessionMiddleware(
            site.write_app(DATA, NOTES, SIGNED), secret_key=SECRET_KEY, store=store, **options
        )
        reader = SessionMiddleware(
            site.read_app(tracked), secret_key=SECRET_KEY, store=store, **options
        )
        if tracked:
            track_devices(writer)
            track_devices(reader)
        client = Client(writer)
        token = client.get("/everything", **BROWSER).json["csrf_token"]
        cookies = {"session": cookie_of(client, "session")}
        paths = ["/data", "/user", "/flashes", "/var"] + (["/devices"] if tracked else [])
        if kind == "cookie":
            client.get("/signed")
            cookies[site.SIGNED_COOKIE] = cookie_of(client, site.SIGNED_COOKIE)
            paths.append("/signed")
        clock.tick()
        everything = {
            "name": "everything",
            "cookies": cookies,
            "csrf_token": token,
            "pages": read_pages(reader, cookies, paths),
        }
        assert everything["pages"]["/data"] == site.plain(
            {**DATA, str(site.Prefs.theme.key): "dark"}
        )
        client = Client(writer)
        client.get("/remembered")
        cookies = {"session": cookie_of(client, "session")}
        clock.tick()
        remembered = {
            "name": "remembered",
            "cookies": cookies,
            "pages": read_pages(reader, cookies, ["/data", "/user"]),
        }
        assert remembered["pages"]["/data"] == site.plain({"notes": NOTES})
        sites.append(
            {
                "name": kind,
                "site": "wsgi",
                "store": kind,
                "options": options,
                "tracked": tracked,
                "sessions": [everything, remembered],
            }
        )
    for kind in SERVER_STORES:
        sites.append(revoked_site(stores["cookie"], kind, stores[kind], clock))
    return sites


def revoked_site(cookie_store: Any, kind: str, stamps: Any, clock: Clock) -> dict[str, Any]:
    """Cookie sessions of two users, one of them revoked by a stamp in *stamps*."""
    options = {"cookie_name": "session"}
    writer = SessionMiddleware(
        site.write_app(DATA, NOTES, SIGNED), secret_key=SECRET_KEY, store=cookie_store, **options
    )
    reader = SessionMiddleware(
        site.read_app(False), secret_key=SECRET_KEY, store=cookie_store, **options
    )
    for middleware in (writer, reader):
        track_devices(middleware, revocation_store=stamps)
    sessions = []
    for user in ("carol", "mallory"):
        client = Client(writer)
        client.get(f"/login?user={user}")
        sessions.append({"name": user, "cookies": {"session": cookie_of(client, "session")}})
        clock.tick()
    Client(writer).get("/revoke-all?user=mallory")
    clock.tick()
    for entry in sessions:
        entry["pages"] = read_pages(reader, entry["cookies"], ["/user"])
    assert sessions[0]["pages"]["/user"] is not None, "carol is logged in"
    assert sessions[1]["pages"]["/user"] is None, "mallory's session was revoked"
    return {
        "name": f"cookie-revoked-by-{kind}",
        "site": "wsgi",
        "store": "cookie",
        "revocation_store": kind,
        "options": options,
        "tracked": True,
        "sessions": sessions,
    }


def flask_site(clock: Clock) -> dict[str, Any]:
    """Flask's ``init_app`` on the cookie store: a permanent session and a browser one."""
    app = site.flask_site(SECRET_KEY, CookieStore(), DATA)
    sessions = []
    for kind in ("permanent", "browser"):
        client = Client(app)
        client.get(f"/{kind}")
        cookies = {"session": cookie_of(client, "session")}
        clock.tick()
        pages = read_pages(site.flask_site(SECRET_KEY, CookieStore()), cookies, ["/data"])
        assert pages["/data"] == {"data": site.plain(DATA), "permanent": kind == "permanent"}
        sessions.append({"name": kind, "cookies": cookies, "pages": pages})
    return {
        "name": "flask",
        "site": "flask",
        "store": "cookie",
        "options": {},
        "sessions": sessions,
    }


def django_site(clock: Clock) -> dict[str, Any]:
    """Django's middleware on the cookie store: a session with an expiry of its own."""
    from ..djangoapp import django_app

    middleware = ["wsgisession.contrib.django.SessionMiddleware"]
    settings = {"store": CookieStore(), "secret_key": SECRET_KEY}
    client = Client(django_app(site.django_views(DATA), middleware, WSGISESSION=settings))
    client.get("/write")
    cookies = {"sessionid": cookie_of(client, "sessionid")}
    clock.tick()
    reader = django_app(site.django_views(), middleware, WSGISESSION=settings)
    pages = read_pages(reader, cookies, ["/data"])
    assert pages["/data"] == {"data": site.plain(DATA), "expiry_age": 3600}
    session = {"name": "expiry-of-its-own", "cookies": cookies, "pages": pages}
    return {
        "name": "django",
        "site": "django",
        "store": "cookie",
        "options": {},
        "sessions": [session],
    }


# -- the stores, made and dumped ----------------------------------------------------


@contextmanager
def stores(scratch: Path) -> Iterator[dict[str, Any]]:
    """Every store, empty: SQLite in *scratch*, Redis and PostgreSQL under names of their own."""
    token = uuid.uuid4().hex[:12]
    made = {
        "cookie": CookieStore(),
        "cookie-encrypted": CookieStore(encrypt=True),
        "sqlite": SQLiteStore(scratch / "sessions.sqlite3"),
        "redis": RedisStore(REDIS_URL, prefix=f"wsgisession-fixtures:{token}:"),
        "postgres": PostgresStore(POSTGRES_URL, schema=f"fixtures_{token}", table="sessions"),
    }
    try:
        yield made
    finally:
        redis, postgres = made["redis"], made["postgres"]
        keys = list(redis.client.scan_iter(match=redis.prefix + "*"))
        if keys:
            redis.client.delete(*keys)
        for store in (made["sqlite"], redis, postgres):
            store.close()
        with _postgres() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{postgres.schema}" CASCADE')


@contextmanager
def _postgres() -> Iterator[Any]:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        yield conn


def dump_sqlite(store: SQLiteStore, target: Path) -> dict[str, Any]:
    store.close()
    conn = sqlite3.connect(store.path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    finally:
        conn.close()
    target.mkdir(parents=True)
    shutil.copyfile(store.path, target / "sessions.sqlite3")
    return {"file": "sqlite/sessions.sqlite3"}


def _bytes(value: bytes) -> dict[str, str]:
    try:
        return {"text": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def dump_redis(store: RedisStore, target: Path) -> dict[str, Any]:
    client, prefix = store.client, store.prefix.encode()
    keys = []
    for name in sorted(client.scan_iter(match=prefix + b"*")):
        kind = client.type(name).decode()
        entry: dict[str, Any] = {
            "key": name[len(prefix) :].decode(),
            "type": kind,
            "ttl_ms": client.pttl(name),
        }
        if kind == "hash":
            fields = sorted(client.hgetall(name).items())
            entry["fields"] = {field.decode(): _bytes(value) for field, value in fields}
        elif kind == "string":
            entry["value"] = _bytes(client.get(name))
        else:
            raise TypeError(f"a Redis {kind} under {name!r}: teach dump_redis and the test")
        keys.append(entry)
    target.mkdir(parents=True)
    (target / "keys.json").write_text(json.dumps(keys, indent=1, ensure_ascii=False) + "\n")
    return {"file": "redis/keys.json"}


#: How each column type is read out of PostgreSQL into JSON (a timestamp as the
#: seconds left from now, so the test can restore it relative to its own now).
_PG_READ: dict[str, Callable[[str], str]] = {
    "timestamp with time zone": lambda c: f"extract(epoch from {c} - now())::float8",
    "jsonb": lambda c: f"{c}::text",
    "bytea": lambda c: f"encode({c}, 'base64')",
}


def dump_postgres(store: PostgresStore, target: Path) -> dict[str, Any]:
    schema, table = store.schema, store.table
    assert schema is not None

    def template(statement: str) -> str:
        return statement.replace(f'"{schema}"', '"{schema}"').replace(f'"{table}', '"{table}')

    tables = {}
    with _postgres() as conn:
        for suffix in ("", "_devices", "_stamps"):
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, table + suffix),
            ).fetchall()
            assert columns, f"no table {table + suffix}"
            select = ", ".join(
                _PG_READ.get(kind, lambda c: c)(f'"{name}"') for name, kind in columns
            )
            rows = conn.execute(
                f'SELECT {select} FROM "{schema}"."{table}{suffix}" ORDER BY 1, 2'  # noqa: S608
            ).fetchall()
            tables[suffix] = {"columns": columns, "rows": [list(row) for row in rows]}
    document = {"ddl": [template(s) for s in store.ddl() + store.index_ddl()], "tables": tables}
    target.mkdir(parents=True)
    (target / "tables.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return {"file": "postgres/tables.json"}


# -- the script ----------------------------------------------------------------------


def version_directory() -> Path:
    major, minor = wsgisession.__version__.split(".")[:2]
    return FIXTURES / f"{major}.{minor}"


def write(target: Path) -> None:
    """Write this version's fixture set into *target*, a directory that must not exist.

    :raises FileExistsError: *target* exists: a fixture set is never regenerated.
    """
    if target.exists():
        raise FileExistsError(f"{target} exists: a fixture set is never regenerated")
    clock = Clock()
    real_time, time.time = time.time, clock
    scratch = Path(tempfile.mkdtemp(prefix="wsgisession-fixtures-"))
    partial = target.with_name(target.name + ".partial")
    try:
        with stores(scratch) as made:
            sites = wsgi_sites(made, clock)
            sites += [flask_site(clock), django_site(clock)]
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            manifest = {
                "version": wsgisession.__version__,
                "written_at": int(clock.now),
                "secret_key": SECRET_KEY,
                "stores": {
                    "sqlite": dump_sqlite(made["sqlite"], partial / "sqlite"),
                    "redis": dump_redis(made["redis"], partial / "redis"),
                    "postgres": dump_postgres(made["postgres"], partial / "postgres"),
                },
                "sites": sites,
            }
            text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
            (partial / "manifest.json").write_text(text)
        partial.rename(target)
    finally:
        time.time = real_time
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, help="default: fixtures/<major.minor> of this version")
    target = parser.parse_args(argv).into or version_directory()
    try:
        write(target)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
