"""RedisStore's own connections: one round trip per command, shared by threads.

A store made from a URL sends each command straight on one of these connections,
without redis-py's per-checkout health check (a ``poll`` and a failed ``recv`` on
every command); see :class:`Connections` for why that stays correct.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

__all__ = ["Connections"]


class Connections:
    """Idle redis-py connections of one process, most recently used first.

    Taking one is a ``list.pop()`` (atomic under the GIL), so threads share the stack
    without a lock and without redis-py's per-checkout health check. The check is
    not needed because a connection goes back only after a complete reply: one
    interrupted mid-command (a timeout, an exception) is closed, never reused, so no
    stale reply can be read by the next command. One that the server closed while
    it sat idle fails on its next use with a ``ConnectionError``, and the command is
    sent once more on a new connection.
    """

    def __init__(self, redis: Any, factory: Any) -> None:
        self._factory = factory
        self._idle: list[Any] = []
        self._connection_error = redis.exceptions.ConnectionError
        self._response_error = redis.exceptions.ResponseError
        _ALL.add(self)

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply (one round trip).

        :raises redis.exceptions.RedisError: Redis is unreachable, too slow or refused it.
        """
        idle = self._idle
        for attempt in (1, 2):
            try:
                conn = idle.pop()
            except IndexError:
                conn = self._factory()
            try:
                conn.send_packed_command(conn.pack_command(*args), check_health=False)
                reply = conn.read_response()
            except self._response_error:
                idle.append(conn)  # an error reply is a complete reply
                raise
            except self._connection_error:
                conn.disconnect()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                conn.disconnect()
                raise
            idle.append(conn)
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def forget(self) -> None:
        """Drop the idle connections without closing them (a forked child's copies)."""
        self._idle = []

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()


_ALL: weakref.WeakSet[Connections] = weakref.WeakSet()


def _after_fork() -> None:
    # A child must not talk on its parent's sockets: both would read each other's
    # replies. Registered once, instead of a getpid() on every command.
    for connections in list(_ALL):
        connections.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
