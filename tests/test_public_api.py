"""The public surface is governed: ``wsgisession.__all__``, the package and the API pages agree.

A name becomes public by being added to ``__all__`` and documented on one page of
the API reference (``docs/api/*.rst``, listed by ``docs/api.rst``); forgetting
either fails here, and so does a name documented twice, a page the reference does
not list, or a name that leaks into the package without being listed.
"""

from __future__ import annotations

import inspect
import re
import types
from collections import Counter
from pathlib import Path

import wsgisession
import wsgisession.errors

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The reference's index, and its pages: one per topic.
API_INDEX = DOCS / "api.rst"
API_PAGES = sorted((DOCS / "api").glob("*.rst"))

_ENTRY = re.compile(
    r"^\.\. (?:autoclass|autofunction|autoexception|py:data):: wsgisession\.(\w+)$",
    re.MULTILINE,
)
#: The errors are documented where they are defined, as a whole module.
_ERRORS_MODULE = re.compile(r"^\.\. automodule:: wsgisession\.errors$", re.MULTILINE)


def documented_names() -> Counter[str]:
    """Each top-level name the API pages document, with how many times it is."""
    names: Counter[str] = Counter()
    for page in API_PAGES:
        text = page.read_text()
        names.update(_ENTRY.findall(text))
        names.update(wsgisession.errors.__all__ * len(_ERRORS_MODULE.findall(text)))
    return names


def test_the_reference_lists_every_api_page() -> None:
    assert len(API_PAGES) >= 5, "the pages of docs/api/ were not found"
    listed = re.findall(r"^   (api/[\w-]+)$", API_INDEX.read_text(), re.MULTILINE)
    assert sorted(listed) == sorted(f"api/{page.stem}" for page in API_PAGES), (
        "docs/api.rst's table of contents and the pages of docs/api/ differ"
    )


def test_all_lists_exactly_the_documented_names() -> None:
    assert len(wsgisession.__all__) == len(set(wsgisession.__all__)), "listed twice"
    listed = set(wsgisession.__all__)
    documented = documented_names()
    assert sorted(listed - set(documented)) == [], "public but not in docs/api/"
    assert sorted(set(documented) - listed) == [], "documented but not in __all__"
    assert sorted(name for name, count in documented.items() if count > 1) == [], (
        "documented on more than one page, or twice on one"
    )


def test_the_package_exports_nothing_it_does_not_list() -> None:
    public = {
        name
        for name, value in vars(wsgisession).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(wsgisession.__all__)
    star: dict[str, object] = {}
    exec("from wsgisession import *", star)  # noqa: S102 - what a user's star import gets
    assert set(star) - {"__builtins__"} == set(wsgisession.__all__)


def test_the_errors_users_catch_are_exported() -> None:
    for name in wsgisession.errors.__all__:
        assert getattr(wsgisession, name) is getattr(wsgisession.errors, name)
    errors = {
        name
        for name, value in vars(wsgisession.errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == "wsgisession.errors"
    }
    assert errors <= set(wsgisession.errors.__all__)


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = [
        name
        for name in wsgisession.__all__
        if (inspect.isclass(obj := getattr(wsgisession, name)) or inspect.isfunction(obj))
        and not inspect.getdoc(obj)
    ]
    assert undocumented == []


def test_version_notes_name_only_released_versions() -> None:
    # A docstring's ".. versionadded:: 0.2" in a project whose releases are listed in
    # CHANGELOG.md must name one of them: nothing is released before 1.0's first.
    root = Path(__file__).resolve().parent.parent
    released = set(re.findall(r"^## \[(\d[^\]]*)\]", (root / "CHANGELOG.md").read_text(), re.M))
    noted = {
        (path.relative_to(root).as_posix(), version)
        for path in (root / "wsgisession").rglob("*.py")
        for version in re.findall(
            r"\.\. version(?:added|changed):: (\S+)", path.read_text(), re.MULTILINE
        )
    }
    assert sorted((path, v) for path, v in noted if v not in released) == []
