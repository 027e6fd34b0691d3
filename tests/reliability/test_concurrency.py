"""Concurrency under a real server: gunicorn, 3 gthread workers of 8 threads each.

Many clients share one session, as the tabs of one browser do, and hammer it at
once, over SQLiteStore, RedisStore and PostgresStore:

- each client increments a key of its own: no increment is lost (the per-key
  merge, end to end);
- all clients write the same key: what is stored is always one whole value that
  was written, and the session stays loadable;
- the session is logged out while slow requests are in flight: none of them brings
  it back, and no request sent after the logout is answered as logged in.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .client import Answer, Browser, get_once, login
from .conftest import Served

pytestmark = pytest.mark.slow

CLIENTS = 16
INCREMENTS = 200


def in_parallel(count: int, work: Any) -> list[Any]:
    """Run ``work(i)`` for i in range(count) in as many threads; their results in order."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


def test_sixteen_clients_on_one_session_each_incrementing_its_own_key_lose_nothing(
    served: Served,
) -> None:
    cookie = login(served.server)

    def increment(i: int) -> list[Answer]:
        with Browser(served.server, cookie) as browser:
            return [browser.get(f"/inc?key=k{i}") for _ in range(INCREMENTS)]

    for answers in in_parallel(CLIENTS, increment):
        assert {answer.status for answer in answers} == {200}
        # Each client saw its own count go up by exactly one every time.
        assert [answer.body for answer in answers] == [str(n) for n in range(1, INCREMENTS + 1)]
        assert all(answer.session_cookies == () for answer in answers)  # one id throughout

    final = json.loads(get_once(served.server, "/get", cookie).body)
    assert final == {"user": "ann", **{f"k{i}": INCREMENTS for i in range(CLIENTS)}}


WRITES = 40


def written(writer: int, n: int) -> str:
    """A long value, so that a torn or mixed write could not pass for a written one."""
    return f"{writer}.{n}." + chr(ord("a") + writer) * 1000


def test_many_clients_writing_the_same_key_leave_one_whole_written_value(
    served: Served,
) -> None:
    cookie = login(served.server)
    assert get_once(served.server, "/set?key=shared&value=initial", cookie).status == 200
    values = {written(i, n) for i in range(CLIENTS) for n in range(WRITES)} | {"initial"}

    def write_and_read(i: int) -> list[dict[str, Any]]:
        seen = []
        with Browser(served.server, cookie) as client:
            for n in range(WRITES):
                assert client.get(f"/set?key=shared&value={written(i, n)}").status == 200
                answer = client.get("/get")
                assert answer.status == 200
                seen.append(json.loads(answer.body))
        return seen

    for seen in in_parallel(CLIENTS, write_and_read):
        for session in seen:
            assert session.keys() == {"user", "shared"}
            assert session["user"] == "ann"
            assert session["shared"] in values

    final = json.loads(get_once(served.server, "/get", cookie).body)
    # The last write to land is the last one of some client.
    assert final["shared"] in {written(i, WRITES - 1) for i in range(CLIENTS)}
    assert final["user"] == "ann"


SLOW_CLIENTS = 12
BEFORE_LOGOUT = 48  # requests answered before the logout is sent
AFTER_LOGOUT = 96  # requests answered after it, before the clients stop


def test_logout_wins_over_requests_in_flight(served: Served) -> None:
    cookie = login(served.server)
    sid = cookie.partition(".")[0]
    key = hashlib.sha256(sid.encode()).hexdigest()
    logged_out, stop = threading.Event(), threading.Event()
    answered = threading.Semaphore(0)

    def work(i: int) -> list[tuple[bool, bool, Answer]]:
        """(sent after the logout?, answered after it?, answer) for each request."""
        seen = []
        with Browser(served.server, cookie) as client:
            while not stop.is_set():
                sent_after = logged_out.is_set()
                # Loads the session, sleeps, then writes: slow requests in flight.
                answer = client.get(f"/work?key=k{i}&delay=0.02")
                seen.append((sent_after, logged_out.is_set(), answer))
                answered.release()
        return seen

    with ThreadPoolExecutor(SLOW_CLIENTS) as pool:
        futures = [pool.submit(work, i) for i in range(SLOW_CLIENTS)]
        try:
            for _ in range(BEFORE_LOGOUT):
                assert answered.acquire(timeout=60)
            assert get_once(served.server, "/logout", cookie).status == 200
            logged_out.set()
            for _ in range(AFTER_LOGOUT):
                assert answered.acquire(timeout=60)
        finally:
            stop.set()
        results = [answer for future in futures for answer in future.result()]

    assert {answer.status for _, _, answer in results} == {200}
    before = [answer for sent_after, _, answer in results if not sent_after]
    in_flight = [a for sent_after, done_after, a in results if not sent_after and done_after]
    after = [answer for sent_after, _, answer in results if sent_after]
    assert before
    assert in_flight  # the point of the test: requests were in flight at the logout
    assert after
    # (Sent before the logout was answered, a request may load before or after it.)
    assert {answer.body for answer in before} <= {"'ann'", "None"}
    # No request sent after the logout was answered as logged in …
    assert {answer.body for answer in after} == {"None"}
    # … no response handed the old id back …
    for _, _, answer in results:
        assert not any(value.startswith(sid) for value in answer.session_cookies)
    # … and the requests in flight did not bring the session back.
    assert served.store.load(key) is None
    assert get_once(served.server, "/get", cookie).body == "{}"
