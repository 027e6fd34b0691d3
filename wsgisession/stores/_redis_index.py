"""The per-user session index of RedisStore (see :class:`~wsgisession.stores.SessionIndex`).

A hash per user, ``prefix + "user:" + sha256(user)``: field = device handle,
value = ``record key + " " + info`` (the store key, sha256 in hex; the record is
under :meth:`RedisIndex._record_names`, its name of 1.0 included). Its TTL is raised
on each write to cover the longest-lived entry; entries whose record has expired are
pruned when the list is read. A "not before" stamp is a plain string key,
``prefix + "notbefore:" + …``.

Every script touches one key, so the index works on Redis Cluster too: moving an
entry is a compare-and-set on the user's hash, and revoking deletes the record
*before* removing the entry with a compare-and-delete, retrying when a request
moved the entry meanwhile (that request's new record is then deleted as well).
A login under a cap on sessions is one script too: it counts the hash, removes the
entries to evict and adds the new one, and the evicted records are deleted next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Any

from ._redis_record import record_name
from .base import IndexEntry, SessionIndex

# KEYS[1]: the user's hash. ARGV: handle, expected key ("" for none), value, ttl.
_PUT = b"""
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
elseif not cur or string.sub(cur, 1, #ARGV[2] + 1) ~= ARGV[2] .. ' ' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""
# KEYS[1]: the user's hash. ARGV: handle, key. Deletes the entry if it points at key.
_FORGET = b"""
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.sub(cur, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""
# KEYS[1]: the user's hash. ARGV: handle, key, info, ttl, limit, then the handles to
# evict. Returns nil (no room, or the handle exists), or 1 then each removed entry's
# handle and value (a leading 1, so that nothing removed is not nil).
_ADMIT = b"""
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if string.sub(cur, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then return {1} end
  return nil
end
local kept = redis.call('HLEN', KEYS[1])
for i = 6, #ARGV do
  kept = kept - redis.call('HEXISTS', KEYS[1], ARGV[i])
end
if kept >= tonumber(ARGV[5]) then return nil end
local ended = {1}
for i = 6, #ARGV do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value then
    redis.call('HDEL', KEYS[1], ARGV[i])
    table.insert(ended, ARGV[i])
    table.insert(ended, value)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return ended
"""
# Far more than any real race needs: each retry means a request moved the entry again.
_REVOKE_TRIES = 20


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _split(value: bytes | str) -> tuple[str, bytes]:
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    key, _, info = raw.partition(b" ")
    return key.decode("ascii"), info


class RedisIndex(SessionIndex):
    """The :class:`SessionIndex` methods of :class:`~wsgisession.RedisStore`."""

    prefix: str

    @property
    def client(self) -> Any:
        raise NotImplementedError  # RedisStore's

    def _errors(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # RedisStore's

    #: The name of a session record after the prefix (see stores/_redis_record.py).
    _record_name = staticmethod(record_name)

    def _record_names(self, key: str) -> tuple[str, ...]:
        """The names *key*'s record may have: this layout's, and 1.0's if it differs."""
        name = record_name(key)
        if name == key:
            return (self.prefix + key,)
        return self.prefix + name, self.prefix + key

    def _user_key(self, user: str, kind: str = "user") -> str:
        return f"{self.prefix}{kind}:{hashlib.sha256(user.encode('utf-8')).hexdigest()}"

    def _script(self, script: bytes, *args: Any) -> int:
        with self._errors():
            return int(self.client.eval(script, 1, *args))

    def index_put(
        self, user: str, handle: str, key: str, info: bytes, ttl: int, *, expect: str | None
    ) -> bool:
        """Compare-and-set the entry: one ``EVAL``."""
        value = key.encode("ascii") + b" " + info
        return bool(self._script(_PUT, self._user_key(user), handle, expect or "", value, ttl))

    def index_admit(
        self,
        user: str,
        handle: str,
        key: str,
        info: bytes,
        ttl: int,
        *,
        limit: int,
        evict: Collection[str] = (),
    ) -> list[IndexEntry] | None:
        """Count, evict and add in one ``EVAL``, then delete the evicted records.

        See the base class. The script counts the hash's entries, so the caller
        lists them first (:meth:`index_list` drops those whose record expired). The
        records are deleted after their entries are gone, the one order a
        single-key script allows: a request of an evicted session that renews or
        moves it meanwhile finds its entry gone and ends it.
        """
        args = (self._user_key(user), handle, key, info, ttl, limit, *evict)
        with self._errors():
            result = self.client.eval(_ADMIT, 1, *args)
            if result is None:
                return None
            pairs = result[1:]
            ended = [
                IndexEntry(_text(h), *_split(v))
                for h, v in zip(pairs[::2], pairs[1::2], strict=True)
            ]
            for entry in ended:
                self.client.delete(*self._record_names(entry.key))
        return ended

    def index_list(self, user: str) -> list[IndexEntry]:
        """``HGETALL``, then pipelined ``EXISTS`` of each entry's record; dead entries are dropped.

        A record is looked for under both its names (see :meth:`_record_names`), each
        with an ``EXISTS`` of its own: on Redis Cluster the two are in different slots.
        """
        name = self._user_key(user)
        with self._errors():
            raw = self.client.hgetall(name)
            entries = [IndexEntry(_text(h), *_split(v)) for h, v in raw.items()]
            pipe = self.client.pipeline(transaction=False)
            groups = [self._record_names(entry.key) for entry in entries]
            for names in groups:
                for record in names:
                    pipe.exists(record)
            found = iter(pipe.execute() if entries else [])
            alive = [any([next(found) for _ in names]) for names in groups]
        for entry, live in zip(entries, alive, strict=True):
            if not live:
                self._script(_FORGET, name, entry.handle, entry.key)
        return [entry for entry, live in zip(entries, alive, strict=True) if live]

    def index_revoke(self, user: str, handle: str) -> bool:
        """Delete the record, then the entry if unchanged; retry if it moved."""
        name = self._user_key(user)
        found = False
        for _ in range(_REVOKE_TRIES):
            with self._errors():
                value = self.client.hget(name, handle)
                if value is None:
                    return found
                found = True
                key, _info = _split(value)
                self.client.delete(*self._record_names(key))
            if self._script(_FORGET, name, handle, key):
                return True
        return found

    def index_forget(self, user: str, handle: str, key: str) -> None:
        """Drop the entry if it still points at *key*: one ``EVAL``."""
        self._script(_FORGET, self._user_key(user), handle, key)

    def get_not_before(self, user: str) -> float | None:
        """The stamp of *user*: one ``GET``."""
        with self._errors():
            value = self.client.get(self._user_key(user, "notbefore"))
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    def set_not_before(self, user: str, when: float, ttl: int) -> None:
        """Set the stamp of *user* for *ttl* seconds: one ``SET … EX``."""
        with self._errors():
            self.client.set(self._user_key(user, "notbefore"), repr(when), ex=ttl)
