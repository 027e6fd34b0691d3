"""The shared Redis of the tests, and what a test does when a service is missing.

Plain functions, no fixtures or hooks: ``tests/conftest.py`` uses them, and so does
the Flask compatibility plugin (``tests/compat/flask/plugin.py``), which ``make
compat-flask`` loads into Flask's own test suite, in a virtualenv of its own holding
pytest, Flask and wsgisession with ``redis``. Keep this module's imports to the
standard library, pytest and redis, so the plugin can import it without the test
suite's conftest (its fixtures, werkzeug's test client, psycopg) coming along.
"""

from __future__ import annotations

import functools
import os
from typing import NoReturn

import pytest

#: The shared Redis server: 127.0.0.1:6379 or ``$WSGISESSION_TEST_REDIS_URL``.
REDIS_URL = os.environ.get("WSGISESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``), where a missing service is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(problem: str) -> NoReturn:
    """Skip the test because of *problem*, or fail it under ``CI=true``: CI must not skip."""
    if in_ci():
        pytest.fail(f"required when CI=true: {problem}")
    pytest.skip(problem)


@functools.cache
def redis_problem() -> str | None:
    """Why the shared Redis cannot be used (checked once per run); ``None``: it answers."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed: pip install -e '.[redis]'"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS_URL} ({exc}); start one or set WSGISESSION_TEST_REDIS_URL"
    finally:
        client.close()
    return None


def require_redis() -> str:
    """The shared Redis URL; skips the test without Redis, but fails it under ``CI=true``."""
    problem = redis_problem()
    if problem is not None:
        skip_or_fail(problem)
    return REDIS_URL
