"""Server-side records sealed field by field with AES-256-GCM: encryption at rest.

Used by ``SQLiteStore``, ``RedisStore`` and ``PostgresStore`` with ``encrypt=True``;
needs the ``cryptography`` package (the ``crypto`` extra). A Redis snapshot, a
database backup or a replica then holds no session's data and no session's key
names. The store still merges per key, so each value is sealed on its own, under
a field name that is a keyed hash of the session key::

    stored field    = base64url(HMAC-SHA256(name key, session key UTF-8)[:16])
    stored value    = version (1 byte: 0x01) | salt (16 random bytes) | ciphertext
                      | GCM tag (16 bytes)

    master key      = HKDF-SHA256(secret key, salt=b"wsgisession.store-aes-256-gcm",
                      info=purpose), 32 bytes, one per secret key
    name key        = HKDF-SHA256(secret key, salt=b"wsgisession.store-field-names",
                      info=purpose), 32 bytes, one per secret key
    value key       = HMAC-SHA256(master key, salt), one per stored value
    nonce           = 12 zero bytes (each value key seals exactly one value)
    plaintext       = length of the session key (4 bytes, big-endian) | session key
                      (UTF-8) | the serialized value
    associated data = version | record name (ASCII) | 0x00 | stored field (ASCII)
    record name     = the store key (SQLite, PostgreSQL); for RedisStore the record's
                      name after the prefix (stores/_redis_record.py)

*purpose* is the store's kind (``wsgisession.store:redis``, ``…:sqlite``,
``…:postgres``). The field name is deterministic, so a save finds and replaces the
field it changes; it is keyed, so a copy of the store does not say which keys a
session has (``user_id``, ``cart``). The session key itself is inside the
ciphertext, which is how a load gives the names back. The associated data binds
each value to its record and its field: a value copied to another session, or to
another field of the same one, does not open. The record name and the stored field
are hex or URL-safe base64, so the 0x00 between them is unambiguous. RedisStore
binds its record's name, not the store key, because that name is all a scan of
its keys finds (``encrypt_records``) and the key cannot be had back from it; a
value sealed for a record of its 1.0 layout, bound to the store key (64 hex
digits), still opens, and is sealed again for the new name by the load that finds
it.

A value the middleware serializes is JSON text, whose first byte is never 0x01, so
a record written before ``encrypt=True`` (clear field names, clear values) is told
apart value by value and still read. Each clear value, or one sealed under a
fallback key, is sealed again under the current key right after the load that
found it, as a compare-and-set that leaves a value changed meanwhile alone: after
one visit a session holds nothing the current key did not seal, and
``wsgisession migrate --encrypt`` visits them all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._memo import Memo
from ..errors import StoreUnavailable
from ..signing import b64encode
from .base import ServerSessionStore

__all__ = ["VERSION", "RecordSealer", "Replacement", "SealReport", "SealedStore"]

log = logging.getLogger("wsgisession")

#: The first byte of a sealed value, also authenticated as associated data.
VERSION = b"\x01"  # also _backends/server.py's SEALED, which must not import this

_MASTER_SALT = b"wsgisession.store-aes-256-gcm"
_NAME_SALT = b"wsgisession.store-field-names"
_SALT = 16
_TAG = 16
_LENGTH = 4
_ZERO_NONCE = bytes(12)
_NAME_BYTES = 16
_SHORTEST = 1 + _SALT + _LENGTH + _TAG
#: Values opened (or sealed) lately, per store view: a session's record comes back
#: unchanged on most requests, and each value costs ~3.5 µs to open. 4096 values are
#: some 450 sessions of nine keys, a few MB at most.
_MEMO_SIZE = 4096

_Opened = tuple[int, str, bytes]


class Replacement(NamedTuple):
    """One stored field to rewrite in place, if it still holds what was loaded."""

    #: The stored field name and the stored value found by the load.
    field: str
    value: bytes
    #: What takes its place; ``None``: the field is only deleted (a duplicate).
    new_field: str | None
    new_value: bytes | None


class SealReport(NamedTuple):
    """What :meth:`~wsgisession.RedisStore.encrypt_records` did (and the other stores')."""

    #: The live records read.
    records: int
    #: Those that held clear values or values sealed under a fallback key, now all
    #: sealed under the current key.
    sealed: int
    #: Those that did not open (altered, or sealed under a key not given): left as
    #: they are.
    refused: int


def _derive(secret_key: bytes, salt: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose.encode("utf-8"))
    return hkdf.derive(secret_key)


def _keyed(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 under *key*, the key schedule done once (see signing._Signer)."""
    base = hmac.new(key, digestmod=hashlib.sha256)

    def digest(data: bytes) -> bytes:
        mac = base.copy()
        mac.update(data)
        return mac.digest()

    return digest


class RecordSealer:
    """Seals and opens the fields of records, for one store kind and one set of keys.

    Seals with the first key; opens with any (a later one makes the field stale).

    :param keys: The current secret key first, then the fallback keys.
    :param purpose: The store's kind, bound into every key.
    """

    def __init__(self, keys: Iterable[bytes], purpose: str) -> None:
        keys = list(keys)
        if not keys:
            raise ValueError("RecordSealer needs at least one secret key")
        self._value_keys = [_keyed(_derive(key, _MASTER_SALT, purpose)) for key in keys]
        self._name_keys = [_keyed(_derive(key, _NAME_SALT, purpose)) for key in keys]
        # (record key, stored field, stored value) -> what open() answered: only
        # values that opened (or were sealed here) under these keys, at that place.
        self._memo: Memo[_Opened] = Memo(_MEMO_SIZE)
        # Session key -> its stored fields: an app uses a few key names, over and over.
        self._names: Memo[tuple[str, ...]] = Memo()

    def field_names(self, name: str) -> tuple[str, ...]:
        """The stored field of session key *name* under each key, the current one first."""
        names = self._names.get(name)
        if names is None:
            data = name.encode("utf-8", "surrogatepass")
            names = tuple(
                b64encode(name_key(data)[:_NAME_BYTES]).decode("ascii")
                for name_key in self._name_keys
            )
            self._names.put(name, names)
        return names

    def field_name(self, name: str) -> str:
        """The stored field of session key *name* under the current key."""
        return self.field_names(name)[0]

    def seal(self, key: str, field: str, name: str, value: bytes) -> bytes:
        """*value* of session key *name*, sealed for stored *field* of record *key*."""
        salt = os.urandom(_SALT)
        data = name.encode("utf-8", "surrogatepass")
        plaintext = len(data).to_bytes(_LENGTH, "big") + data + value
        aead = AESGCM(self._value_keys[0](salt))
        sealed = VERSION + salt + aead.encrypt(_ZERO_NONCE, plaintext, _aad(key, field))
        self._memo.put((key, field, sealed), (0, name, value))
        return sealed

    def open(self, key: str, field: str, sealed: bytes) -> _Opened:
        """Which key opened stored *field* of record *key* (0: the current one), the
        session key it holds and its value.

        :raises ValueError: not a value sealed for this field of this record under
            any of the keys (altered, moved, or another key), or malformed.
        """
        if len(sealed) < _SHORTEST or sealed[:1] != VERSION:
            raise ValueError("not a sealed value (too short, or an unknown version)")
        salt, body, aad = sealed[1 : 1 + _SALT], sealed[1 + _SALT :], _aad(key, field)
        for index, value_key in enumerate(self._value_keys):
            try:
                plaintext = AESGCM(value_key(salt)).decrypt(_ZERO_NONCE, body, aad)
            except InvalidTag:
                continue
            end = _LENGTH + int.from_bytes(plaintext[:_LENGTH], "big")
            if end > len(plaintext):
                raise ValueError("a sealed value whose key name overruns it")
            return index, plaintext[_LENGTH:end].decode("utf-8", "surrogatepass"), plaintext[end:]
        raise ValueError(
            "a value does not decrypt: altered, moved from another session or field,"
            " or sealed under a secret key this process does not have"
        )

    def open_record(
        self, key: str, record: Mapping[str, bytes], legacy: str | None = None
    ) -> tuple[dict[str, bytes], list[Replacement]]:
        """The clear record of stored *record*, and what to rewrite under the current key.

        A clear value (one written before encryption was turned on) is taken as it
        is. When two stored fields hold the same session key (a clear one and a
        sealed one, say), the newer wins: the current key's, then each fallback
        key's in order, then the clear one; the others are deleted. A value sealed
        for the record's *legacy* name (see the module's docstring) opens too, and
        is sealed again for *key*.

        :raises ValueError: a sealed value does not open (see :meth:`open`).
        """
        clear = 2 * len(self._value_keys)
        remembered = self._memo.get
        opened: dict[str, bytes] = {}
        found: dict[str, tuple[int, str, bytes]] = {}
        stale: list[str] = []
        replacements: list[Replacement] = []
        for field, value in record.items():
            if value[:1] == VERSION:
                answer = remembered((key, field, value))
                if answer is None:
                    answer = self._ranked(key, field, value, legacy)
                    self._memo.put((key, field, value), answer)
                rank, name, plain = answer
            else:
                rank, name, plain = clear, field, value
            if name in found:
                best = found[name]
                if best[0] <= rank:
                    replacements.append(Replacement(field, value, None, None))
                    continue
                replacements.append(Replacement(best[1], best[2], None, None))
            found[name] = (rank, field, value)
            opened[name] = plain
            if rank:
                stale.append(name)
        for name in dict.fromkeys(stale):
            rank, field, value = found[name]
            if rank:  # not replaced meanwhile by a newer form of the same key
                new_field = self.field_name(name)
                sealed = self.seal(key, new_field, name, opened[name])
                replacements.append(Replacement(field, value, new_field, sealed))
        return opened, replacements

    def _ranked(self, key: str, field: str, sealed: bytes, legacy: str | None) -> _Opened:
        """:meth:`open`, ranked for :meth:`open_record`: twice the index of the key that
        opened it, plus one if it was sealed for *legacy* (stale either way but 0)."""
        try:
            index, name, value = self.open(key, field, sealed)
        except ValueError:
            if legacy is None or legacy == key:
                raise
            index, name, value = self.open(legacy, field, sealed)
            return 2 * index + 1, name, value
        return 2 * index, name, value


def _aad(key: str, field: str) -> bytes:
    return VERSION + key.encode("ascii") + b"\x00" + field.encode("ascii")


class SealedStore(ServerSessionStore):
    """What a middleware calls when its store has ``encrypt=True``: the store, sealed.

    Made by the store's ``bind()``; it seals each value on the way in and opens it on
    the way out, and the store moves the sealed bytes as it moves any others.

    :param store: The store that keeps the sealed records.
    :param keys: The current secret key first, then the fallback keys.
    :param purpose: The store's kind, bound into every key.
    :param replace: The store's compare-and-set of stored fields, for sealing again
        under the current key what a load found clear or under a fallback key.
    :param name: The record name a store key's values are bound to (the
        associated data); by default the key itself.
    """

    def __init__(
        self,
        store: ServerSessionStore,
        keys: Sequence[bytes],
        purpose: str,
        replace: Callable[[str, Sequence[Replacement]], None],
        name: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.sealer = RecordSealer(keys, purpose)
        self._replace = replace
        self._name = name
        self.process_local = store.process_local
        self.ping_at_start = store.ping_at_start

    def load(self, key: str) -> dict[str, bytes] | None:
        """The record under *key*, opened; ``None`` also when it does not open."""
        record = self.store.load(key)
        if not record:
            return record
        name = key if self._name is None else self._name(key)
        try:
            opened, replacements = self.sealer.open_record(name, record, key)
        except ValueError as exc:
            # Refused, not deleted: during a key rotation another process may already
            # seal with a key this one lacks, and deleting would log the user out.
            log.warning("refused a stored session (%s); starting a fresh session", exc)
            return None
        if replacements:
            try:
                self._replace(key, replacements)
            except StoreUnavailable as exc:
                # The next load tries again; this one has what it needs.
                log.warning("could not seal a session under the current key: %s", exc)
        return opened

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Seal *changed* and merge it; drop every stored form of *removed*."""
        sealer = self.sealer
        record = key if self._name is None else self._name(key)
        fields = {}
        for name, value in changed.items():
            field = sealer.field_names(name)[0]
            fields[field] = sealer.seal(record, field, name, value)
        # A key written here may also be stored in clear or under a fallback key, if
        # the load's sealing again failed: the next load keeps this value (the
        # current key's wins) and deletes those. A key removed must go in every form.
        gone = [field for name in removed for field in (*sealer.field_names(name), name)]
        return self.store.save(key, fields, gone, ttl, create=create)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def touch(self, key: str, ttl: int) -> None:
        self.store.touch(key, ttl)

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()

    def seal_all(self, keys: Iterable[str]) -> SealReport:
        """Load each record of *keys*, sealing under the current key what is not yet."""
        records = sealed = refused = 0
        for key in keys:
            record = self.store.load(key)
            if not record:
                continue
            records += 1
            name = key if self._name is None else self._name(key)
            try:
                _, replacements = self.sealer.open_record(name, record, key)
            except ValueError:
                refused += 1
                continue
            if replacements:
                self._replace(key, replacements)
                sealed += 1
        return SealReport(records, sealed, refused)

    def __repr__(self) -> str:
        return f"SealedStore({self.store!r})"
