"""The adapter modules' tests against the oldest and newest versions pyproject allows.

wsgisession relies on other libraries' private details in two places only, each
for a measured hot path: ``wsgisession/stores/_redis_adapter.py`` (redis-py's
connection internals, hiredis) and the body-preserving form parser that guards and
``param()`` share (werkzeug's form parsing). A minor release of those libraries may
move what they use, so each is tested here on the lowest version ``pyproject.toml``
admits and on the newest one the package index serves, in a virtualenv of its own
(``.venv/versions-<name>/``, made once). Run by ``make compat-versions``, part of
``make test``.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The tests of the code that uses another library's private details, and their
#: neighbours that drive it through the public API.
TESTS = [
    "tests/stores/test_redis.py",
    "tests/test_guards.py",
    "tests/test_request.py",
    "tests/test_body.py",
    "tests/security/test_form_limits.py",
]

#: The lowest release each bound in pyproject.toml admits, and the newest.
VERSIONS = {
    "oldest": ["redis==5.0.0", "hiredis==3.0.0", "werkzeug==3.1.0", "itsdangerous==2.2.0"],
    "newest": ["redis<9", "hiredis", "werkzeug<4", "itsdangerous<3"],
}

#: What the tests themselves need (not pinned: they are not under test).
TOOLS = [
    "pytest>=8",
    "hypothesis>=6.100",
    "flask>=3.0",
    "django>=5.0",
    "pydantic>=2.0",
    "msgspec>=0.18",
    "orjson>=3.10,<4",
]


def environment(name: str, pins: list[str]) -> Path:
    """The virtualenv for *name*, made and filled on first use."""
    home = ROOT / ".venv" / f"versions-{name}"
    python = home / "bin" / "python"
    stamp = home / ".installed"
    wanted = " ".join([*pins, *TOOLS])
    if not stamp.exists() or stamp.read_text() != wanted:
        venv.create(home, with_pip=True, clear=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-e", str(ROOT), *pins, *TOOLS], check=True)
        stamp.write_text(wanted)
    return python


def main() -> int:
    failed = []
    for name, pins in VERSIONS.items():
        python = environment(name, pins)
        shown = subprocess.run(
            [str(python), "-m", "pip", "list", "--format=freeze"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        versions = [
            line
            for line in shown.splitlines()
            if line.lower().split("==")[0] in ("redis", "hiredis", "werkzeug", "itsdangerous")
        ]
        print(f"== {name}: {', '.join(versions)}", flush=True)
        done = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT
        )
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"failed on the {' and '.join(failed)} versions", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
