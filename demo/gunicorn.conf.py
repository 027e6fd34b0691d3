"""gunicorn settings for ``make demo``.

The secret key must be the same in every worker, or a cookie set by one worker is
refused by the next. Outside production it is generated once, in the master
process before the workers start, and kept in ``demo/.secret_key`` (git-ignored);
set ``WSGISESSION_SECRET_KEY`` to use your own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

KEY_FILE = Path(__file__).with_name(".secret_key")

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 2
accesslog = "-"


def on_starting(server: Any) -> None:
    """Create the demo's secret key file once, before any worker imports the app."""
    if not os.environ.get("WSGISESSION_SECRET_KEY") and not KEY_FILE.exists():
        KEY_FILE.write_text(secrets.token_urlsafe(32))
        KEY_FILE.chmod(0o600)
