"""What a hostile form costs before any token is checked (issue 16, item 3).

Two bodies from the security review:

- ``multipart``: 13 MB of 200,000 parts ``name="f"; filename="a"``;
- ``urlencoded``: 16 MiB of ``a&a&a…`` (8 million fields);

each sent three ways, all before any login:

- ``csrf-anonymous``: POSTed without a token or a session to
  ``SessionMiddleware(CsrfMiddleware(app))``;
- ``csrf-session``: the same with the cookie of a session that has a CSRF secret
  (the attacker fetched a page with a form first), so the form must be read for the
  token;
- ``param``: to an app that calls ``optional_param("q")`` under ``RequestScope``.

Each case runs in a fresh interpreter, twice: once for the time (wall and CPU) and
once under :mod:`tracemalloc` for the peak memory the request allocates (the body
itself, which the caller already holds, is not counted). The status is printed too:
``403`` means the form was parsed and the token found missing, ``413`` that the
limits refused it.

Usage: ``.venv/bin/python benchmarks/form_dos.py [scenario ...]``
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = ("multipart", "urlencoded")
SCENARIOS = ("csrf-anonymous", "csrf-session", "param")


def hostile_body(case: str) -> tuple[bytes, str]:
    """The body and ``Content-Type`` of one of the review's two inputs."""
    if case == "multipart":
        part = b'--b\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n\r\n'
        return part * 200_000 + b"--b--\r\n", "multipart/form-data; boundary=b"
    return b"a&" * (8 * 1024 * 1024), "application/x-www-form-urlencoded"


def _measure(scenario: str, case: str, memory: bool) -> dict[str, Any]:
    from werkzeug.test import Client, EnvironBuilder

    from wsgisession import (
        CsrfMiddleware,
        RequestScope,
        SessionMiddleware,
        csrf_token,
        optional_param,
    )

    def app(environ: Any, start_response: Any) -> list[bytes]:
        text = csrf_token() if scenario == "csrf-session" else repr(optional_param("q"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [text.encode()]

    wsgi: Any = (
        RequestScope(app)
        if scenario == "param"
        else SessionMiddleware(CsrfMiddleware(app), secret_key="x" * 32)
    )
    headers = {}
    if scenario == "csrf-session":
        cookie = Client(wsgi).get("/").headers["Set-Cookie"].split(";", 1)[0]
        headers["Cookie"] = cookie
    data, content_type = hostile_body(case)
    environ = EnvironBuilder(
        "/", method="POST", content_type=content_type, data=data, headers=headers
    ).get_environ()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    if memory:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result = wsgi(environ, start_response)
    b"".join(result)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if memory else None
    return {
        "scenario": scenario,
        "case": case,
        "body_bytes": len(data),
        "status": statuses[0],
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_bytes": peak,
    }


def main() -> None:
    if len(sys.argv) == 4:  # the child: one measurement, as JSON
        print(json.dumps(_measure(sys.argv[1], sys.argv[2], sys.argv[3] == "memory")))
        return
    scenarios = sys.argv[1:] or SCENARIOS
    for scenario, case in ((s, c) for s in scenarios for c in CASES):
        timed, traced = (
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, scenario, case, kind],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for kind in ("time", "memory")
        )
        print(
            f"{scenario:14} {case:10} {timed['body_bytes'] / 1e6:5.1f} MB -> {timed['status']}:"
            f" {timed['wall_s'] * 1000:8.1f} ms wall, {timed['cpu_s'] * 1000:8.1f} ms CPU,"
            f" peak {traced['peak_bytes'] / 1e6:7.1f} MB allocated"
        )


if __name__ == "__main__":
    main()
