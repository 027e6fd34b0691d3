"""Cookies and store records written by an older 1.x are read by this version, exactly.

``fixtures/<major.minor>/`` holds what that release wrote (``make_fixtures.py``;
docs/development.md says when to add a set, and that an old one is never
regenerated). Each site of each set is rebuilt on real stores (the SQLite file
copied, the Redis keys restored under this run's prefix, the PostgreSQL tables made
by that version's own statements in this run's schema, their rows inserted) and
every page that version read is read again, through the public API, with the same
answer: the session's data value for value and type for type, the logged-in user,
the flash messages, the typed variable, the devices, the separate signed cookie,
revocations; and the CSRF token that version issued is accepted.

Time: the cookies carry the second they were issued and the records their expiry.
wsgisession has no clock hook: every module reads ``time.time()``, so the tests'
``clock`` fixture (which replaces ``time.time``) reads each set as of a minute after
it was written, inside every lifetime, however old the set. Redis and PostgreSQL
expire records by their own clocks, so those are restored with the time they had
left when they were dumped.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

import wsgisession
from wsgisession import CookieStore, PostgresStore, SessionMiddleware, SQLiteStore, track_devices

from ..conftest import (
    POSTGRES_RUN_SCHEMA,
    Clock,
    drop_store,
    postgres_sql,
    postgres_test_table,
    redis_test_store,
    require_postgres,
)
from ..djangoapp import django_app
from ..services import require_redis
from ..stores.test_encrypted_records import raw_records
from . import make_fixtures, site

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Seconds after a set was written at which it is read: inside every lifetime.
AS_OF = 60


def fixture_sets() -> list[Path]:
    """Every fixture set, oldest first."""
    found = [path for path in FIXTURES.iterdir() if re.fullmatch(r"\d+\.\d+", path.name)]
    return sorted(found, key=lambda path: tuple(int(part) for part in path.name.split(".")))


def manifest(fixture_set: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((fixture_set / "manifest.json").read_text())
    return document


def cases() -> Iterator[Any]:
    for fixture_set in fixture_sets():
        for entry in manifest(fixture_set)["sites"]:
            yield pytest.param(fixture_set, entry, id=f"{fixture_set.name}-{entry['name']}")


# -- the stores of a set, restored ----------------------------------------------------


def _bytes(value: dict[str, str]) -> bytes:
    if "text" in value:
        return value["text"].encode("utf-8")
    return base64.b64decode(value["base64"])


def restore_sqlite(
    fixture_set: Path, spec: dict[str, Any], tmp_path: Path, **options: Any
) -> SQLiteStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sessions.sqlite3"
    shutil.copyfile(fixture_set / spec["file"], path)
    return SQLiteStore(path, **options)


def restore_redis(fixture_set: Path, spec: dict[str, Any], **options: Any) -> Any:
    store = redis_test_store(**options)
    client = store.client
    for entry in json.loads((fixture_set / spec["file"]).read_text()):
        name = store.prefix + entry["key"]
        if entry["type"] == "hash":
            client.hset(name, mapping={f: _bytes(v) for f, v in entry["fields"].items()})
        else:
            assert entry["type"] == "string", entry
            client.set(name, _bytes(entry["value"]))
        if entry["ttl_ms"] > 0:
            client.pexpire(name, entry["ttl_ms"])
    return store


#: How a dumped column goes back in (see make_fixtures._PG_READ).
_PG_WRITE = {
    "timestamp with time zone": "now() + make_interval(secs => %s)",
    "jsonb": "%s::jsonb",
    "bytea": "decode(%s, 'base64')",
}


def restore_postgres(fixture_set: Path, spec: dict[str, Any], **options: Any) -> PostgresStore:
    document = json.loads((fixture_set / spec["file"]).read_text())
    url, table = require_postgres(), postgres_test_table()
    for statement in document["ddl"]:  # that version's own tables
        postgres_sql(statement.replace("{schema}", POSTGRES_RUN_SCHEMA).replace("{table}", table))
    for suffix, dump in document["tables"].items():
        names = ", ".join(f'"{name}"' for name, _ in dump["columns"])
        values = ", ".join(_PG_WRITE.get(kind, "%s") for _, kind in dump["columns"])
        target = f'"{POSTGRES_RUN_SCHEMA}"."{table}{suffix}"'
        insert = f"INSERT INTO {target} ({names}) VALUES ({values})"  # noqa: S608 - our names
        for row in dump["rows"]:
            postgres_sql(insert, *row)
    return PostgresStore(url, schema=POSTGRES_RUN_SCHEMA, table=table, **options)


@contextmanager
def restored(kind: str | None, fixture_set: Path, tmp_path: Path, **options: Any) -> Iterator[Any]:
    """The store *kind* of the set, holding what the set's version wrote (``None``: none).

    :param options: For the server store (``encrypt=True``).
    """
    specs = manifest(fixture_set)["stores"]
    if kind is None:
        yield None
        return
    if kind == "cookie":
        store: Any = CookieStore()
    elif kind == "cookie-encrypted":
        store = CookieStore(encrypt=True)
    elif kind == "sqlite":
        store = restore_sqlite(fixture_set, specs["sqlite"], tmp_path, **options)
    elif kind == "redis":
        store = restore_redis(fixture_set, specs["redis"], **options)
    elif kind == "postgres":
        store = restore_postgres(fixture_set, specs["postgres"], **options)
    else:
        raise AssertionError(f"a fixture names a store this test does not know: {kind}")
    try:
        yield store
    finally:
        drop_store(store)


def site_app(entry: dict[str, Any], secret_key: str, store: Any, stamps: Any) -> Any:
    """The read pages of a site, on this version, as the set's manifest describes them."""
    options = entry["options"]
    if entry["site"] == "flask":
        return site.flask_site(secret_key, store)
    if entry["site"] == "django":
        settings = {"store": store, "secret_key": secret_key, **options}
        middleware = ["wsgisession.contrib.django.SessionMiddleware"]
        return django_app(site.django_views(), middleware, WSGISESSION=settings)
    assert entry["site"] == "wsgi", entry["site"]
    app = SessionMiddleware(
        site.read_app(entry["tracked"]), secret_key=secret_key, store=store, **options
    )
    if entry["tracked"]:
        track_devices(app, revocation_store=stamps)
    return app


# -- the tests --------------------------------------------------------------------------


def read_site(
    fixture_set: Path,
    entry: dict[str, Any],
    clock: Clock,
    tmp_path: Path,
    check: Callable[[Any], None] | None = None,
    **options: Any,
) -> None:
    """Read every page of a site of *fixture_set* again; each must answer as it did.

    :param check: Called with the site's store once every page was read.
    :param options: For the site's store (``encrypt=True``).
    """
    written = manifest(fixture_set)
    clock.now = written["written_at"] + AS_OF
    with ExitStack() as stack:
        store = stack.enter_context(restored(entry["store"], fixture_set, tmp_path, **options))
        stamps = stack.enter_context(restored(entry.get("revocation_store"), fixture_set, tmp_path))
        app = site_app(entry, written["secret_key"], store, stamps)
        for session in entry["sessions"]:
            where = f"{fixture_set.name}/{entry['name']}/{session['name']}"
            client = Client(app)
            for name, value in session["cookies"].items():
                client.set_cookie(name, value)
            for path, expected in session["pages"].items():
                response = client.get(path)
                assert response.status_code == 200, f"{where}{path}: {response.text}"
                assert site.canonical(response.json) == site.canonical(expected), f"{where}{path}"
            token = session.get("csrf_token")
            if token is not None:
                assert client.post("/csrf").status_code == 403, f"{where}: the check runs"
                accepted = client.post("/csrf", data={"csrf_token": token})
                assert accepted.status_code == 200, f"{where}: {accepted.text}"
        if check is not None:
            check(store)


@pytest.mark.parametrize(("fixture_set", "entry"), list(cases()))
def test_a_site_reads_what_an_older_version_wrote(
    fixture_set: Path, entry: dict[str, Any], clock: Clock, tmp_path: Path
) -> None:
    read_site(fixture_set, entry, clock, tmp_path)


SERVER_SITES = [
    case for case in cases() if case.values[1]["store"] in ("sqlite", "redis", "postgres")
]


@pytest.mark.parametrize(("fixture_set", "entry"), SERVER_SITES)
def test_an_encrypting_store_reads_what_an_older_version_wrote_in_clear(
    fixture_set: Path, entry: dict[str, Any], clock: Clock, tmp_path: Path
) -> None:
    # Turning encrypt=True on logs nobody out; each record read is sealed in place.
    def all_sealed(store: Any) -> None:
        records = raw_records(store)
        assert records, "the set's records are there"
        for record in records.values():
            assert all(value[:1] == b"\x01" for value in record.values()), record

    read_site(fixture_set, entry, clock, tmp_path, check=all_sealed, encrypt=True)


def test_this_version_writes_a_set_it_reads(clock: Clock, tmp_path: Path) -> None:
    # The script that writes the next release's set must not rot in between.
    require_redis()
    require_postgres()
    fresh = tmp_path / "set" / "1.0"
    make_fixtures.write(fresh)
    with pytest.raises(FileExistsError):
        make_fixtures.write(fresh)
    for entry in manifest(fresh)["sites"]:
        read_site(fresh, entry, clock, tmp_path / entry["name"])


def test_the_current_major_has_a_fixture_set() -> None:
    major = wsgisession.__version__.split(".")[0]
    names = [path.name for path in fixture_sets()]
    assert any(name.split(".")[0] == major for name in names), (
        f"no fixture set for {major}.x in {FIXTURES} (found {names}): the sets are the"
        " promise that what any release of a major wrote is read by the later ones;"
        " restore them from git, or write the first of the major with make_fixtures.py"
    )


def test_each_fixture_set_was_written_by_the_release_it_is_named_after() -> None:
    for fixture_set in fixture_sets():
        version = manifest(fixture_set)["version"]
        assert ".".join(version.split(".")[:2]) == fixture_set.name, (fixture_set, version)
