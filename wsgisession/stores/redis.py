"""RedisStore: sessions in Redis, shared by every process on every machine.

The distributed store: what you use once the app runs on more than one machine.
Each session is one Redis string with the session's TTL, under ``prefix +
base64url(sha256(id)[:24])``, holding every field (session key) and its value
(the format is in :mod:`._redis_record`: half the memory of 1.0's hash per session).
Its costs are counted in round trips:

- a request that never touches the session: none (the client, and its connection
  pool, are not even created until the first use, so the store is safe to create
  before gunicorn forks its workers);
- loading a session: one (``GET``);
- loading a session that is not there (expired, ended, or never stored): two. The
  second looks for a record of 1.0 (a hash under ``prefix + sha256(id)`` in hex);
  one that is found is moved to this layout with the time it had left, which costs
  two more, once (see ``RedisStore._moved``);
- saving a changed session: one (a Lua script that checks the record still exists,
  merges the changed fields into it, drops the removed ones and resets the TTL,
  atomically);
- renewing the idle timeout of a session that is only read: one ``EXPIRE``, at most
  once per ``refresh_interval``.

A round trip costs little more than the network: a store made from a URL keeps its
own idle connections (a stack any thread may take from, so gthread workers never
wait for each other) and sends each command straight on one, in RESP2 (parsed by
``hiredis`` when it is installed, as the ``redis`` extra does). redis-py's pool
would check every connection at every checkout (a ``poll`` and a failed ``recv``,
about 40 µs per command with the rest of its client layer); here a connection is
only put back after a complete reply, and one the server closed while idle is
replaced by a single retry. A client you pass in is used through its own API.

High availability, each tested against real servers (see the README's recipes):

- Sentinel: a ``redis+sentinel://host1:26379,host2:26379/mymaster/0`` URL (or
  ``sentinels=`` and ``service_name=``), or a ``Sentinel.master_for(...)`` client you
  pass; after a failover the store finds the new master by itself. Writes the
  master acknowledged but had not yet sent to the replica are lost with it.
- Cluster: pass a ``RedisCluster`` client; a session is one key, so each load and
  save (one Lua script, one key) runs on the node that owns the key's slot. (A
  record of 1.0 and its new name are, as a rule, in different slots: moving one, and deleting
  both names, are separate commands, which the client sends to each node.)

A Redis that is down or too slow raises
:class:`~wsgisession.errors.StoreUnavailable`: the client gets a ``503`` and keeps
its cookie, and service resumes by itself when Redis is back.

Needs the ``redis`` extra: ``pip install sessionlayer[redis]``.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ConfigurationError, StoreUnavailable
from ._redis_adapter import Connections
from ._redis_index import RedisIndex
from ._redis_record import (
    CORRUPT,
    MARKER,
    MOVED,
    OLD,
    REPLACE,
    SAVE,
    pack,
    record_name,
    sha1,
    unpack,
)
from ._sealing import SealableStore

if TYPE_CHECKING:
    from ._sealed import Replacement

__all__ = ["RedisStore"]

log = logging.getLogger("wsgisession")

_SAVE_SHA = sha1(SAVE)
_REPLACE_SHA = sha1(REPLACE)
_OLD_SHA = sha1(OLD)
_MOVED_SHA = sha1(MOVED)
#: How long the marker left in place of a record of 1.0 lasts: far longer than the
#: round trip between a request's two reads (``GET``, then the old name).
_MARKER_MS = 10_000

#: Names after the prefix: a record of 1.0 (sha256 in hex) and one of this layout.
_OLD_KEY = re.compile(r"[0-9a-f]{64}")
_RECORD = re.compile(r"[A-Za-z0-9_-]{32}")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "RedisStore needs the redis package, which is not installed:"
            " pip install 'sessionlayer[redis]'"
        ) from exc
    return redis


class RedisStore(RedisIndex, SealableStore):
    """Keep sessions in Redis, one string per session.

    It also keeps a per-user index of sessions
    (:class:`~wsgisession.stores.SessionIndex`): a hash per user with TTL upkeep,
    for device listing and revocation.

    ::

        store = RedisStore("redis://cache.internal:6379/0", prefix="myapp:session:")
        app = SessionMiddleware(app, secret_key=KEY, store=store)

        # Sentinel: the master of "mymaster", found through three sentinels.
        store = RedisStore("redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0")

        # Cluster, or any client you configure yourself:
        store = RedisStore(client=RedisCluster(host="node1", port=6379))

    :param url: A ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL; its query
        string may carry redis-py connection options (``?socket_timeout=1``). Or
        ``redis+sentinel://[:password@]host:port[,host:port…]/service_name[/db]``.
    :param client: A redis-py client to use instead of *url*. It must not decode
        responses into ``str`` values it cannot round-trip (bytes are expected).
        The store never closes a client you pass.
    :param prefix: Put before every key, so several apps can share one database.
    :param socket_timeout: Seconds to wait for Redis (connect and reply) before the
        request gets a ``503``, unless *url* sets its own.
    :param sentinels: ``(host, port)`` pairs of Redis Sentinels, instead of *url*.
    :param service_name: The master's name in the sentinels' configuration.
    :param encrypt: Seal each value with AES-256-GCM, under a key derived from the
        middleware's secret key, and store keyed hashes of the session's key names
        (needs ``pip install "sessionlayer[crypto]"``): a snapshot or a replica
        holds no session data. Hashes written in clear before are still read, and
        sealed when next loaded or by ``wsgisession migrate --encrypt``
        (``store.encrypt_records(keys)``).
    :raises ConfigurationError: the redis package is missing, *url* is malformed
        or names an option redis-py does not have, or ``encrypt=True`` without the
        cryptography package.
    """

    seal_purpose = "wsgisession.store:redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        client: Any = None,
        prefix: str = "wsgisession:",
        socket_timeout: float = 2.0,
        sentinels: Collection[tuple[str, int]] | None = None,
        service_name: str | None = None,
        encrypt: bool = False,
    ) -> None:
        self._redis = _import_redis()
        self._init_encrypt(encrypt)
        if not isinstance(prefix, str):
            raise ConfigurationError(f"RedisStore prefix must be a str, not {prefix!r}")
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self._owns_client = client is None
        self._client = client
        self._connections: Connections | None = None
        self._lock = threading.Lock()
        #: (sentinels, service name, master options) when Redis Sentinel is used.
        self._sentinel: tuple[list[tuple[str, int]], str, dict[str, Any]] | None = None
        if sentinels is not None or url.lower().startswith("redis+sentinel://"):
            if client is not None:
                raise ConfigurationError("RedisStore takes a client or sentinels, not both")
            self.url = url if sentinels is None else ""
            self._sentinel = self._sentinel_config(url, sentinels, service_name)
            hosts = ",".join(f"{host}:{port}" for host, port in self._sentinel[0])
            self._where = f"redis+sentinel://{hosts}/{self._sentinel[1]}"
        elif client is None:
            self.url = url
            parts = urlsplit(url)
            # Logged with errors, so without the password.
            self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
            self._check_url(url)
        else:
            self.url = ""
            self._where = type(client).__name__

    def _sentinel_config(
        self, url: str, sentinels: Collection[tuple[str, int]] | None, service_name: str | None
    ) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
        fix = (
            "; use redis+sentinel://[:password@]host:26379[,host:26379…]/service_name[/db]"
            " or sentinels=[(host, port), …] with service_name="
        )
        options: dict[str, Any] = {}
        if sentinels is not None:
            hosts = [(str(host), int(port)) for host, port in sentinels]
            name = service_name
        else:
            parts = urlsplit(url)
            userinfo, _, netloc = parts.netloc.rpartition("@")
            if userinfo:
                user, _, password = userinfo.partition(":")
                options.update(password=unquote(password) or None, username=unquote(user) or None)
            try:
                hosts = []
                for item in netloc.split(","):
                    host, _, port = item.rpartition(":")
                    hosts.append((host.strip("[]") or "127.0.0.1", int(port or 26379)))
            except ValueError as exc:
                raise ConfigurationError(f"invalid Redis Sentinel URL {url!r}: {exc}{fix}") from exc
            path = [segment for segment in parts.path.split("/") if segment]
            name = service_name or (path[0] if path else None)
            if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
                raise ConfigurationError(f"invalid Redis Sentinel URL {url!r}{fix}")
            if len(path) == 2:
                options["db"] = int(path[1])
            for option, value in parse_qs(parts.query).items():
                if option not in ("socket_timeout", "socket_connect_timeout"):
                    raise ConfigurationError(
                        f"unknown option {option!r} in the Redis Sentinel URL {url!r};"
                        " it takes socket_timeout and socket_connect_timeout"
                    )
                options[option] = float(value[-1])
        if not hosts or not name:
            raise ConfigurationError(f"Redis Sentinel needs sentinels and a service name{fix}")
        return hosts, name, options

    def _check_url(self, url: str) -> None:
        try:
            self._redis.connection.parse_url(url)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"invalid Redis URL {url!r}: {exc}; use redis://host:6379/0,"
                " rediss://host:6380/0 or unix:///path/to/redis.sock"
            ) from exc
        known = set(inspect.signature(self._redis.Redis.__init__).parameters)
        unknown = sorted(set(parse_qs(urlsplit(url).query)) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown option {unknown[0]!r} in the Redis URL; use options of"
                " redis.Redis such as socket_timeout, health_check_interval or"
                " max_connections"
            )

    @property
    def client(self) -> Any:
        """The redis-py client, created on first use (after gunicorn has forked)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None and self._sentinel is not None:
                    self._client = self._sentinel_master()
                elif self._client is None:
                    self._client = self._url_client()
                client = self._client
        return client

    def _url_client(self) -> Any:
        redis = self._redis
        return redis.Redis.from_url(
            self.url,
            # RESP2 unless the URL asks for 3: parsed faster (by hiredis and by
            # redis-py's own parser), and nothing here needs RESP3.
            protocol=2,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            # One quick retry replaces a pooled connection the server closed; more
            # would hold the request through an outage.
            retry=redis.retry.Retry(
                redis.backoff.NoBackoff(),
                1,
                supported_errors=(redis.exceptions.ConnectionError,),
            ),
        )

    def ping(self) -> None:
        """Send Redis a ``PING`` now, on a connection of its own that is closed again.

        The store's own client is not created, so a worker forked afterwards
        inherits no connection. A client you passed in is pinged through its own
        pool (redis-py's pools open new connections in a forked process).

        :raises StoreUnavailable: Redis cannot be reached, refused the password, or
            did not answer within *socket_timeout*.
        """
        with self._errors():
            if not self._owns_client:
                self.client.ping()
                return
            client = self._sentinel_master() if self._sentinel else self._url_client()
            try:
                client.ping()
            finally:
                client.close()
                client.connection_pool.disconnect()

    def _sentinel_master(self) -> Any:
        assert self._sentinel is not None
        hosts, name, options = self._sentinel
        timeouts = {
            "socket_timeout": options.get("socket_timeout", self.socket_timeout),
            "socket_connect_timeout": options.get(
                "socket_connect_timeout", options.get("socket_timeout", self.socket_timeout)
            ),
        }
        sentinel = self._redis.sentinel.Sentinel(hosts, sentinel_kwargs=dict(timeouts))
        # Each new connection asks the sentinels where the master is: after a
        # failover, the first error drops the old master's connections and the next
        # request reaches the new one.
        return sentinel.master_for(name, **{**options, **timeouts})

    def _fast(self) -> Connections | None:
        """The store's own connections, or ``None`` to go through the client's API.

        Only for a client the store made with a plain connection pool: a client you
        pass in (Sentinel, Cluster, client-side caching …) keeps its own behaviour.
        """
        connections = self._connections
        if connections is None and self._owns_client:
            client = self.client
            pool: Any = getattr(client, "connection_pool", None)
            if (
                type(pool) is not self._redis.ConnectionPool
                or getattr(pool, "cache", None) is not None
            ):
                return None
            with self._lock:
                if self._connections is None:
                    kwargs = dict(pool.connection_kwargs)
                    self._connections = Connections(
                        self._redis, partial(pool.connection_class, **kwargs)
                    )
                connections = self._connections
        return connections

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._redis.exceptions.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self._where} failed: {type(exc).__name__}: {exc}")

    def load(self, key: str) -> dict[str, bytes] | None:
        """The record under *key*: one ``GET``; on a miss, a second round trip.

        A miss looks for the record in 1.0's layout (a hash under ``prefix + key``)
        and moves one it finds to this layout, with the time it had left.
        """
        rest = record_name(key)
        name = self.prefix + rest
        # try/except rather than _errors(): a generator-based context manager costs
        # a tenth of a session load, and load and save run on every use.
        try:
            fast = self._connections if self._connections is not None else self._fast()
            try:
                if fast is not None:
                    blob = fast.call("GET", name)
                else:
                    blob = self.client.get(name)
                    if isinstance(blob, str):  # a client that decodes (documented as not to)
                        blob = blob.encode("utf-8")
            except self._redis.exceptions.ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                self._corrupt(name, ValueError("not a string"))
                return None
            if blob is None:
                return None if rest == key else self._moved(key, fast)
            try:
                return unpack(blob) or None
            except CORRUPT as exc:
                self._corrupt(name, exc)
                return None
        except self._redis.exceptions.RedisError as exc:
            raise self._unavailable(exc) from exc

    def _moved(self, key: str, fast: Connections | None) -> dict[str, bytes] | None:
        """The record of *key* in 1.0's layout, moved to this one; ``None``: there is none.

        One script reads the hash and its expiry, ``SET … PX … NX`` writes the copy,
        and a second script replaces the hash with a marker that lasts
        :data:`_MARKER_MS`. Of concurrent requests moving one record, the one whose
        ``SET`` lands retires the hash; the others, and any request that missed
        the copy and then found the marker, read the copy. A hash deleted after it
        was read (a logout) is not brought back: its copy is deleted too.
        """
        name, old = self.prefix + record_name(key), self.prefix + key
        call = self.client.execute_command if fast is None else fast.call
        reply = self._eval(call, _OLD_SHA, OLD, old, MARKER)
        if reply is None:
            return None
        if reply == 1:
            return self._copy(name, call)
        if not isinstance(reply, list):
            self._corrupt(old, ValueError("not a hash"))
            return None
        ttl, fields = reply
        try:
            record = {
                (f if isinstance(f, str) else f.decode("utf-8")): (
                    v.encode("utf-8") if isinstance(v, str) else v
                )
                for f, v in zip(fields[::2], fields[1::2], strict=True)
            }
        except (ValueError, AttributeError) as exc:
            self._corrupt(old, exc)
            return None
        if not record or ttl == 0:
            return None
        expiry = ("PX", ttl) if ttl > 0 else ()
        if call("SET", name, pack(record), *expiry, "NX") is None:
            return self._copy(name, call)  # another request moved it first
        if not int(self._eval(call, _MOVED_SHA, MOVED, old, MARKER, _MARKER_MS)):
            call("DEL", name)
            return None
        return record

    def _copy(self, name: str, call: Any) -> dict[str, bytes] | None:
        """The record another request moved from 1.0's layout (and may have saved since)."""
        blob = call("GET", name)
        if isinstance(blob, str):
            blob = blob.encode("utf-8")
        try:
            return None if blob is None else unpack(blob) or None
        except CORRUPT as exc:
            self._corrupt(name, exc)
            return None

    def _eval(self, call: Any, sha: str, script: bytes, name: str, *args: Any) -> Any:
        try:
            return call("EVALSHA", sha, 1, name, *args)
        except self._redis.exceptions.NoScriptError:
            # First use on this server (or after a restart): EVAL also caches it.
            return call("EVAL", script, 1, name, *args)

    def _corrupt(self, name: str, exc: Exception) -> None:
        log.warning("deleted a corrupt session record (%s); starting a fresh session", exc)
        self._delete(name)

    def save(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        ttl: int,
        *,
        create: bool,
    ) -> bool:
        """Merge *changed*, drop *removed* and set the TTL: one ``EVALSHA``."""
        args: list[str | bytes | int] = ["1" if create else "0", ttl, len(changed)]
        for field, value in changed.items():
            args += (field, value)
        args.extend(removed)
        name = self.prefix + record_name(key)
        try:
            fast = self._connections if self._connections is not None else self._fast()
            call = self.client.execute_command if fast is None else fast.call
            try:
                result = call("EVALSHA", _SAVE_SHA, 1, name, *args)
            except self._redis.exceptions.NoScriptError:
                # First use on this server (or after a restart): EVAL also caches it.
                result = call("EVAL", SAVE, 1, name, *args)
        except self._redis.exceptions.RedisError as exc:
            raise self._unavailable(exc) from exc
        return bool(int(result))

    def delete(self, key: str) -> None:
        """Delete the record under *key*, in either layout: one ``DEL``."""
        with self._errors():
            self._delete(*self._record_names(key))

    def _delete(self, *names: str) -> None:
        fast = self._fast()
        if fast is None:
            self.client.delete(*names)  # a RedisCluster client splits it by slot
        else:
            fast.call("DEL", *names)

    def touch(self, key: str, ttl: int) -> None:
        """Reset the TTL of the record under *key*: one ``EXPIRE``."""
        name = self.prefix + record_name(key)
        with self._errors():
            fast = self._fast()
            if fast is None:
                self.client.expire(name, ttl)
            else:
                fast.call("EXPIRE", name, ttl)

    @staticmethod
    def _pack(record: Mapping[str, bytes]) -> bytes:
        """*record* as the string a save writes for a new record (for bulk fills).

        ``pipe.set(store.prefix + store._record_name(key), RedisStore._pack(record),
        ex=ttl)`` writes what ``store.save(key, record, (), ttl, create=True)`` would.
        """
        return pack(record)

    def _record_keys(self) -> Iterator[str]:
        # The prefix is matched literally: escape what SCAN's pattern would interpret.
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix) + "*"
        start = len(self.prefix)
        # The names of records moved from 1.0's layout during the scan, which SCAN may
        # return as well: each record is visited once.
        moved: set[str] = set()
        with self._errors():
            for name in self.client.scan_iter(match=pattern, count=1000):
                rest = (name.decode("utf-8") if isinstance(name, bytes) else name)[start:]
                if _RECORD.fullmatch(rest) and rest not in moved:
                    yield rest
                elif _OLD_KEY.fullmatch(rest) and self.client.type(name) in (b"hash", "hash"):
                    moved.add(record_name(rest))
                    yield rest

    def _sealed_name(self, key: str) -> str:
        # What _record_keys yields for a record of this layout: the record's name.
        return record_name(key)

    def _replace_fields(self, key: str, replacements: Sequence[Replacement]) -> None:
        args: list[str | bytes] = []
        for old in replacements:
            args += (old.field, old.value, old.new_field or "", old.new_value or b"")
        name = self.prefix + record_name(key)
        with self._errors():
            fast = self._fast()
            call = self.client.execute_command if fast is None else fast.call
            self._eval(call, _REPLACE_SHA, REPLACE, name, *args)

    def close(self) -> None:
        """Close the client this store created (a client you passed is left open)."""
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
            connections, self._connections = self._connections, None
        if connections is not None:
            connections.close()
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        encrypt = ", encrypt=True" if self.encrypt else ""
        return f"RedisStore({self._where!r}, prefix={self.prefix!r}{encrypt})"
