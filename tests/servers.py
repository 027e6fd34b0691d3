"""Real servers for tests: private redis-server, postgres and gunicorn, on free ports.

Each is started by the test that needs it and stopped in its finalizer, so a test
may kill, pause or restart one without disturbing anyone else. ``Gunicorn`` and
``running()`` are two ways to run a server: the first for tests that signal or
inspect the process, the second as a context manager for a command line.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from .services import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: How long a server may take to start listening: generous, since other test runs
#: may share the machine's two cores.
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cluster_port() -> int:
    """A free port at most 55535 whose cluster-bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randint(20000, 55535)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise AssertionError("no free port pair for a Redis cluster node")


class PrivateRedis:
    """A redis-server of our own, to kill, pause and restart.

    Its append-only file is synced on every write, so a killed server restarts
    with everything it had acknowledged, as a production Redis with persistence.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
                *("--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            for _ in range(200):
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.025)
            pytest.fail(f"redis-server on port {self.port} did not start")
        finally:
            probe.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.kill()


def start_private_redis(directory: Path) -> PrivateRedis:
    """A started PrivateRedis (skips without redis-server, but fails under ``CI=true``)."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")
    server = PrivateRedis(directory)
    server.start()
    return server


class RedisNode:
    """One redis-server (a master, replica, sentinel or cluster node) on a free port."""

    def __init__(
        self, directory: Path, *args: str, sentinel: bool = False, cluster: bool = False
    ) -> None:
        if shutil.which("redis-server") is None:
            skip_or_fail("redis-server is not installed")
        # A cluster node also listens on its port + 10000 (the cluster bus), so its
        # port must be at most 55535 and both must be free.
        self.port = cluster_port() if cluster else free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        if self.sentinel:
            # A sentinel rewrites its config file, so it must have one of its own.
            config = self.directory / "sentinel.conf"
            config.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                + "".join(f"{line}\n" for line in self.args)
            )
            command = ["redis-server", str(config), "--sentinel"]
        else:
            command = [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                *self.args,
            ]
        log = self.directory / "log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        probe = redis.Redis(port=self.port, socket_timeout=1, retry=no_retry)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"redis-server on port {self.port} exited:\n{log.read_text()}")
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.025)
            pytest.fail(f"redis-server on port {self.port} did not start")
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL, by pid: the node dies as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found


class PrivatePostgres:
    """A PostgreSQL server of our own (initdb + pg_ctl in a temp dir), to stop and start.

    Never the machine's shared server: this one has its own data directory, port and
    socket directory, and is stopped (immediately, as a crash) by :meth:`stop`.
    initdb refuses to run as root, so under root the server runs as ``postgres``.
    """

    def __init__(self, *, primary: PrivatePostgres | None = None) -> None:
        """A new cluster (initdb), or a streaming replica of *primary* (pg_basebackup -R)."""
        initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            skip_or_fail("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.pg_ctl = pg_ctl
        # Under /tmp, not pytest's tmp_path: the postgres user cannot enter root's.
        self.directory = Path(tempfile.mkdtemp(prefix="wsgisession-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        if primary is None:
            command = [initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        else:
            basebackup = _postgres_binary("pg_basebackup")
            if basebackup is None:
                skip_or_fail("pg_basebackup is not installed")
            command = [
                *(str(basebackup), "-D", str(self.data), "-R", "-X", "stream"),
                # primary_conninfo (-R) keeps the application_name, by which the
                # primary's synchronous_standby_names may name this replica.
                "-d",
                f"host=127.0.0.1 port={primary.port} user=postgres application_name=replica",
            ]
        subprocess.run(
            [*self._as, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, *settings: str) -> None:
        """Start the server, with *settings* (``"name=value"``) on its command line."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in settings)
        subprocess.run(
            [
                *(*self._as, self.pg_ctl, "-D", str(self.data)),
                *("-l", str(self.directory / "log"), "-o", options),
                *("-w", "-t", str(int(START_TIMEOUT)), "start"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def pid(self) -> int | None:
        """The postmaster's process id, or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop at once, as a crash would: SIGQUIT to our own postmaster, by its pid."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def promote(self) -> None:
        """Promote this replica to a primary (``pg_ctl promote``), waiting until it is."""
        subprocess.run(
            [*self._as, self.pg_ctl, "-D", str(self.data), "-w", "-t", "30", "promote"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Gunicorn:
    """gunicorn serving *app* (``module:variable``) on a free port, logging to a file."""

    def __init__(
        self,
        app: str,
        log: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}"),
                *("--graceful-timeout", "3", "--log-level", "warning", *args, app),
            ],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> None:
        """Poll *path* until gunicorn answers (any status), or fail with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.output()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.05)
            finally:
                conn.close()
        pytest.fail(f"gunicorn did not answer within {timeout} s:\n{self.output()}")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something accepts connections on *port*; fail if *process* dies."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not listen on {port} in time:\n{log.read_text()}")


@contextmanager
def running(
    command: Sequence[str], port: int, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *command* (which listens on *port*) with its output in *log*, then stop it."""
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gunicorn(port: int, *options: str, app: str = "demo.wsgi:app") -> list[str]:
    """The command line of a gunicorn serving *app* on *port* with the demo's config."""
    return [
        str(BIN / "gunicorn"),
        "--config",
        "demo/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "/dev/null",
        *options,
        app,
    ]


class Browser:
    """A minimal HTTP client with a cookie jar of one host, enough for a session."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """Send one request on a new connection; returns status, headers and text."""
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return response.status, dict(response.headers.items()), text
        finally:
            conn.close()

    def get(self, path: str) -> str:
        """GET *path*; the page's text (fails on anything but 200)."""
        status, _, text = self.request("GET", path)
        assert status == 200, (status, text)
        return text


# -- headless Chromium (the browser tests and the docs-site test) ----------------

CHROMIUM = os.environ.get("WSGISESSION_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WSGISESSION_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def browser_problem() -> str | None:
    """Why headless Chromium cannot run here, or ``None``."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            return f"no {path}: apt-get install {package} (or run .ci/run, which does)"
    return None


@contextmanager
def headless_chromium() -> Iterator[object]:
    """A headless Chromium driven through selenium, quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
