"""Encryption at rest: ``encrypt=True`` on SQLiteStore, RedisStore and PostgresStore.

Each test runs against each of the three (``sealed_store``), on the real servers.
What is checked is what a copy of the store holds (the SQLite file and its WAL, a
Redis ``HGETALL``, the PostgreSQL row as text), what the app reads through
werkzeug's test client, and how the store treats values that were altered, moved,
sealed under a fallback key or written in clear before encryption was turned on.
``LRUStore`` is exempt: its sessions are in the process's memory, not at rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

import wsgisession.stores
from tests.conftest import (
    POSTGRES_RUN_SCHEMA,
    POSTGRES_URL,
    SECRET,
    back_to_1_0,
    drop_store,
    postgres_sql,
    postgres_test_store,
    redis_record_name,
    redis_records,
    redis_test_store,
    text_app,
    write_1_0,
)
from tests.services import REDIS_URL
from tests.stores.test_server_stores import session_id, store_key
from wsgisession import (
    LRUStore,
    PostgresStore,
    RedisStore,
    ServerSessionStore,
    SessionMiddleware,
    SQLiteStore,
    session,
    store_from_url,
)
from wsgisession.cli import main
from wsgisession.errors import ConfigurationError
from wsgisession.stores._postgres_sql import decode_value, unfield

NEW_KEY = "the-new-secret-key-after-rotation-Q7x2Lm9Rt4Wv8Zp3"
#: What the tests put in sessions, and look for in the raw store.
SECRETS = {"medical_note_x9q": "allergic-to-penicillin-7f3a", "ssn_k2": "078-05-1120"}

Store = SQLiteStore | RedisStore | PostgresStore


def make(kind: str, tmp_path: Path, **options: Any) -> Store:
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "sessions.sqlite3", **options)
    if kind == "redis":
        return redis_test_store(**options)
    return postgres_test_store(**options)


def reopen(store: Store, **options: Any) -> Store:
    """Another store object on the same data (another process, a redeploy)."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path, **options)
    if isinstance(store, RedisStore):
        return RedisStore(REDIS_URL, prefix=store.prefix, **options)
    return PostgresStore(POSTGRES_URL, schema=POSTGRES_RUN_SCHEMA, table=store.table, **options)


def url_of(store: Store) -> str:
    if isinstance(store, SQLiteStore):
        return f"sqlite:///{store.path}"
    if isinstance(store, RedisStore):
        return f"{REDIS_URL}?prefix={store.prefix}"
    return f"{POSTGRES_URL}?schema={POSTGRES_RUN_SCHEMA}&table={store.table}"


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def sealed_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store that can encrypt, with ``encrypt=True``."""
    made = make(request.param, tmp_path, encrypt=True)
    yield made
    drop_store(made)


def raw_records(store: Store) -> dict[str, dict[str, bytes]]:
    """Every session record as the store keeps it, by :func:`stored_name`: stored field →
    stored bytes."""
    found: dict[str, dict[str, bytes]] = {}
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            for key, field, value in conn.execute(
                "SELECT key, field, CAST(value AS BLOB) FROM wsgisession_fields"
            ):
                found.setdefault(key, {})[field] = value
        finally:
            conn.close()
    elif isinstance(store, RedisStore):
        for name, fields in redis_records(store).items():
            found[name[len(store.prefix) :]] = fields
    else:
        rows = postgres_sql(f"SELECT key, data FROM {store.qualified}")  # noqa: S608
        for key, data in rows:
            found[key] = {unfield(f): decode_value(v) for f, v in data.items()}
    return found


def stored_name(store: Store, key: str) -> str:
    """What a record of store key *key* is found under in :func:`raw_records`, and what
    its sealed values are bound to: the key, or RedisStore's record name."""
    if isinstance(store, RedisStore):
        return redis_record_name(store, key)[len(store.prefix) :]
    return key


def raw_dump(store: Store) -> bytes:
    """All the bytes a copy of the store would hold: files, records, rows as text."""
    if isinstance(store, SQLiteStore):
        paths = [Path(store.path), Path(store.path + "-wal")]
        return b"".join(path.read_bytes() for path in paths if path.exists())
    if isinstance(store, RedisStore):
        dump = b""
        for name in store.client.scan_iter(match=store.prefix + "*"):
            if store.client.type(name) == b"string":
                dump += store.client.get(name) + b"\n"
            else:
                for field, value in store.client.hgetall(name).items():
                    dump += field + b"=" + value + b"\n"
        return dump
    rows = postgres_sql(f"SELECT t::text FROM {store.qualified} AS t")  # noqa: S608
    return "\n".join(row[0] for row in rows).encode()


def app_view(request: Request) -> str:
    if request.path == "/set":
        session.update(SECRETS)
        session["cart"] = [{"sku": "A-1", "qty": 2}]
    elif request.path == "/add":
        session[request.args["key"]] = request.args["value"]
    elif request.path == "/drop":
        del session[request.args["key"]]
    elif request.path == "/rotate":
        session.regenerate(privilege_change=False)
    return repr(sorted(session.items()))


def app(store: ServerSessionStore, **options: Any) -> SessionMiddleware:
    options.setdefault("secret_key", SECRET)
    return SessionMiddleware(text_app(app_view), store=store, **options)


def expected(**extra: Any) -> str:
    data: dict[str, Any] = {**SECRETS, "cart": [{"sku": "A-1", "qty": 2}], **extra}
    return repr(sorted(data.items()))


def bound(store: Store, *keys: str) -> ServerSessionStore:
    """The view of *store* a middleware with *keys* (default: the test key) calls."""
    return store.bind([key.encode() for key in keys or (SECRET,)])


# -- what a copy of the store holds ------------------------------------------------


def test_a_stored_session_holds_no_value_and_no_key_name_in_clear(sealed_store: Store) -> None:
    client = Client(app(sealed_store))
    assert client.get("/set").text == expected()
    assert client.get("/").text == expected()  # read back through the store
    dump = raw_dump(sealed_store)
    assert dump  # the records are there
    for name, value in [*SECRETS.items(), ("cart", "A-1")]:
        assert name.encode() not in dump
        assert value.encode() not in dump
    (record,) = raw_records(sealed_store).values()
    assert len(record) == 3
    for field, value in record.items():
        assert len(field) == 22  # a keyed hash of the key name, URL-safe base64
        assert value[:1] == b"\x01"


def test_the_session_round_trips_through_the_client(sealed_store: Store) -> None:
    client = Client(app(sealed_store))
    client.get("/set")
    assert client.get("/add?key=café&value=crème").text == expected(café="crème")
    assert client.get("/add?key=a%00b&value=nul").text == expected(café="crème", **{"a\0b": "nul"})
    assert client.get("/drop?key=ssn_k2").status_code == 200
    after = {**SECRETS, "cart": [{"sku": "A-1", "qty": 2}], "café": "crème", "a\0b": "nul"}
    del after["ssn_k2"]
    assert client.get("/").text == repr(sorted(after.items()))
    (record,) = raw_records(sealed_store).values()
    assert len(record) == len(after)  # one stored field per key: none left behind


def test_regenerate_moves_the_sealed_session_and_the_old_id_forwards_within_the_grace(
    sealed_store: Store,
) -> None:
    mw = app(sealed_store, rotation_grace=30)
    client = Client(mw)
    client.get("/set")
    old = client.get_cookie("session")
    assert old is not None
    assert client.get("/rotate").text == expected()
    assert client.get("/").text == expected()
    # The old id's record now holds only the sealed marker that it moved, and
    # leads to the new record for the grace period.
    late = Client(mw)
    late.set_cookie("session", old.value)
    assert late.get("/").text == expected()
    assert all(len(record) in (1, 3) for record in raw_records(sealed_store).values())


def test_each_value_is_sealed_under_a_fresh_salt_so_a_key_of_its_own(sealed_store: Store) -> None:
    view = bound(sealed_store)
    view.save("k" * 64, {"a": b'"same"'}, (), 60, create=True)
    first = raw_records(sealed_store)[stored_name(sealed_store, "k" * 64)]
    view.save("k" * 64, {"a": b'"same"'}, (), 60, create=False)
    second = raw_records(sealed_store)[stored_name(sealed_store, "k" * 64)]
    assert first.keys() == second.keys()  # the same field: the per-key merge finds it
    (one,), (two,) = first.values(), second.values()
    assert one[1:17] != two[1:17]
    assert one != two


def test_a_sealed_value_follows_the_documented_format(sealed_store: Store) -> None:
    # An independent implementation of the description in stores/_sealed.py.
    key = "e" * 64
    bound(sealed_store).save(key, {"user_id": b"42"}, (), 60, create=True)
    ((field, value),) = raw_records(sealed_store)[stored_name(sealed_store, key)].items()
    purpose = sealed_store.seal_purpose
    assert purpose == f"wsgisession.store:{make_kind(sealed_store)}"

    def hkdf(salt: bytes) -> bytes:
        derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose.encode())
        return derive.derive(SECRET.encode())

    name_key = hkdf(b"wsgisession.store-field-names")
    master = hkdf(b"wsgisession.store-aes-256-gcm")
    digest = hmac.digest(name_key, b"user_id", hashlib.sha256)[:16]
    assert field == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    version, salt, body = value[:1], value[1:17], value[17:]
    value_key = hmac.digest(master, salt, hashlib.sha256)
    aad = version + stored_name(sealed_store, key).encode() + b"\0" + field.encode()
    plaintext = AESGCM(value_key).decrypt(bytes(12), body, aad)
    assert version == b"\x01"
    assert plaintext == (7).to_bytes(4, "big") + b"user_id" + b"42"


def make_kind(store: Store) -> str:
    return {SQLiteStore: "sqlite", RedisStore: "redis", PostgresStore: "postgres"}[type(store)]


def test_concurrent_saves_of_different_keys_both_land(sealed_store: Store) -> None:
    view = bound(sealed_store)
    key = "c" * 64
    view.save(key, {"start": b"0"}, (), 60, create=True)
    barrier = threading.Barrier(8)

    def write(name: str) -> None:
        barrier.wait()
        for i in range(5):
            view.save(key, {name: str(i).encode()}, (), 60, create=False)

    threads = [threading.Thread(target=write, args=(f"k{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert view.load(key) == {"start": b"0", **{f"k{n}": b"4" for n in range(8)}}


# -- key rotation ----------------------------------------------------------------


def test_a_value_sealed_under_a_fallback_key_is_read_and_sealed_again_under_the_current_key(
    sealed_store: Store,
) -> None:
    before = Client(app(sealed_store))
    before.get("/set")
    fields_before = set(next(iter(raw_records(sealed_store).values())))
    # Redeployed: the new key signs and seals, the old one is a fallback.
    rotated = reopen(sealed_store, encrypt=True)
    client = Client(app(rotated, secret_key=NEW_KEY, fallback_secret_keys=[SECRET]))
    client.set_cookie("session", before.get_cookie("session").value)  # type: ignore[union-attr]
    assert client.get("/").text == expected()
    (record,) = raw_records(sealed_store).values()
    assert len(record) == 3
    assert not set(record) & fields_before
    # ... so the old key can go, once the cookie is signed with the new one too.
    client.get("/add?key=touched&value=1")
    new_only = Client(app(reopen(sealed_store, encrypt=True), secret_key=NEW_KEY))
    new_only.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    assert new_only.get("/").text == expected(touched="1")
    rotated.close()


def test_a_write_under_a_new_key_leaves_no_field_stored_twice(sealed_store: Store) -> None:
    key = "r" * 64
    bound(sealed_store, SECRET).save(key, {"a": b"1", "b": b"2"}, (), 60, create=True)
    rotated = reopen(sealed_store, encrypt=True)
    # A save without a load first (a load would have sealed both again): the old
    # form of "a" is left until the next load, which keeps the newer one.
    view = bound(rotated, NEW_KEY, SECRET)
    view.save(key, {"a": b"3"}, ["b"], 60, create=False)
    assert len(raw_records(sealed_store)[stored_name(sealed_store, key)]) == 2
    assert view.load(key) == {"a": b"3"}
    assert len(raw_records(sealed_store)[stored_name(sealed_store, key)]) == 1
    assert bound(rotated, NEW_KEY).load(key) == {"a": b"3"}
    rotated.close()


def test_a_store_with_only_the_old_key_refuses_what_the_new_key_sealed(
    sealed_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    key = "o" * 64
    bound(sealed_store, NEW_KEY).save(key, {"a": b"1"}, (), 60, create=True)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        assert bound(sealed_store, SECRET).load(key) is None
    assert "refused a stored session" in caplog.text
    # Refused, not deleted: it may be a rotation.
    assert raw_records(sealed_store)[stored_name(sealed_store, key)]


# -- tampering -------------------------------------------------------------------


def flip_a_byte(store: Store, key: str, other: str) -> None:
    field, value = next(iter(raw_records(store)[stored_name(store, key)].items()))
    changed = value[:-1] + bytes([value[-1] ^ 1])
    overwrite(store, key, {field: changed})


def move_to_another_session(store: Store, key: str, other: str) -> None:
    field, value = next(iter(raw_records(store)[stored_name(store, other)].items()))
    overwrite(store, key, {field: value})


def swap_two_fields(store: Store, key: str, other: str) -> None:
    (f1, v1), (f2, v2), *_ = raw_records(store)[stored_name(store, key)].items()
    overwrite(store, key, {f1: v2, f2: v1})


def truncate(store: Store, key: str, other: str) -> None:
    field, value = next(iter(raw_records(store)[stored_name(store, key)].items()))
    overwrite(store, key, {field: value[:20]})


def overwrite(store: Store, key: str, fields: dict[str, bytes]) -> None:
    """Write stored fields as someone with access to the store would."""
    assert store.save(key, fields, (), 600, create=False)  # the raw store moves bytes


@pytest.mark.parametrize(
    "tamper", [flip_a_byte, move_to_another_session, swap_two_fields, truncate], ids=str
)
def test_an_altered_or_moved_value_gives_a_fresh_session_and_a_warning_never_a_500(
    sealed_store: Store,
    tamper: Callable[[Store, str, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mw = app(sealed_store)
    victim, other = Client(mw), Client(mw)
    victim.get("/set")
    other.get("/add?key=medical_note_x9q&value=someone-else")
    key, other_key = store_key(session_id(mw, victim)), store_key(session_id(mw, other))
    tamper(sealed_store, key, other_key)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response: TestResponse = victim.get("/")
    assert response.status_code == 200
    assert response.text == "[]"
    assert "refused a stored session" in caplog.text
    assert other.get("/").text == repr([("medical_note_x9q", "someone-else")])


# -- records written before encryption was turned on ----------------------------------


def test_an_encrypting_store_reads_a_clear_record_and_seals_it(sealed_store: Store) -> None:
    clear = reopen(sealed_store)  # the same data, encrypt=False: as before the upgrade
    before = Client(app(clear))
    before.get("/set")
    assert SECRETS["ssn_k2"].encode() in b"".join(
        b"".join(r.values()) for r in raw_records(sealed_store).values()
    )
    client = Client(app(sealed_store))
    client.set_cookie("session", before.get_cookie("session").value)  # type: ignore[union-attr]
    assert client.get("/").text == expected()
    (record,) = raw_records(sealed_store).values()
    assert len(record) == 3
    assert all(value[:1] == b"\x01" for value in record.values())
    assert not set(record) & {*SECRETS, "cart"}
    assert client.get("/add?key=more&value=1").text == expected(more="1")
    clear.close()


def test_a_sealed_value_wins_over_a_clear_copy_of_its_key_which_the_load_deletes(
    sealed_store: Store,
) -> None:
    key = "w" * 64
    sealed_store.save(key, {"a": b"1", "b": b"2", "c": b"4"}, (), 60, create=True)  # in clear
    bound(sealed_store).save(key, {"a": b"3"}, ["c"], 60, create=False)  # no load first
    record = raw_records(sealed_store)[stored_name(sealed_store, key)]
    assert record["a"] == b"1"
    assert record["b"] == b"2"
    assert "c" not in record
    assert bound(sealed_store).load(key) == {"a": b"3", "b": b"2"}
    record = raw_records(sealed_store)[stored_name(sealed_store, key)]
    assert len(record) == 2
    assert set(record).isdisjoint({"a", "b"})


def test_a_store_without_encrypt_is_bound_as_itself(tmp_path: Path) -> None:
    # Its requests run exactly the code they ran before: no view, no check.
    for store in (SQLiteStore(tmp_path / "s.sqlite3"), LRUStore()):
        assert store.bind([SECRET.encode()]) is store
    assert app(SQLiteStore(tmp_path / "s.sqlite3"))._backend.store.__class__ is SQLiteStore


def test_the_lru_store_takes_no_encrypt_option() -> None:
    # In-process memory is not at rest: no file, snapshot or backup holds it.
    with pytest.raises(TypeError):
        LRUStore(encrypt=True)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="unknown option 'encrypt'"):
        store_from_url("memory://?encrypt=true")


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_missing_cryptography_is_a_configuration_error_saying_how_to_install(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    monkeypatch.delitem(sys.modules, "wsgisession.stores._sealed", raising=False)
    monkeypatch.delattr(wsgisession.stores, "_sealed", raising=False)
    with pytest.raises(ConfigurationError, match=r'pip install "sessionlayer\[crypto\]"'):
        make(kind, tmp_path, encrypt=True)
    drop_store(make(kind, tmp_path))  # the clear store needs nothing more


# -- wsgisession migrate --encrypt --------------------------------------------------


def test_migrate_encrypt_seals_every_stored_session_in_place_and_the_app_reads_them(
    sealed_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clear = reopen(sealed_store)
    clients = [Client(app(clear)) for _ in range(3)]
    for n, client in enumerate(clients):
        client.get("/set")
        client.get(f"/add?key=n&value={n}")
    clear.close()
    command = ["migrate", "--encrypt", "--store", url_of(sealed_store), "--secret-key", SECRET]
    assert main(command) == 0
    assert "sealed 3 of 3 sessions" in capsys.readouterr().out
    for record in raw_records(sealed_store).values():
        assert set(record).isdisjoint({*SECRETS, "cart", "n"})
        assert all(value[:1] == b"\x01" for value in record.values())
    encrypted = app(sealed_store)
    for n, client in enumerate(clients):
        reader = Client(encrypted)
        reader.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
        assert reader.get("/").text == expected(n=str(n))
    assert main(command) == 0  # idempotent
    assert "sealed 0 of 3 sessions" in capsys.readouterr().out


def test_migrate_encrypt_with_a_key_that_is_not_the_apps_changes_nothing_and_fails(
    sealed_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    Client(app(sealed_store)).get("/set")
    before = raw_records(sealed_store)
    command = ["migrate", "--encrypt", "--store", url_of(sealed_store), "--secret-key", NEW_KEY]
    assert main(command) == 1
    assert "1 stored session did not open with the keys given" in capsys.readouterr().err
    assert raw_records(sealed_store) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--store", "memory://"], "cannot be encrypted in place"),
        (["--store", "cookie://"], "cannot be encrypted in place"),
        (["--store", "sqlite:///here.sqlite3"], "no secret key"),
    ],
)
def test_migrate_encrypt_explains_what_it_cannot_do(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    assert main(["migrate", "--encrypt", *argv]) == 1
    assert message in capsys.readouterr().err


def test_a_secret_key_without_encrypt_is_a_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--store", "memory://", "--secret-key", SECRET]) == 1
    assert "--secret-key is only for migrate --encrypt" in capsys.readouterr().err


def test_inspect_shows_a_sealed_session_opened(
    sealed_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(app(sealed_store))
    client.get("/set")
    cookie = client.get_cookie("session")
    assert cookie is not None
    store = url_of(sealed_store) + ("&" if "?" in url_of(sealed_store) else "?") + "encrypt=true"
    assert main(["inspect", cookie.value, "--secret-key", SECRET, "--store", store]) == 0
    assert SECRETS["medical_note_x9q"] in capsys.readouterr().out


def test_device_tracking_lists_and_revokes_sessions_on_an_encrypting_store(
    sealed_store: Store,
) -> None:
    from tests.test_devices import browser, devices_of, make

    mw, _ = make(sealed_store)
    laptop, phone = browser(mw, "Laptop/1.0"), browser(mw, "Phone/2.0")
    assert laptop.get("/login?user=ann").text == "ok"
    assert phone.get("/login?user=ann").text == "ok"
    listed = devices_of(laptop)
    assert sorted(device["ua"] for device in listed) == ["Laptop/1.0", "Phone/2.0"]
    other = next(device["handle"] for device in listed if not device["current"])
    assert laptop.get(f"/revoke?handle={other}").text == "True"
    assert phone.get("/me").text == "anon"
    assert laptop.get("/me").text == "ann"


def test_a_process_without_encrypt_keeps_a_sealed_record_during_a_rolling_deploy(
    sealed_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # A rolling deploy turns encryption on: a new process sealed the session, and an
    # old one (encrypt off) gets a request of it before it is replaced.
    new = Client(app(sealed_store))
    new.get("/set")
    cookie = new.get_cookie("session").value  # type: ignore[union-attr]
    old = Client(app(reopen(sealed_store)))
    old.set_cookie("session", cookie)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        assert old.get("/").text == "[]"  # a fresh session for that one request
    assert "record is kept" in caplog.text
    assert raw_records(sealed_store), "the sealed record was deleted"
    # The new processes still read it: nobody was logged out by the deploy.
    again = Client(app(sealed_store))
    again.set_cookie("session", cookie)
    assert again.get("/").text == expected()


# -- RedisStore: records of 1.0 (a hash each, values bound to the store key) -----------


@pytest.fixture
def sealed_redis() -> Iterator[RedisStore]:
    made = redis_test_store(encrypt=True)
    yield made
    drop_store(made)


def test_a_sealed_session_of_1_0_opens_and_is_sealed_again_for_its_new_name(
    sealed_redis: RedisStore,
) -> None:
    from wsgisession.stores._sealed import RecordSealer

    # 1.0 kept a hash under prefix + the store key, each value bound to that key.
    key = hashlib.sha256(b"before the upgrade").hexdigest()
    sealer = RecordSealer([SECRET.encode()], sealed_redis.seal_purpose)
    field = sealer.field_name("user")
    fields = {field: sealer.seal(key, field, "user", b"42")}
    old = write_1_0(sealed_redis.client, sealed_redis.prefix, key, fields, 600)
    view = bound(sealed_redis)
    assert view.load(key) == {"user": b"42"}
    assert sealed_redis.client.type(old) == b"string"  # the hash is gone (a marker is left)
    ((stored_field, value),) = raw_records(sealed_redis)[stored_name(sealed_redis, key)].items()
    assert stored_field == field
    # Sealed again for the record's name, which is what the value is now bound to.
    fresh = RecordSealer([SECRET.encode()], sealed_redis.seal_purpose)
    assert fresh.open(stored_name(sealed_redis, key), field, value)[1:] == ("user", b"42")
    with pytest.raises(ValueError, match="does not decrypt"):
        fresh.open(key, field, value)
    assert view.load(key) == {"user": b"42"}


def test_migrate_encrypt_seals_the_sessions_of_1_0_and_the_app_reads_them(
    sealed_redis: RedisStore, capsys: pytest.CaptureFixture[str]
) -> None:
    clear = reopen(sealed_redis)
    assert isinstance(clear, RedisStore)
    clients = [Client(app(clear)) for _ in range(3)]
    for n, client in enumerate(clients):
        client.get("/set")
        client.get(f"/add?key=n&value={n}")
    # Two of them from before the upgrade: hashes of 1.0, in clear.
    mw = app(clear)
    for client in clients[:2]:
        back_to_1_0(clear, store_key(session_id(mw, client)))
    clear.close()
    command = ["migrate", "--encrypt", "--store", url_of(sealed_redis), "--secret-key", SECRET]
    assert main(command) == 0
    assert "sealed 3 of 3 sessions" in capsys.readouterr().out
    records = raw_records(sealed_redis)
    assert len(records) == 3
    for record in records.values():
        assert set(record).isdisjoint({*SECRETS, "cart", "n"})
        assert all(value[:1] == b"\x01" for value in record.values())
    assert not [
        n
        for n in sealed_redis.client.scan_iter(match=sealed_redis.prefix + "*")
        if sealed_redis.client.type(n) == b"hash" and b":user:" not in n
    ]
    encrypted = app(sealed_redis)
    for n, client in enumerate(clients):
        reader = Client(encrypted)
        reader.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
        assert reader.get("/").text == expected(n=str(n))
    assert main(command) == 0
    assert "sealed 0 of 3 sessions" in capsys.readouterr().out
