"""RedisStore's own connections: one round trip per command, shared by threads.

The adapter module: the one place that relies on redis-py's private details (a
connection's ``_sock`` and ``_parser.parse_error``), for a measured hot path (a
read costs one raw round trip plus about 35 µs, not redis-py's four Python layers;
docs/benchmarks.md). ``make compat-versions`` runs its tests against the oldest and
newest redis-py and hiredis that ``pyproject.toml`` allows; a connection without
those details falls back to redis-py's public ``send_command``/``read_response``.

A store made from a URL sends each command straight on one of these connections,
without redis-py's per-checkout health check (a ``poll`` and a failed ``recv`` on
every command); see :class:`Connections` for why that stays correct. redis-py
makes, authenticates and closes the connections; on a plain TCP or Unix socket
speaking RESP2, hiredis reads the replies directly (:class:`_Direct`).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import weakref
from collections.abc import Callable
from functools import partial
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
        self._idle: list[tuple[Any, _Direct | None]] = []
        self._connection_error = redis.exceptions.ConnectionError
        self._response_error = redis.exceptions.ResponseError
        self._timeout_error = redis.exceptions.TimeoutError
        self._plain = (redis.connection.Connection, redis.connection.UnixDomainSocketConnection)
        try:
            # The C function redis-py's own hiredis serializer calls, without the
            # Python layer around it (our commands never need its argument fixes).
            from hiredis import Reader, pack_command
        except ImportError:
            self._pack: Callable[[tuple[Any, ...]], Any] | None = None
        else:
            self._pack = pack_command
            self._reader = partial(Reader, protocolError=redis.exceptions.InvalidResponse)
        _ALL.add(self)

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply (one round trip).

        :raises redis.exceptions.RedisError: Redis is unreachable, too slow or refused it.
        """
        idle = self._idle
        packed = None if self._pack is None else self._pack(args)
        for attempt in (1, 2):
            try:
                conn, direct = idle.pop()
            except IndexError:
                conn = self._factory()
                direct = self._direct(conn, packed)
            try:
                if direct is not None:
                    reply = direct.round_trip(packed)
                else:
                    conn.send_packed_command(
                        [packed] if packed else conn.pack_command(*args), check_health=False
                    )
                    reply = conn.read_response()
            except self._response_error:
                idle.append((conn, direct))  # an error reply is a complete reply
                raise
            except self._connection_error as exc:
                conn.disconnect()
                if isinstance(exc.__context__, (BlockingIOError, TimeoutError)):
                    # The kernel's timeout (see _with_kernel_timeouts), or Python's:
                    # Redis is too slow, and a retry would only double the wait.
                    raise self._timeout_error(f"Timeout talking to Redis: {exc}") from exc
                if attempt == 2:
                    raise
                continue
            except BaseException:
                conn.disconnect()
                raise
            idle.append((conn, direct))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _direct(self, conn: Any, packed: Any) -> _Direct | None:
        """A :class:`_Direct` round trip for *conn*, if it is a plain RESP2 connection."""
        if packed is None or type(conn) not in self._plain or conn.protocol not in (2, "2", None):
            return None
        parse_error = getattr(getattr(conn, "_parser", None), "parse_error", None)
        if parse_error is None or not hasattr(conn, "_sock"):
            return None  # a redis-py whose private details moved: its public path
        if conn._sock is None:
            conn.connect()
        # Error replies become the exceptions redis-py would raise (NoScriptError …).
        reader = self._reader(replyError=parse_error)
        return _Direct(conn._sock, reader, self._connection_error)

    def forget(self) -> None:
        """Drop the idle connections without closing them (a forked child's copies)."""
        self._idle = []

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.disconnect()


class _Direct:
    """One command's round trip on a connected plain socket, read by hiredis in C.

    redis-py's ``send_packed_command`` and ``read_response`` wrap the same two steps
    in four layers of Python that run on every command (about 3 µs each time);
    the connection is still made, authenticated and closed by redis-py.
    """

    __slots__ = ("_buffer", "_error", "_reader", "_sock")

    def __init__(self, sock: socket.socket, reader: Any, error: type[Exception]) -> None:
        self._sock = sock
        self._reader = reader
        self._buffer = bytearray(65536)
        self._error = error

    def round_trip(self, packed: Any) -> Any:
        """Send *packed* (one command) and return its reply; an error reply is raised."""
        sock = self._sock
        reader = self._reader
        try:
            sock.sendall(packed)
            reply = reader.gets()
            while reply is False:
                size = sock.recv_into(self._buffer)
                if not size:
                    raise self._error("Connection closed by server.")
                reader.feed(self._buffer, 0, size)
                reply = reader.gets()
        except OSError as exc:
            raise self._error(f"Error talking to Redis: {exc}") from exc
        if isinstance(reply, Exception):
            raise reply
        return reply


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
        if type(conn) in plain and hasattr(conn, "_sock"):
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
