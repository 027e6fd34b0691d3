"""Django's own tests over wsgisession: ``make compat-django`` (part of ``make test``).

1. Downloads the source distribution of the installed Django (pinned in
   pyproject's ``dev`` extra) with pip, and extracts its ``tests/`` directory into
   ``.venv/django-compat/`` (once).
2. Runs ``manage.py check`` on a project with ``django.contrib.admin`` and our
   middleware: it must be clean (no ``admin.E410``).
3. Runs Django's ``runtests.py`` on the suites below, bodies unchanged, once per
   store (cookie, memory, SQLite, Redis under a key prefix of its own), with the
   settings in ``wsgisession_django_settings.py``. The tests listed in
   ``exceptions.toml`` are expected to fail; anything else failing fails the run.

``python tests/compat/django/run.py --store memory sessions_tests`` runs a part.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
CACHE = Path(sys.prefix) / "django-compat"
REDIS_URL = os.environ.get("WSGISESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: The suites run, as runtests.py labels; wsgisession_compat is Django's
#: SessionTestsMixin over our engine.
LABELS = [
    "sessions_tests",
    "messages_tests.test_session",
    "test_client",
    "auth_tests.test_basic",
    "auth_tests.test_views",
    "auth_tests.test_login",
    "auth_tests.test_middleware",
    "auth_tests.test_auth_backends",
    "wsgisession_compat",
]
STORES = ["cookie", "memory", "sqlite", "redis"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def django_tests() -> Path:
    """Django's tests/ directory for the installed version, downloaded once."""
    version = django.__version__
    if not version.startswith("5.2."):
        sys.exit(f"the compatibility run is for Django 5.2, but {version} is installed")
    tests = CACHE / f"django-{version}" / "tests"
    if (tests / "runtests.py").exists():
        return tests
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"django-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet"),
                *("--no-binary", ":all:", "--no-deps", f"django=={version}"),
                *("--dest", str(CACHE)),
            ],
            check=True,
        )
    prefix = f"django-{version}/tests/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(CACHE, members=members, filter="data")
    return tests


def environment(tests: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(HERE), str(tests), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


def admin_check(tests: Path) -> bool:
    """``manage.py check`` with django.contrib.admin and our middleware, no aliasing."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "django", "check", "--fail-level", "WARNING"),
            "--settings=wsgisession_check_settings",
        ],
        env=environment(tests),
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    output = (result.stdout + result.stderr).strip()
    print(f"admin system check: {output}")
    return result.returncode == 0


def redis_available() -> str | None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS_URL} ({exc})"
    finally:
        client.close()
    return None


def run_store(tests: Path, store: str, labels: list[str], scratch: Path) -> tuple[bool, str]:
    """Run the suites on *store*; whether they passed, and the result line."""
    prefix = f"wsgisession-django-compat:{uuid.uuid4().hex}:"
    url = {
        "cookie": "cookie://",
        "memory": "memory://",
        "sqlite": f"sqlite:///{scratch / 'sessions.sqlite3'}",
        "redis": f"{REDIS_URL}?prefix={prefix}",
    }[store]
    env = environment(
        tests,
        WSGISESSION_COMPAT_STORE=url,
        WSGISESSION_COMPAT_STORE_NAME=store,
        WSGISESSION_COMPAT_PARTIAL="1" if labels != LABELS else "",
    )
    try:
        result = subprocess.run(
            [
                *(sys.executable, "runtests.py", "--settings=wsgisession_django_settings"),
                *("--parallel=1", "--noinput", *labels),
            ],
            env=env,
            cwd=tests,
            capture_output=True,
            text=True,
        )
    finally:
        if store == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
            client.close()
    output = result.stdout + result.stderr
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    verdict = re.search(r"^(OK|FAILED).*$", output, re.MULTILINE)
    line = f"{ran.group(0) if ran else 'no tests ran'}: {verdict.group(0) if verdict else '?'}"
    if result.returncode != 0:
        print(output[-20000:])
    return result.returncode == 0, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", choices=STORES, help="default: all")
    parser.add_argument("labels", nargs="*", help="runtests.py labels (default: all suites)")
    args = parser.parse_args()
    tests = django_tests()
    ok = admin_check(tests)
    for store in args.store or STORES:
        if store == "redis":
            problem = redis_available()
            if problem is not None:
                if in_ci():
                    print(f"redis: FAILED, required when CI=true: {problem}")
                    ok = False
                else:
                    print(f"redis: skipped, {problem}")
                continue
        scratch = Path(tempfile.mkdtemp(prefix="wsgisession-django-compat-"))
        try:
            passed, line = run_store(tests, store, args.labels or LABELS, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"{store}: {line}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
