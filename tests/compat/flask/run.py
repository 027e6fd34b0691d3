"""Run Flask's own session tests against wsgisession: ``make compat-flask``.

1. ``pip download`` the pinned Flask sdist (it ships ``tests/``) into
   ``.venv/compat/`` unless it is already there, and unpack it;
2. make a virtualenv of its own, ``.venv/compat/venv``, with that Flask (built
   from the sdist: the tests run against the Flask they were written for), the
   pytest Flask's lock file pins (pytest 9.2 removed a name Flask's conftest uses),
   Flask's test dependencies (``asgiref``, ``greenlet``: without them some selected
   tests would skip) and wsgisession itself (editable);
3. run the tests listed in :data:`TESTS` with that pytest, inside the sdist, with
   :mod:`tests.compat.flask.plugin` loaded, which applies
   ``init_app`` to every Flask app and runs each test once per store (cookie,
   memory, SQLite, Redis).

The test bodies are Flask's, unchanged. :data:`EXCEPTED` names the only tests left
out, each with its reason (also in the README's "Differences from Flask" table).
Extra arguments go to pytest (``run.py -x -k redis``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

FLASK_VERSION = "3.1.3"
ROOT = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("WSGISESSION_COMPAT_DIR", ROOT / ".venv" / "compat"))
VENV = CACHE / "venv"
#: Flask's "tests" dependency group, pytest pinned as in Flask's uv.lock.
TEST_REQUIREMENTS = ("pytest==9.0.2", "asgiref", "greenlet", "python-dotenv")

#: Every test of these modules that uses ``session``, ``flash`` or
#: ``session_transaction``, plus the HTTPException trapping tests of test_basic.py
#: that only an outer middleware can break.
TESTS = {
    "test_basic.py": [
        "test_session_accessed",
        "test_session_path",
        "test_session_using_application_root",
        "test_session_using_session_settings",
        "test_session_using_samesite_attribute",
        "test_missing_session",
        "test_session_secret_key_fallbacks",
        "test_session_expiration",
        "test_session_stored_last",
        "test_session_special_types",
        "test_session_cookie_setting",
        "test_session_vary_cookie",
        "test_session_refresh_vary",
        "test_flashes",
        "test_extended_flashing",
        "test_trap_bad_request_key_error",
        "test_trapping_of_all_http_exceptions",
    ],
    "test_testing.py": [
        "test_redirect_session",
        "test_session_transactions",
        "test_session_transactions_no_null_sessions",
        "test_session_transactions_keep_context",
        "test_session_transaction_needs_cookies",
    ],
    "test_reqctx.py": [
        "TestGreenletContextCopying::test_greenlet_context_copying",
        "TestGreenletContextCopying::test_greenlet_context_copying_api",
        "test_session_error_pops_context",
        "test_session_dynamic_cookie_name",
    ],
    "test_session_interface.py": ["test_open_session_with_endpoint"],
    "test_helpers.py": [
        "TestStreaming::test_stream_keeps_session",
        "TestStreaming::test_async_view",
    ],
    "test_signals.py": ["test_flash_signal"],
    "test_converters.py": ["test_context_available"],
    "test_templating.py": ["test_standard_context"],
}

#: Tests that install their own SessionInterface, which init_app replaces by design.
EXCEPTED = {
    "test_reqctx.py::test_session_error_pops_context": (
        "installs a SessionInterface whose open_session raises"
    ),
    "test_reqctx.py::test_session_dynamic_cookie_name": (
        "installs a SessionInterface that picks the cookie name per URL"
    ),
}


def sdist() -> tuple[Path, Path]:
    """The Flask sdist and where it is unpacked, downloaded on first use."""
    unpacked = CACHE / f"flask-{FLASK_VERSION}"
    archive = CACHE / f"flask-{FLASK_VERSION}.tar.gz"
    if archive.exists() and (unpacked / "tests" / "conftest.py").exists():
        return archive, unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    if not archive.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"flask=={FLASK_VERSION}", "--dest", str(CACHE)),
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return archive, unpacked


def venv(archive: Path) -> Path:
    """The compat virtualenv's python, made (or brought up to date) on first use."""
    python = VENV / "bin" / "python"
    wanted = "\n".join([str(archive), *TEST_REQUIREMENTS, (ROOT / "pyproject.toml").read_text()])
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, str(archive), *TEST_REQUIREMENTS, "-e", f"{ROOT}[redis]"],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def node_ids() -> list[str]:
    """The pytest ids of the selected tests, the excepted ones left out."""
    ids = [f"tests/{module}::{name}" for module, names in TESTS.items() for name in names]
    return [i for i in ids if i.removeprefix("tests/") not in EXCEPTED]


def main(argv: list[str]) -> int:
    archive, flask_dir = sdist()
    python = venv(archive)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, reason in EXCEPTED.items():
        print(f"excepted: {name}: {reason}")
    command = [
        *(str(python), "-m", "pytest", "-p", "tests.compat.flask.plugin"),
        *("-p", "no:cacheprovider", "-q", "-rfEs", *node_ids(), *argv),
    ]
    return subprocess.run(command, cwd=flask_dir, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
