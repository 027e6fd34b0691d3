"""``make demo`` (and demo-flask, demo-django) on a port it cannot use, as a newcomer types it.

gunicorn answers a busy port with "Connection in use" for a while, then exits; the
demo targets check the port first and say which ``PORT=`` to use instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.servers import BIN, ROOT, free_port, wait_for_port

VENV = BIN.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
]


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``make ARGUMENTS`` in the checkout, with the installed virtualenv as it is.

    ``-o`` keeps make from reinstalling the demo's dependencies, which only pip and
    the network would change.
    """
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"VENV={VENV}",
            "-o",
            f"{VENV}/.demo-installed",
            *arguments,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["demo", "demo-flask", "demo-django"])
def test_a_busy_port_names_the_port_and_a_free_one_to_use(target: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = make(target, f"PORT={port}")
    assert done.returncode != 0
    first = done.stderr.splitlines()[0]
    prefix = f"port {port} is in use; run make {target} PORT="
    assert first.startswith(prefix), done.stderr
    suggested = int(first.removeprefix(prefix))
    assert port < suggested <= port + 100
    assert "gunicorn" not in done.stdout + done.stderr  # never started
    assert "Connection in use" not in done.stderr


@pytest.mark.parametrize("port", ["abc", "99999", "0"])
def test_a_port_that_is_no_port_number_is_named(port: str) -> None:
    done = make("demo", f"PORT={port}")
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        f"PORT must be a port number from 1 to 65535, not {port!r}; run make demo PORT=8000"
    )
    assert "gunicorn" not in done.stdout + done.stderr


def test_a_free_port_serves_the_demo(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "make-demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["make", f"VENV={VENV}", "-o", f"{VENV}/.demo-installed", "demo", f"PORT={port}"],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, gunicorn and its workers: stopped together
        )
    try:
        wait_for_port(port, process, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
