"""gunicorn settings for ``make demo``.

The secret key must be the same in every worker, or a cookie set by one worker is
refused by the next. Outside production it is generated once, in the master
process before the workers start, and kept in ``demo/.secret_key`` (git-ignored);
set ``WSGISESSION_SECRET_KEY`` to use your own.

The demo's and wsgisession's log records (``demo``, ``wsgisession``: a store outage,
a refused cookie) get a time and a level, in gunicorn's own format, as
docs/deployment.md advises: without a handler Python prints a bare message.
gunicorn's own loggers do not propagate to the root logger, so nothing is printed
twice.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

KEY_FILE = Path(__file__).with_name(".secret_key")

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 2
accesslog = "-"

logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    datefmt="[%Y-%m-%d %H:%M:%S %z]",
)


def on_starting(server: Any) -> None:
    """Create the demo's secret key file once, before any worker imports the app."""
    if not os.environ.get("WSGISESSION_SECRET_KEY"):
        # By path: gunicorn reads this file before the project is importable.
        spec = importlib.util.spec_from_file_location(
            "demo_keyfile", Path(__file__).with_name("_keyfile.py")
        )
        assert spec is not None
        assert spec.loader is not None
        keyfile = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(keyfile)
        keyfile.read_or_create_key(KEY_FILE)
