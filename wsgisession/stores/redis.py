"""RedisStore: sessions in Redis, shared by every process on every machine.

The distributed store: what you use once the app runs on more than one machine.
Each session is a Redis hash (one field per session key) with the session's TTL,
under ``prefix + sha256(id)``. Its costs are counted in round trips:

- a request that never touches the session: none (the client, and its connection
  pool, are not even created until the first use, so the store is safe to create
  before gunicorn forks its workers);
- loading a session: one (``HGETALL``);
- saving a changed session: one (a Lua script that checks the record still exists,
  merges the changed fields, deletes the removed ones and resets the TTL,
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
  save (one Lua script, one key) runs on the node that owns the key's slot.

A Redis that is down or too slow raises
:class:`~wsgisession.errors.StoreUnavailable`: the client gets a ``503`` and keeps
its cookie, and service resumes by itself when Redis is back.

Needs the ``redis`` extra: ``pip install sessionlayer[redis]``.
"""

from __future__ import annotations

import hashlib
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
from ._sealing import SealableStore

if TYPE_CHECKING:
    from ._sealed import Replacement

__all__ = ["RedisStore"]

log = logging.getLogger("wsgisession")

# KEYS[1]: the record. ARGV: create ("1"/"0"), ttl, n, then n field/value pairs,
# then the fields to remove. Returns 0 when create is "0" and the record is gone.
_SAVE = b"""
local key = KEYS[1]
if ARGV[1] == '0' and redis.call('EXISTS', key) == 0 then return 0 end
local n = tonumber(ARGV[3])
for i = 4, 2 + 2 * n, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', key, ARGV[i]) end
if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ARGV[2]) end
return 1
"""
_SAVE_SHA = hashlib.sha1(_SAVE, usedforsecurity=False).hexdigest()

# KEYS[1]: the record. ARGV: groups of four: field, the value it must still hold,
# the new field ('' to only delete) and its value. The new field is written before
# the old one is deleted, so the hash never empties, which would drop its TTL.
_REPLACE = b"""
for i = 1, #ARGV, 4 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[1], ARGV[i + 2], ARGV[i + 3]) end
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""
_REPLACE_SHA = hashlib.sha1(_REPLACE, usedforsecurity=False).hexdigest()

#: A session record's name after the prefix: sha256 in hex (the index's are not).
_RECORD_KEY = re.compile(r"[0-9a-f]{64}")


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
    """Keep sessions in Redis, one hash per session.

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
        """The record under *key*: one ``HGETALL``."""
        name = self.prefix + key
        # try/except rather than _errors(): a generator-based context manager costs
        # a tenth of a session load, and load and save run on every use.
        try:
            fast = self._connections if self._connections is not None else self._fast()
            try:
                if fast is None:
                    raw = self.client.hgetall(name)
                else:
                    reply = fast.call("HGETALL", name)
                    if type(reply) is list:  # RESP2: field, value, field, value …
                        try:
                            fields = map(bytes.decode, reply[::2])
                            return dict(zip(fields, reply[1::2], strict=True)) or None
                        except (ValueError, TypeError) as exc:
                            self._corrupt(name, exc)
                            return None
                    raw = reply  # RESP3 (?protocol=3): a map
            except self._redis.exceptions.ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                self._corrupt(name, ValueError("not a hash"))
                return None
            try:
                return {
                    (f if isinstance(f, str) else f.decode("utf-8")): (
                        v.encode("utf-8") if isinstance(v, str) else v
                    )
                    for f, v in raw.items()
                } or None
            except (ValueError, AttributeError) as exc:
                self._corrupt(name, exc)
                return None
        except self._redis.exceptions.RedisError as exc:
            raise self._unavailable(exc) from exc

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
        name = self.prefix + key
        try:
            fast = self._connections if self._connections is not None else self._fast()
            call = self.client.execute_command if fast is None else fast.call
            try:
                result = call("EVALSHA", _SAVE_SHA, 1, name, *args)
            except self._redis.exceptions.NoScriptError:
                # First use on this server (or after a restart): EVAL also caches it.
                result = call("EVAL", _SAVE, 1, name, *args)
        except self._redis.exceptions.RedisError as exc:
            raise self._unavailable(exc) from exc
        return bool(int(result))

    def delete(self, key: str) -> None:
        """Delete the record under *key*: one ``DEL``."""
        with self._errors():
            self._delete(self.prefix + key)

    def _delete(self, name: str) -> None:
        fast = self._fast()
        if fast is None:
            self.client.delete(name)
        else:
            fast.call("DEL", name)

    def touch(self, key: str, ttl: int) -> None:
        """Reset the TTL of the record under *key*: one ``EXPIRE``."""
        with self._errors():
            fast = self._fast()
            if fast is None:
                self.client.expire(self.prefix + key, ttl)
            else:
                fast.call("EXPIRE", self.prefix + key, ttl)

    def _record_keys(self) -> Iterator[str]:
        # The prefix is matched literally: escape what SCAN's pattern would interpret.
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix) + "*"
        start = len(self.prefix)
        with self._errors():
            for name in self.client.scan_iter(match=pattern, count=1000):
                rest = (name.decode("utf-8") if isinstance(name, bytes) else name)[start:]
                if _RECORD_KEY.fullmatch(rest):
                    yield rest

    def _replace_fields(self, key: str, replacements: Sequence[Replacement]) -> None:
        args: list[str | bytes] = []
        for old in replacements:
            args += (old.field, old.value, old.new_field or "", old.new_value or b"")
        name = self.prefix + key
        with self._errors():
            fast = self._fast()
            call = self.client.execute_command if fast is None else fast.call
            try:
                call("EVALSHA", _REPLACE_SHA, 1, name, *args)
            except self._redis.exceptions.NoScriptError:
                call("EVAL", _REPLACE, 1, name, *args)

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
