"""Redis work per request: round trips (counted in the client) and server commands.

Server commands come from ``INFO commandstats`` deltas; they include the commands a
Lua script runs inside one ``EVALSHA``, which is why round trips are counted too (in
redis-py, one ``send_packed_command`` is one request on the wire; on RedisStore's own
connections, one ``_Direct.round_trip``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import MODES, RedisTarget, Suite, time_calls

_IGNORED = {"info", "ping"}


def _commandstats(client: Any) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter(
        {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name.removeprefix("cmdstat_") not in _IGNORED
        }
    )


@contextmanager
def _counting_round_trips() -> Iterator[list[int]]:
    from redis.connection import AbstractConnection

    from wsgisession.stores._redis_adapter import _Direct

    count = [0]
    original = AbstractConnection.send_packed_command
    direct = _Direct.round_trip

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    # RedisStore's own connections send most commands without redis-py's send step.
    def counted_direct(self: _Direct, packed: Any) -> Any:
        count[0] += 1
        return direct(self, packed)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    _Direct.round_trip = counted_direct  # type: ignore[method-assign]
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        _Direct.round_trip = direct  # type: ignore[method-assign]


def measure(suites: list[Suite], redis: RedisTarget, number: int) -> dict[str, Any]:
    """Per request, for each Redis-backed suite and workload: round trips and commands."""
    import redis as redis_py

    admin = redis_py.Redis.from_url(redis.url)
    results: dict[str, Any] = {}
    try:
        # The floor of any store that talks to Redis: one round trip through redis-py.
        def ping() -> None:
            admin.ping()

        ping()
        pings = sorted(time_calls(ping, 1) for _ in range(max(number, 20)))
        ping_us = {"min": pings[0], "median": pings[len(pings) // 2]}
        for suite in suites:
            if not suite.redis:
                continue
            per_mode: dict[str, Any] = {}
            for mode in MODES:
                client = suite.clients[mode]
                client()  # connections open, scripts loaded
                before = _commandstats(admin)
                with _counting_round_trips() as trips:
                    for _ in range(number):
                        client()
                after = _commandstats(admin)
                delta = after - before
                per_mode[mode] = {
                    "round_trips": trips[0] / number,
                    "server_commands": sum(delta.values()) / number,
                    "by_command": {name: calls / number for name, calls in sorted(delta.items())},
                }
            results[suite.name] = per_mode
    finally:
        admin.close()
    return {
        "server": redis.where,
        "exact": redis.private,
        "requests_per_workload": number,
        "ping_us": ping_us,
        "systems": results,
    }
