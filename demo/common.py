"""What the three variants of the demo share: users, forms, pages' words, settings.

The pages themselves are the Jinja templates in ``demo/templates`` (one layout for
all three variants) and the stylesheet ``demo/static/demo.css``. Each variant gives
the templates the same names: ``title``, ``user`` (the name shown, or ``None``),
``messages`` (``(level, text)`` pairs, level one of ``success``, ``info``,
``warning``, ``error``), ``csrf_token()``, ``csrf_name``, ``csrf_header``,
``admin_url`` and ``framework``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from wsgisession import SQLiteStore, rules, store_from_url
from wsgisession.stores import ClientSessionStore, ServerSessionStore

from ._keyfile import read_or_create_key

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: The users of every variant: name -> (password, is admin). Django keeps them in its
#: database (``migrate`` creates it); the others hash them at start-up.
ACCOUNTS = {"alice": ("wonderland", True), "bob": ("builder", False)}


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def _user(password: str, roles: tuple[str, ...]) -> tuple[bytes, bytes, tuple[str, ...]]:
    salt = secrets.token_bytes(16)
    return salt, _hash(password, salt), roles


#: name -> (salt, scrypt hash, roles), for the plain and Flask variants.
USERS = {
    name: _user(password, ("admin",) if admin else ())
    for name, (password, admin) in ACCOUNTS.items()
}


def check_password(name: str, password: str) -> tuple[str, ...] | None:
    """The user's roles if the password is right, else ``None`` (constant time)."""
    salt, expected, roles = USERS.get(name, (b"0" * 16, b"", ()))
    ok = hmac.compare_digest(_hash(password, salt), expected)
    return roles if ok and name in USERS else None


@dataclass
class Profile:
    """The profile form: a name and an e-mail address."""

    name: str = field(metadata=rules(min_length=1, max_length=100, strip=True))
    email: str = field(metadata=rules(email=True, max_length=254, strip=True))


@dataclass
class CartItem:
    """An item for the cart, from the form or from JSON."""

    item: str = field(metadata=rules(min_length=1, max_length=50, strip=True))


#: What a refusal page says, by status.
ERROR_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    413: "Too large",
    500: "Something went wrong",
    503: "Try again shortly",
}

#: What a refused form (CSRF) says: a stale page after a logout or login, mostly.
STALE_FORM = (
    "This form was out of date: you logged in or out since the page was shown."
    " Nothing was changed. Go back, reload the page and try again."
)

#: The session cookie's name in every variant.
COOKIE_NAME = "session"

#: The generated key, when WSGISESSION_SECRET_KEY is not set (git-ignored).
KEY_FILE = HERE / ".secret_key"


def secret_key() -> str:
    """The key from WSGISESSION_SECRET_KEY, else the one gunicorn.conf.py generated."""
    key = os.environ.get("WSGISESSION_SECRET_KEY")
    if key:
        return key
    # Without gunicorn.conf.py (werkzeug's server, a test), the file is made here.
    return read_or_create_key(KEY_FILE)


def session_store() -> ClientSessionStore | ServerSessionStore:
    """``WSGISESSION_STORE`` (a store URL) if set, else SQLite next to this file.

    SQLite is right for the demo's several gunicorn workers on one machine; try
    ``WSGISESSION_STORE=redis://127.0.0.1:6379/0 make demo`` or ``cookie://``.
    """
    url = os.environ.get("WSGISESSION_STORE")
    if url:
        return store_from_url(url)
    return SQLiteStore(HERE / "sessions.sqlite3")
