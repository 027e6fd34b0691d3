"""The test runner of the compatibility run: Django's, plus our list of exceptions.

Each test named in ``exceptions.toml`` for the store of this run is marked as an
expected failure, so it is reported, and a test that starts passing fails the run
until its entry is removed.
"""

from __future__ import annotations

import os
import tomllib
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.test.runner import DiscoverRunner

EXCEPTIONS = Path(__file__).resolve().parent.parent / "exceptions.toml"


def exceptions(store: str) -> dict[str, str]:
    """The test ids excepted on *store*, each with its reason."""
    with EXCEPTIONS.open("rb") as file:
        entries = tomllib.load(file).get("exception", [])
    return {
        entry["test"]: entry["reason"]
        for entry in entries
        if store in entry.get("stores", ["cookie", "memory", "redis", "sqlite"])
    }


def _tests(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _tests(test)
        else:
            yield test


class Runner(DiscoverRunner):
    """Django's DiscoverRunner; the excepted tests are expected to fail."""

    def build_suite(self, *args: Any, **kwargs: Any) -> unittest.TestSuite:
        suite: unittest.TestSuite = super().build_suite(*args, **kwargs)
        excepted = exceptions(os.environ["WSGISESSION_COMPAT_STORE_NAME"])
        found = set()
        for test in _tests(suite):
            if test.id() in excepted:
                # unittest reads this attribute from the instance as well as the method.
                test.__unittest_expecting_failure__ = True  # type: ignore[attr-defined]
                found.add(test.id())
        missing = set(excepted) - found
        if missing and not self.test_labels_are_partial:
            raise RuntimeError(f"exceptions.toml names tests that do not exist: {sorted(missing)}")
        return suite

    test_labels_are_partial = bool(os.environ.get("WSGISESSION_COMPAT_PARTIAL"))
