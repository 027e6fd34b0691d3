"""The demo under a real gunicorn: sessions survive several workers and threads.

Each test starts gunicorn (with ``demo/gunicorn.conf.py``) on a free port, waits
until it listens, drives it over real HTTP and stops it, whatever happens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from tests.conftest import (
    POSTGRES_RUN_SCHEMA,
    REDIS_RUN_PREFIX,
    SECRET,
    postgres_sql,
    postgres_test_table,
    require_postgres,
    require_redis,
)
from tests.servers import Browser, free_port, gunicorn, running
from tests.test_cli import cart, text_app
from wsgisession import SessionMiddleware

pytestmark = pytest.mark.slow

REQUESTS = 300
CLIENTS = 8
REQUESTS_PER_CLIENT = 25

Serve = Callable[..., tuple[Browser, Path]]


def visits(page: str) -> int:
    """The demo's visit counter, as its home page shows it."""
    match = re.search(r"You have visited this page (\d+) times?", page)
    assert match, page
    return int(match.group(1))


def drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The WSGISESSION_STORE of the demo, per store; Redis keys are deleted after."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/sessions.sqlite3"
    elif kind == "redis":
        url = require_redis()
        prefix = f"{REDIS_RUN_PREFIX}gunicorn-{uuid4().hex[:8]}:"
        yield f"{url}?prefix={prefix}"
        drop_redis_keys(url, prefix)
    elif kind == "postgres":
        table = postgres_test_table()
        yield f"{require_postgres()}?schema={POSTGRES_RUN_SCHEMA}&table={table}"
        postgres_sql(f'DROP TABLE IF EXISTS "{POSTGRES_RUN_SCHEMA}"."{table}"')
    else:
        yield kind


@pytest.fixture
def serve_demo(tmp_path: Path) -> Iterator[Callable[..., tuple[Browser, Path]]]:
    """Start the demo under gunicorn: ``serve_demo(store_url, *options)``.

    Returns a client and gunicorn's log; gunicorn is stopped when the test ends,
    passed or failed.
    """
    with ExitStack() as stack:

        def start(store: str, *options: str) -> tuple[Browser, Path]:
            port = free_port()
            log = tmp_path / "gunicorn.log"
            env = {"WSGISESSION_SECRET_KEY": SECRET, "WSGISESSION_STORE": store}
            stack.enter_context(running(gunicorn(port, *options), port, log, env))
            return Browser(port), log

        yield start


def three_sync_workers(serve_demo: Serve, store: str, tmp_path: Path) -> tuple[Browser, Path]:
    """The demo under ``--workers 3``, each worker replaced after 100 requests.

    The kernel may hand every connection of a sequential client to the same idle
    worker, so the recycling (``max_requests``, common in production) is what makes
    sure several processes serve the session. The access log records their pids.
    """
    return serve_demo(
        store,
        *("--workers", "3", "--threads", "1", "--max-requests", str(REQUESTS // 3)),
        *("--access-logfile", str(tmp_path / "access.log"), "--access-logformat", "%(p)s"),
    )


def serving_pids(tmp_path: Path) -> set[str]:
    return set((tmp_path / "access.log").read_text().split())


@pytest.mark.parametrize(
    "store_url",
    [
        pytest.param("cookie://", id="cookie"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis"),
        pytest.param("postgres", id="postgres"),
    ],
    indirect=True,
)
def test_three_workers_count_every_request_of_one_session(
    store_url: str, serve_demo: Serve, tmp_path: Path
) -> None:
    browser, log = three_sync_workers(serve_demo, store_url, tmp_path)
    counts = [visits(browser.get("/")) for _ in range(REQUESTS)]
    assert counts == list(range(1, REQUESTS + 1))
    assert len(serving_pids(tmp_path)) >= 3
    assert "keeps sessions inside one process" not in log.read_text()


def test_an_lru_store_under_three_workers_loses_sessions_and_says_so(
    serve_demo: Serve, tmp_path: Path
) -> None:
    browser, log = three_sync_workers(serve_demo, "memory://", tmp_path)
    counts = [visits(browser.get("/")) for _ in range(REQUESTS)]
    assert counts[-1] < REQUESTS
    assert counts.count(1) > 1, "the count started over: another process had no session"
    assert len(serving_pids(tmp_path)) >= 3
    assert (
        "LRUStore keeps sessions inside one process, but this server runs several"
        " processes" in log.read_text()
    )


@pytest.mark.parametrize(
    "store_url",
    ["cookie://", "sqlite", "redis", "postgres"],
    ids=["cookie", "sqlite", "redis", "postgres"],
    indirect=True,
)
def test_threads_keep_every_concurrent_client_s_count_exact(
    store_url: str, serve_demo: Serve
) -> None:
    first, log = serve_demo(store_url, "--workers", "3", "--threads", "4")
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        try:
            browser = Browser(first.port)
            start.wait()
            results[n] = [visits(browser.get("/")) for _ in range(REQUESTS_PER_CLIENT)]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == {n: list(range(1, REQUESTS_PER_CLIENT + 1)) for n in range(CLIENTS)}
    assert "Using worker: gthread" in log.read_text()


def test_behind_a_tls_proxy_proxyfix_makes_the_cookie_secure() -> None:
    app = SessionMiddleware(text_app(cart), secret_key=SECRET)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    bare = Client(app).get("/", headers=https)
    assert "Secure" not in bare.headers["Set-Cookie"]
    proxied = Client(ProxyFix(app, x_proto=1, x_host=1)).get("/", headers=https)
    assert "; Secure" in proxied.headers["Set-Cookie"]


def test_the_deployment_guide_config_logs_a_store_outage_with_time_and_level(
    tmp_path: Path,
) -> None:
    from tests.servers import BIN
    from tests.test_readme import code_block

    (tmp_path / "gunicorn.conf.py").write_text(code_block("python", "workers = 4"))
    (tmp_path / "myapp.py").write_text(
        "from wsgisession import from_config, session\n\n\n"
        "def app(environ, start_response):\n"
        "    session['visits'] = session.get('visits', 0) + 1\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'counted']\n\n\n"
        "app = from_config(app)\n"
    )
    port, closed = free_port(), free_port()
    log = tmp_path / "gunicorn.log"
    command = [str(BIN / "gunicorn"), "--config", str(tmp_path / "gunicorn.conf.py")]
    command += ["--chdir", str(tmp_path), "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    env = {
        "WSGISESSION_SECRET_KEY": SECRET,
        "WSGISESSION_STORE": f"redis://127.0.0.1:{closed}/0",
    }
    with running([*command, "myapp:app"], port, log, env):
        status, headers, _ = Browser(port).request("GET", "/")
    assert status == 503
    assert "Retry-After" in headers
    logged = re.compile(
        r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] wsgisession: "
        r"session store unavailable",
        re.MULTILINE,
    )
    assert logged.search(log.read_text()), log.read_text()
