"""The distribution's name and version, as users meet them in install lines.

``make compat-wheel`` builds and installs the real wheel; these are the quick checks
of what the checkout says about it.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import wsgisession

ROOT = Path(__file__).resolve().parent.parent


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.md", "*.rst", "*.py", "*.toml", "Makefile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_every_install_line_installs_this_project_not_the_2013_package() -> None:
    # That name installs an unrelated package; only the sentences that warn about
    # it (they name the year it is from) may write the command.
    wrong = re.compile(r"""pip install\s+(?:-\S+\s+)*['"]?wsgisession\b""")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if wrong.search(line) and "2013" not in line
    ]
    assert found == []


def test_the_installed_metadata_is_this_checkout() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "sessionlayer"
    assert version("sessionlayer") == wsgisession.__version__
