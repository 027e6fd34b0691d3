"""RedisStore's own connections: one round trip per command, shared by threads.

A store made from a URL sends each command straight on one of these connections,
without redis-py's per-checkout health check (a ``poll`` and a failed ``recv`` on
every command); see :class:`Connections` for why that stays correct.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import weakref
from collections.abc import Callable
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

    def __init__(self, redis: Any, factory: Callable[[], Any]) -> None:
        self._factory = factory
        if sys.platform.startswith("linux"):
            self._factory = _with_kernel_timeouts(factory, redis)
        self._idle: list[Any] = []
        self._connection_error = redis.exceptions.ConnectionError
        self._response_error = redis.exceptions.ResponseError
        self._timeout_error = redis.exceptions.TimeoutError
        try:
            # The C function redis-py's own hiredis serializer calls, without the
            # Python layer around it (our commands never need its argument fixes).
            from hiredis import pack_command
        except ImportError:
            self._pack: Callable[[tuple[Any, ...]], Any] | None = None
        else:
            self._pack = pack_command
        _ALL.add(self)

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply (one round trip).

        :raises redis.exceptions.RedisError: Redis is unreachable, too slow or refused it.
        """
        idle = self._idle
        packed = None if self._pack is None else [self._pack(args)]
        for attempt in (1, 2):
            try:
                conn = idle.pop()
            except IndexError:
                conn = self._factory()
            try:
                conn.send_packed_command(packed or conn.pack_command(*args), check_health=False)
                reply = conn.read_response()
            except self._response_error:
                idle.append(conn)  # an error reply is a complete reply
                raise
            except self._connection_error as exc:
                conn.disconnect()
                if isinstance(exc.__context__, BlockingIOError):
                    # The kernel's timeout (see _with_kernel_timeouts): Redis is too
                    # slow, and a retry would only double the wait before the 503.
                    raise self._timeout_error(f"Timeout talking to Redis: {exc}") from exc
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


def _with_kernel_timeouts(factory: Callable[[], Any], redis: Any) -> Callable[[], Any]:
    """*factory*, but its plain TCP and Unix connections time out in the kernel.

    A Python socket with a timeout calls ``poll`` before every ``send`` and ``recv``:
    four system calls per round trip instead of two, about 5 µs each time. Once
    connected (the handshake keeps Python's timeouts), the socket is made blocking
    with the same timeout as ``SO_RCVTIMEO``/``SO_SNDTIMEO``: a reply that does not
    come in time fails the ``recv`` with ``EAGAIN``, which :meth:`Connections.call`
    reports as redis-py's ``TimeoutError``. Linux only (``struct timeval``'s layout);
    TLS connections keep Python's timeouts.
    """
    plain = (redis.connection.Connection, redis.connection.UnixDomainSocketConnection)

    def connected() -> Any:
        conn = factory()
        if type(conn) in plain:
            conn.connect()
            sock = conn._sock
            timeout = sock.gettimeout()
            if timeout:
                seconds = int(timeout)
                micros = int((timeout - seconds) * 1_000_000) or (0 if seconds else 1)
                limit = struct.pack("ll", seconds, micros)  # never 0: that means no limit
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
                sock.settimeout(None)
        return conn

    return connected


def _after_fork() -> None:
    # A child must not talk on its parent's sockets: both would read each other's
    # replies. Registered once, instead of a getpid() on every command.
    for connections in list(_ALL):
        connections.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
