"""Memory per stored session: wsgisession's stores beside Beaker and Flask-Session.

- **Redis**: ``MEMORY USAGE key SAMPLES 0`` (exact, the key and its value with
  Redis's own overhead) averaged over up to 200 random sessions, and the growth of
  ``used_memory`` divided by the sessions stored. wsgisession's records are written
  as the middleware writes them (one string per session holding every field, see
  :mod:`benchmarks.scale`); Beaker's (``ext:redis``, a pickled dict under one string
  key) and Flask-Session's (msgpack under one string key) are made by their own
  middleware, one seed request per session, each in a database of its own on the
  private server.
- **In process**: ``LRUStore`` (:func:`benchmarks.scale.lru_memory`) beside Beaker's
  ``type=memory``, both by tracemalloc.
- **SQLite**: the database file's size per session (``benchmarks.scale``).

Peers are only measured on the benchmark's private Redis (``redis-server`` on the
PATH), never on a shared one: their keys cannot be given a prefix to clean up.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from benchmarks.common import SECRET, SESSION, Client, RedisTarget, plain_app

#: Random keys whose MEMORY USAGE is averaged.
SAMPLE = 200


def redis_key_bytes(client: Any, pattern: str = "*") -> dict[str, Any]:
    """Mean ``MEMORY USAGE`` of up to :data:`SAMPLE` keys matching *pattern*."""
    sizes = []
    for key in client.scan_iter(match=pattern, count=1000):
        usage = client.memory_usage(key, samples=0)
        if usage is not None:
            sizes.append(int(usage))
        if len(sizes) >= SAMPLE:
            break
    return {"memory_usage_bytes": sum(sizes) / len(sizes) if sizes else None, "keys": len(sizes)}


def _beaker_seed(**options: Any) -> Client:
    from beaker.middleware import SessionMiddleware as BeakerSessions

    def seed(environ: dict[str, Any]) -> None:
        session = environ["beaker.session"]
        session.update(SESSION)
        session.save()

    options = {"key": "session", "secret": SECRET, "timeout": 1209600, **options}
    return Client(BeakerSessions(plain_app(seed), **options), "/", "session")


def _flask_session_seed(url: str) -> tuple[Client, Any]:
    import flask
    import flask_session
    import redis as redis_py

    client = redis_py.Redis.from_url(url)
    app = flask.Flask("bench-memory")
    app.secret_key = SECRET
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client)
    flask_session.Session(app)

    @app.route("/seed")
    def seed() -> str:
        flask.session.update(SESSION)
        return "ok"

    return Client(app, "/seed", "session"), client


def _fill(seed: Client, count: int) -> None:
    for _ in range(count):
        seed.cookie = None  # a new visitor each time: a new session
        seed()


def _redis_peer(name: str, url: str, count: int) -> dict[str, Any]:
    import redis as redis_py

    client = redis_py.Redis.from_url(url)
    closers = [client.close]
    try:
        client.flushdb()
        before = int(client.info("memory")["used_memory"])
        if name == "Beaker Redis":
            seed = _beaker_seed(type="ext:redis", url=url)
        else:
            seed, peer_client = _flask_session_seed(url)
            closers.append(peer_client.close)
        _fill(seed, count)
        added = int(client.info("memory")["used_memory"]) - before
        stored = int(client.dbsize())
        return redis_key_bytes(client) | {
            "sessions": stored,
            "used_memory_per_session": added / stored if stored else None,
        }
    finally:
        client.flushdb()
        for close in closers:
            close()


def beaker_memory(count: int) -> dict[str, Any]:
    """Bytes per session in Beaker's ``type=memory`` store, by tracemalloc."""
    seed = _beaker_seed(type="memory")
    seed.cookie = None
    seed()  # imports and first-use caches, outside the measurement
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _fill(seed, count)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"sessions": count, "bytes_per_session_tracemalloc": traced / count}


def peers(counts: list[int], redis: RedisTarget | None) -> dict[str, Any]:
    """Beaker and Flask-Session at each size in *counts*; skipped parts say why."""
    results: dict[str, Any] = {}
    try:
        import beaker  # noqa: F401
    except ImportError as exc:
        results["Beaker memory"] = {"skipped": str(exc)}
    else:
        # tracemalloc slows every allocation: at most 100,000 sessions, as for LRUStore.
        results["Beaker memory"] = {
            str(n): beaker_memory(min(n, 100_000)) for n in sorted(set(counts))
        }
    for index, name in enumerate(("Beaker Redis", "Flask-Session Redis")):
        if redis is None or not redis.private:
            results[name] = {"skipped": "needs the benchmark's private redis-server"}
            continue
        url = f"{redis.url.rsplit('/', 1)[0]}/{10 + index}"
        try:
            results[name] = {str(n): _redis_peer(name, url, n) for n in counts}
        except ImportError as exc:
            results[name] = {"skipped": str(exc)}
    return results
