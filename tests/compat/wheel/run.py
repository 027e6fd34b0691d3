"""The built distribution, installed as a user installs it: ``make compat-wheel``.

Every other test runs against the editable install of the checkout, where a file
left out of the distribution (``py.typed``, the pytest plugin's entry point, the
Django engine) would go unnoticed. This script:

1. builds the sdist and, from it, the wheel with ``python -m build`` (what the
   package index would serve);
2. checks what the wheel holds: the whole package, its type hints and entry
   points, and nothing of the checkout besides (tests, demo, benchmarks);
3. installs the wheel, not the checkout, into a new virtualenv
   (``.venv/wheel-test/``) with Flask, Django and pytest;
4. runs ``smoke.py`` there, from a directory outside the checkout: the
   README's quick start under ``wsgisession serve``, ``--version`` and ``--help``,
   the README's Flask and Django examples, and the pytest plugin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

#: What the smoke tests use beside the wheel (not under test, so not pinned).
TOOLS = ["pytest>=8", "flask>=3.0", "django>=5.0"]


def build(outdir: Path) -> Path:
    """The wheel built from a freshly built sdist of the checkout."""
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (wheel,) = outdir.glob("sessionlayer-*.whl")
    (sdist,) = outdir.glob("sessionlayer-*.tar.gz")
    print(f"== built {sdist.name} and {wheel.name}", flush=True)
    return wheel


def check_contents(wheel: Path) -> None:
    """Every module of the package is in the wheel, with py.typed and the entry points."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
    package = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "wsgisession").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = sorted(package - names)
    stray = sorted(n for n in names if n.split("/")[0] in ("tests", "demo", "benchmarks", "docs"))
    problems = [f"missing from the wheel: {name}" for name in missing]
    problems += [f"not part of the package: {name}" for name in stray]
    for line in ("wsgisession = wsgisession.cli:main", "wsgisession = wsgisession.testing"):
        if line not in declared:
            problems.append(f"entry point missing: {line}")
    if problems:
        sys.exit("\n".join(problems))
    print(f"== the wheel holds all {len(package)} files of the package", flush=True)


def install(wheel: Path) -> Path:
    """A new virtualenv with the wheel (and the redis extra) and the smoke tests' tools."""
    home = ROOT / ".venv" / "wheel-test"
    venv.create(home, with_pip=True, clear=True)
    python = home / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[redis]", *TOOLS],
        check=True,
    )
    return python


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wsgisession-wheel-") as scratch:
        work = Path(scratch)
        wheel = build(work / "dist")
        check_contents(wheel)
        python = install(wheel)
        # Outside the checkout, so that only the installed package can be imported.
        tests = work / "smoke"
        tests.mkdir()
        shutil.copy(HERE / "smoke.py", tests)
        done = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "smoke.py"],
            cwd=tests,
            env={
                "PATH": f"{python.parent}:/usr/bin:/bin",
                "HOME": str(work),
                "WSGISESSION_README": str(ROOT / "README.md"),
            },
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
