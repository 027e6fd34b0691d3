"""RedisStore's record: one Redis string per session, and the scripts that merge it.

A session is one string, under ``prefix + name``::

    name    = base64url(sha256(id)[:24]), no padding: 32 characters (192 bits)
              (a store key that is not 64 lowercase hex digits is used as it is)
    value   = format | count | lengths | data
    format  = 1 byte: 1, 2 or 3, the width of every number after it: 1, 2 or 4
              bytes (struct "B", "H", "I"), the smallest that holds the count and
              every length
    count   = the number of fields, big-endian
    lengths = twice count numbers, big-endian: the first field's name, its value,
              the second field's name, its value …
    data    = the names (UTF-8) and values (raw bytes; sealed values are binary),
              concatenated in that order

Why a string: Redis keeps a hash whose values are over ``hash-max-listpack-value``
(64 bytes by default) as a hash table, a dict entry and two objects per field; the
benchmark's nine-field session took 1,136 bytes that way (``MEMORY USAGE``) and
takes 536 as one string. Why 24 bytes of the digest: a key of up to 44 bytes fits
Redis's 48-byte allocation (the default prefix, ``wsgisession:``, is 12), and 192
bits are still far beyond guessing or a chance collision (the name says nothing
of the id either way: it is a hash of it).

A save still merges per field (what lets concurrent requests that change different
keys both land): :data:`SAVE` reads the string, merges and writes it back inside
one script on one key, so it is atomic and runs on Redis Cluster too. Scripts parse
the string with Redis's built-in ``struct`` library. The price is Redis's CPU: a
save that changes one field of the benchmark session costs the server about 2.8
times the instructions of the hash version's script (callgrind: ~109,000 against
~39,000 per ``EVALSHA``, of which ~20,000 are any ``EVALSHA``'s), since the whole
string is rewritten; a load costs it less (one ``GET`` of one string).

Records of 1.0 are hashes under ``prefix + sha256(id)`` in hex; :data:`OLD` reads
one and :data:`MOVED` retires it once copied (see RedisStore's ``_moved``).
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from collections.abc import Mapping, Sequence
from functools import lru_cache

__all__ = [
    "CORRUPT",
    "MARKER",
    "MOVED",
    "OLD",
    "REPLACE",
    "SAVE",
    "pack",
    "record_name",
    "sha1",
    "unpack",
]

#: What :func:`unpack` raises for a string that is not a record.
CORRUPT = (ValueError, IndexError, struct.error)

_URLSAFE = bytes.maketrans(b"+/", b"-_")
#: Format byte -> struct code and width, for formats 2 and 3.
_WIDE = {2: ("H", 2), 3: ("I", 4)}
#: The struct code of a part of each size up to 255 (format 1).
_FIELD = [f"{size}s" for size in range(256)]


@lru_cache(maxsize=1024)
def record_name(key: str) -> str:
    """The name of *key*'s record after the prefix (see the module's docstring).

    Cached: a request loads and saves the same key, and each computation costs
    about half a microsecond.
    """
    if len(key) == 64:
        try:
            digest = bytes.fromhex(key)
        except ValueError:
            return key
        if digest.hex() == key:  # lowercase, no spaces: what the backend writes
            return binascii.b2a_base64(digest[:24], newline=False).translate(_URLSAFE).decode()
    return key


def pack(record: Mapping[str, bytes]) -> bytes:
    """*record* as its string: exactly the bytes :data:`SAVE` writes for a new record."""
    parts: list[bytes] = []
    for name, value in record.items():
        parts += (name.encode("utf-8"), value)
    lengths = list(map(len, parts))
    top = max(len(record), max(lengths, default=0))
    fmt, code = (1, "B") if top < 0x100 else (2, "H") if top < 0x10000 else (3, "I")
    return struct.pack(f">B{len(parts) + 1}{code}", fmt, len(record), *lengths) + b"".join(parts)


def unpack(blob: bytes) -> dict[str, bytes]:
    """The fields of a record's string.

    :raises ValueError: (or another of :data:`CORRUPT`) *blob* is not a record.
    """
    if blob[0] == 1:
        start = 2 + 2 * blob[1]
        header = blob[:start]
        if len(header) != start:
            raise ValueError("a record shorter than its lengths")
        parts: Sequence[bytes] = _layout(header).unpack(blob)  # the sizes must add up
    else:
        parts = _wide(blob)
    return dict(zip(map(bytes.decode, parts[::2]), parts[1::2], strict=True))


@lru_cache(maxsize=1024)
def _layout(header: bytes) -> struct.Struct:
    """A struct that cuts a record of format 1 with this *header* into its parts.

    The load path is hot: cutting nine fields with one cached struct costs a quarter
    fewer instructions than a loop of slices (callgrind), and records of one shape
    (the same names, values of the same sizes) come back on most requests; a new
    shape costs about 1 µs more once.
    """
    return struct.Struct(f"{len(header)}x" + "".join(map(_FIELD.__getitem__, header[2:])))


def _wide(blob: bytes) -> list[bytes]:
    """The parts of a record of format 2 or 3: names and values, in turn."""
    try:
        code, width = _WIDE[blob[0]]
    except KeyError:
        raise ValueError(f"a record of an unknown format ({blob[0]})") from None
    (count,) = struct.unpack_from(">" + code, blob, 1)
    start = 1 + width * (1 + 2 * count)
    if start > len(blob):
        raise ValueError("a record shorter than its lengths")
    parts = []
    pos = start
    for size in struct.unpack_from(f">{2 * count}{code}", blob, 1 + width):
        parts.append(blob[pos : pos + size])
        pos += size
    if pos != len(blob):
        raise ValueError("a record whose lengths do not add up to its size")
    return parts


def sha1(script: bytes) -> str:
    """The name ``EVALSHA`` knows *script* by."""
    return hashlib.sha1(script, usedforsecurity=False).hexdigest()


# The format of pack() and unpack() above, in Lua. header(blob) -> count, lengths
# (names' and values' in turn), where the data starts; nil for a string that is not
# a record. assemble(count, top, lengths, data) -> the string of count fields whose
# longest part is top bytes (nil for none). numbers() and bytes() read and write
# the numbers in runs of up to 1000 per call (Lua's C stack holds 8000 values).
_LUA_FORMAT = b"""
local byte, char, sub, rep, concat = string.byte, string.char, string.sub, string.rep, table.concat
local function numbers(blob, fmt, pos, n)
  if fmt == 1 and n <= 1000 then return {byte(blob, pos, pos + n - 1)} end
  local code, width = fmt == 1 and 'B' or fmt == 2 and 'H' or 'I4', fmt == 3 and 4 or fmt
  local out = {}
  while n > 0 do
    local k = n < 1000 and n or 1000
    local run = {struct.unpack('>' .. rep(code, k), blob, pos)}
    for j = 1, k do out[#out + 1] = run[j] end
    pos, n = pos + k * width, n - k
  end
  return out
end
local function bytes(fmt, list, n)
  if fmt == 1 and n <= 1000 then return char(unpack(list, 1, n)) end
  local code, out = fmt == 1 and 'B' or fmt == 2 and 'H' or 'I4', {}
  for i = 1, n, 1000 do
    local j = i + 999 < n and i + 999 or n
    out[#out + 1] = struct.pack('>' .. rep(code, j - i + 1), unpack(list, i, j))
  end
  return concat(out)
end
local function longest(list, n)
  local most = 0
  for i = 1, n, 1000 do
    local j = i + 999 < n and i + 999 or n
    most = math.max(most, unpack(list, i, j))
  end
  return most
end
local function assemble(count, top, lengths, data)
  if count == 0 then return nil end
  if count > top then top = count end
  local fmt = top > 65535 and 3 or top > 255 and 2 or 1
  return char(fmt) .. bytes(fmt, {count}, 1) .. bytes(fmt, lengths, 2 * count) .. concat(data)
end
local function header(blob)
  local fmt = byte(blob, 1)
  local width = fmt == 3 and 4 or fmt
  if (fmt ~= 1 and fmt ~= 2 and fmt ~= 3) or #blob < 1 + width then return nil end
  local count = numbers(blob, fmt, 2, 1)[1]
  local at = 2 + width + 2 * count * width
  if at - 1 > #blob then return nil end
  return count, numbers(blob, fmt, 2 + width, 2 * count), at
end
"""

# parse(blob) -> names, values, count, and pack(names, values, n) -> the string,
# leaving out the fields whose value is false (nil when none is left).
_LUA_FIELDS = b"""
local function parse(blob)
  local count, lengths, at = header(blob)
  if not count then return nil end
  local names, values = {}, {}
  for i = 1, count do
    local a, b = lengths[2 * i - 1], lengths[2 * i]
    names[i] = sub(blob, at, at + a - 1)
    values[i] = sub(blob, at + a, at + a + b - 1)
    at = at + a + b
  end
  if at - 1 ~= #blob then return nil end
  return names, values, count
end
local function pack(names, values, n)
  local lengths, data, count, top = {}, {}, 0, 0
  for i = 1, n do
    local value = values[i]
    if value then
      local name = names[i]
      local a, b = #name, #value
      count = count + 1
      lengths[2 * count - 1], lengths[2 * count] = a, b
      data[2 * count - 1], data[2 * count] = name, value
      if a > top then top = a end
      if b > top then top = b end
    end
  end
  return assemble(count, top, lengths, data)
end
local function index(names, n)
  local at = {}
  for i = 1, n do at[names[i]] = i end
  return at
end
local function put(names, values, at, n, name, value)
  local i = at[name]
  if i then
    values[i] = value
    return n
  end
  n = n + 1
  names[n], values[n], at[name] = name, value, n
  return n
end
"""

#: KEYS[1]: the record. ARGV: create ("1"/"0"), ttl, n, then n field/value pairs,
#: then the fields to remove. Returns 0 when create is "0" and the record is gone
#: (nothing is written); a record left without fields is deleted, as Redis drops
#: an emptied hash.
SAVE = (
    _LUA_FORMAT
    + b"""
local key = KEYS[1]
local blob = redis.call('GET', key)
local existed, count, lengths, at = blob, nil, nil, nil
if blob then count, lengths, at = header(blob) end
if not count then
  if ARGV[1] == '0' then return 0 end
  blob, count, lengths, at = '', 0, {}, 1
end
-- new[name]: the value to store, false to remove. A field is only cut out of the
-- record when its name has the length of one of these.
local new, sizes, changed, done = {}, {}, tonumber(ARGV[3]), {}
for i = 4, 2 + 2 * changed, 2 do new[ARGV[i]], sizes[#ARGV[i]] = ARGV[i + 1], true end
for i = 4 + 2 * changed, #ARGV do new[ARGV[i]], sizes[#ARGV[i]] = false, true end
-- Fields left as they are are copied in runs of the old record, and their lengths
-- stay where they are in the lengths table, which becomes the new record's.
local kept, data, run, pos = 0, {}, at, at
for i = 1, count do
  local a, size = lengths[2 * i - 1], lengths[2 * i]
  local b = size
  if sizes[a] then
    local name = sub(blob, pos, pos + a - 1)
    local value = new[name]
    if value ~= nil then
      if pos > run then data[#data + 1] = sub(blob, run, pos - 1) end
      run = pos + a + size
      b = false
      if value and not done[name] then  -- (done: a second copy of a name, dropped)
        b = #value
        data[#data + 1] = name
        data[#data + 1] = value
        done[name] = true
      end
    end
  end
  if b then
    kept = kept + 1
    if kept ~= i or b ~= size then lengths[2 * kept - 1], lengths[2 * kept] = a, b end
  end
  pos = pos + a + size
end
if pos - 1 ~= #blob then  -- the lengths do not add up: not a record, as if none
  if ARGV[1] == '0' then return 0 end
  kept, data, lengths, done = 0, {}, {}, {}
else
  if pos > run then data[#data + 1] = sub(blob, run, pos - 1) end
  for i = 2 * kept + 1, 2 * count do lengths[i] = nil end
end
for i = 4, 2 + 2 * changed, 2 do
  local name, value = ARGV[i], new[ARGV[i]]
  if value and not done[name] then
    kept = kept + 1
    lengths[2 * kept - 1], lengths[2 * kept] = #name, #value
    data[#data + 1] = name
    data[#data + 1] = value
    done[name] = true
  end
end
local record = assemble(kept, longest(lengths, 2 * kept), lengths, data)
local ttl = tonumber(ARGV[2])
if record and ttl > 0 then
  redis.call('SET', key, record, 'EX', ttl)
elseif existed then
  redis.call('DEL', key)
end
return 1
"""
)

#: KEYS[1]: the record. ARGV: groups of four: field, the value it must still hold,
#: the new field ('' to only delete) and its value (which may be the same field).
#: The record keeps its expiry; one that is gone is not brought back.
REPLACE = (
    _LUA_FORMAT
    + _LUA_FIELDS
    + b"""
local key = KEYS[1]
local blob = redis.call('GET', key)
if not blob then return 0 end
local names, values, n = parse(blob)
if not names then return 0 end
local at, changed = index(names, n), false
for i = 1, #ARGV, 4 do
  local j = at[ARGV[i]]
  if j and values[j] == ARGV[i + 1] then
    values[j] = false
    if ARGV[i + 2] ~= '' then n = put(names, values, at, n, ARGV[i + 2], ARGV[i + 3]) end
    changed = true
  end
end
if not changed then return 1 end
local out = pack(names, values, n)
if not out then
  redis.call('DEL', key)
  return 1
end
local ttl = redis.call('PTTL', key)
if ttl > 0 then redis.call('SET', key, out, 'PX', ttl) else redis.call('SET', key, out) end
return 1
"""
)

#: What a record of 1.0 is replaced with once copied to this layout (by :data:`MOVED`).
MARKER = b"moved"

#: KEYS[1]: a record of 1.0 (a hash). Returns nil when there is none, 1 for the
#: marker that it was moved, 0 for a key of another type, else {its PTTL, {field,
#: value, field, value …}}.
OLD = b"""
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return false end
if kind == 'hash' then return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])} end
if kind == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

#: KEYS[1]: a record of 1.0 just copied to this layout. ARGV: the marker, and how
#: many milliseconds it stays. Replaces the hash with the marker, so that a request
#: which missed the copy and then finds no hash looks for the copy again; returns 0
#: (and writes nothing) when the hash was gone: deleted (a logout) after it was read.
MOVED = b"""
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
