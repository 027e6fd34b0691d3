"""The demo's secret key file: created once, readable by its owner only.

Anyone who can read the key can forge a session cookie for any user, so the file is
never world-readable, not even for an instant: the key is written to a private
(``0600``) temporary file, which is then linked into place in one step. Two
processes racing to create it both end up reading the one that won.

Imported by ``gunicorn.conf.py`` before any worker starts, so it imports nothing of
the demo or of wsgisession.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

__all__ = ["read_or_create_key"]


def read_or_create_key(path: Path) -> str:
    """The key in *path*, made (32 random bytes, mode ``0600``) if there is none.

    A file left group- or world-readable by an older demo is made ``0600``.

    :param path: Where the key is kept.
    """
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()
