"""PostgresStore's statements and how a session's fields become jsonb and back."""

from __future__ import annotations

import base64
import re
from typing import Any

__all__ = ["SQL", "decode_value", "encode_value", "field_name", "unfield"]

#: The statements, each prepared on its first use on a connection. TABLE stands for
#: the quoted, schema-qualified table name. Every statement compares with the
#: server's clock, so an expired row is invisible at once to every machine.
SQL = {
    "load": "SELECT data FROM TABLE WHERE key = %s AND expires > now()",
    "create": (
        "INSERT INTO TABLE AS r (key, data, expires)"
        " VALUES (%(key)s, %(changed)s::jsonb - %(removed)s::text[],"
        " now() + %(ttl)s::integer * interval '1 second')"
        " ON CONFLICT (key) DO UPDATE SET"
        " data = (CASE WHEN r.expires > now() THEN r.data ELSE '{}'::jsonb END"
        " || %(changed)s::jsonb) - %(removed)s::text[], expires = EXCLUDED.expires"
        " RETURNING r.data = '{}'::jsonb"
    ),
    # Under READ COMMITTED an UPDATE waits for the row's lock, then re-reads the
    # row: concurrent merges apply one after the other, and a row deleted meanwhile
    # (a logout) is not matched, so the save writes nothing.
    "update": (
        "UPDATE TABLE SET data = (data || %(changed)s::jsonb) - %(removed)s::text[],"
        " expires = now() + %(ttl)s::integer * interval '1 second'"
        " WHERE key = %(key)s AND expires > now() AND data <> '{}'::jsonb"
        " RETURNING data = '{}'::jsonb"
    ),
    "delete_empty": "DELETE FROM TABLE WHERE key = %s AND data = '{}'::jsonb",
    "delete": "DELETE FROM TABLE WHERE key = %s",
    "touch": (
        "UPDATE TABLE SET expires = now() + %s::integer * interval '1 second'"
        " WHERE key = %s AND expires > now()"
    ),
    # In expiry order, so the batch is always read from the expiry index: without an
    # order, statistics that say many rows are expired (from before a purge) let the
    # planner scan the table for them, and the batch that finds none left read all
    # of it (longer than the statement timeout at ten million rows).
    "gc": (
        "DELETE FROM TABLE WHERE key IN (SELECT key FROM TABLE"
        " WHERE expires <= now() ORDER BY expires LIMIT %s FOR UPDATE SKIP LOCKED)"
    ),
    # Sealing records in place (encrypt=True): a batch of live keys, and a
    # compare-and-set of a row's fields under its lock.
    "keys": "SELECT key FROM TABLE WHERE key > %s AND expires > now() ORDER BY key LIMIT %s",
    "lock": "SELECT data FROM TABLE WHERE key = %s AND expires > now() FOR UPDATE",
    "set_data": "UPDATE TABLE SET data = %s WHERE key = %s",
}


def encode_value(value: bytes) -> str | list[str]:
    """A field's bytes as a jsonb value: the JSON text, or ``[base64]`` if not text."""
    # A field's value is the serialized JSON text the middleware wrote: stored as a
    # jsonb string, readable in psql. Bytes that jsonb cannot hold as text (not
    # UTF-8, or a NUL) go in a one-element array of their base64, so any bytes
    # round-trip exactly, as the store contract requires.
    if b"\x00" not in value:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return [base64.b64encode(value).decode("ascii")]


def field_name(name: str) -> str:
    """A session key as a jsonb key (NUL escaped)."""
    # PostgreSQL text (and so a jsonb key) cannot hold NUL, which a session key may:
    # \x01 escapes it, and itself, so every key maps to one stored key and back.
    if "\x00" in name or "\x01" in name:
        return name.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")
    return name


def unfield(stored: str) -> str:
    """The session key a jsonb key stands for (undoes :func:`field_name`)."""
    if "\x01" in stored:
        return _ESCAPED.sub(lambda match: "\x00" if match[1] == "\x02" else match[1], stored)
    return stored


_ESCAPED = re.compile("\x01(.)", re.DOTALL)


def decode_value(value: Any) -> bytes:
    """A field's bytes from its jsonb value (undoes :func:`encode_value`).

    :raises ValueError: not a value :func:`encode_value` makes.
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return base64.b64decode(value[0], validate=True)
    raise ValueError(f"a field holds {type(value).__name__}, not a string")
