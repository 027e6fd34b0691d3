"""gunicorn serving ``tests/reliability/app.py`` over a server-side store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from wsgisession import ServerSessionStore, store_from_url

from ..conftest import (
    POSTGRES_RUN_SCHEMA,
    REDIS_RUN_PREFIX,
    SECRET,
    drop_store,
    postgres_test_table,
    require_postgres,
    require_redis,
)
from ..servers import Gunicorn

#: gthread workers, as the issue asks: 3 processes of 8 threads each.
WORKERS = ["--workers", "3", "--worker-class", "gthread", "--threads", "8"]


@dataclass
class Served:
    """The server, and the same store as the server's, to look at from outside."""

    server: Gunicorn
    store: ServerSessionStore


def serve(
    url: str, log: Path, args: list[str] | None = None, env: dict[str, str] | None = None
) -> Gunicorn:
    """gunicorn serving the reliability app over the store at *url*, once it answers."""
    server = Gunicorn(
        "tests.reliability.app:app",
        log,
        args=WORKERS if args is None else args,
        env={"RELIABILITY_STORE": url, "WSGISESSION_SECRET_KEY": SECRET, **(env or {})},
    )
    try:
        server.wait_ready("/health")
    except BaseException:
        server.stop()
        raise
    return server


def store_url(name: str, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    if name == "postgres":
        table = postgres_test_table()
        return f"{require_postgres()}?schema={POSTGRES_RUN_SCHEMA}&table={table}"
    assert name == "redis"
    return f"{require_redis()}?prefix={REDIS_RUN_PREFIX}{uuid4().hex[:12]}:"


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """gunicorn with 3 gthread workers of 8 threads over SQLite, Redis, then PostgreSQL."""
    url = store_url(request.param, tmp_path)
    store = store_from_url(url)
    assert isinstance(store, ServerSessionStore)
    server = serve(url, tmp_path / "gunicorn.log")
    try:
        yield Served(server, store)
    finally:
        server.stop()
        drop_store(store)
