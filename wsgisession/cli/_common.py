"""What the commands of ``wsgisession`` share: errors, settings, store checks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class CommandError(Exception):
    """A failure the command reports as one line, without a traceback."""


def _no_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("wsgisession inspect never serves requests")


def _settings(args: argparse.Namespace, names: Sequence[str]) -> Mapping[str, str]:
    """The environment, with the options given on the command line on top."""
    environ = dict(os.environ)
    for name in names:
        if getattr(args, name, None) is not None:
            environ[f"WSGISESSION_{name.upper()}"] = getattr(args, name)
    return environ


def _must_exist(store: Any) -> None:
    """Refuse a SQLite path where there is no database: the commands create nothing."""
    if not isinstance(store, SQLiteStore) or os.path.exists(store.path):
        return
    fix = (
        "check the path (sqlite:///relative/path is in the working directory,"
        " sqlite:////absolute/path is not)"
    )
    folder = os.path.dirname(store.path)
    if not os.path.isdir(folder):
        raise CommandError(
            f"there is no session database at {store.path!r}, nor a directory {folder!r}:"
            f" {fix}; the app cannot create the file until that directory exists and is"
            " writable by it"
        )
    raise CommandError(
        f"there is no session database at {store.path!r}: {fix}; the app creates the"
        " file when it first starts"
    )
