"""``wsgisession inspect``: what a session cookie says, and why it is refused."""

from __future__ import annotations

import argparse
import pprint
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from itsdangerous import BadData

from ..config import from_config
from ..middleware import CookieContents, SessionMiddleware
from ..stores.base import ServerSessionStore
from ..stores.cookie import CookieStore

if TYPE_CHECKING:
    pass

from ._common import CommandError, _must_exist, _no_app, _settings

_SERVER_COOKIE = re.compile(r"[A-Za-z0-9_-]{43}\.\d+\.[^.]+\.[^.]+")


def _when(timestamp: int, now: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = timestamp - now
    if delta <= 0:
        return f"{moment} ({_duration(delta)} ago)"
    return f"{moment} (in {_duration(delta)})"


def _duration(seconds: int) -> str:
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _name(middleware: SessionMiddleware) -> str:
    # The session's name: its cookie's, or its header's when it sets no cookie.
    return middleware.cookie.name if middleware.cookie is not None else str(middleware.header)


def _read(middleware: SessionMiddleware, value: str) -> CookieContents:
    name = _name(middleware)
    try:
        return middleware.read_cookie(value)
    except BadData as exc:
        encrypted = isinstance(middleware.store, CookieStore) and middleware.store.encrypt
        hint = (
            "; a value without '.' is an encrypted cookie: pass --store 'cookie://?encrypt=true'"
            if "." not in value and not encrypted
            else f": the cookie was altered, or made with another secret key or for a cookie"
            f" not named {name!r} (--cookie-name)"
        )
        raise CommandError(f"invalid: {exc}{hint}") from None
    except ValueError as exc:
        hint = ""
        if _SERVER_COOKIE.fullmatch(value) and not isinstance(middleware.store, ServerSessionStore):
            hint = "; it looks like a server-side session id: pass the app's --store URL"
        raise CommandError(f"invalid: {exc}{hint}") from None


def _inspect_cookie(args: argparse.Namespace) -> int:
    names = ("secret_key", "store", "cookie_name")
    environ = dict(_settings(args, names))
    if not environ.get("WSGISESSION_SECRET_KEY") and not args.config:
        raise CommandError(
            "no secret key: pass the app's key with --secret-key KEY, set"
            " WSGISESSION_SECRET_KEY, or name a --config file that sets secret_key"
        )
    # Reading a cookie must not create an empty database at a mistyped path.
    environ["WSGISESSION_CHECK_STORE"] = "false"
    middleware = from_config(_no_app, args.config, environ=environ)
    _must_exist(middleware.store)
    try:
        return _report(middleware, args.cookie.strip().strip('"'))
    finally:
        if isinstance(middleware.store, ServerSessionStore):
            middleware.store.close()


def _report(middleware: SessionMiddleware, value: str) -> int:
    name = _name(middleware)
    if value.startswith(name + "="):
        value = value[len(name) + 1 :]
    contents = _read(middleware, value)
    times, now = middleware.times, int(time.time())
    reason = times.expired(contents.issued, contents.created, now, contents.lifetime)
    if reason is not None:
        raise CommandError(
            f"invalid: expired, {reason} (created {_when(contents.created, now)},"
            f" last issued {_when(contents.issued, now)})"
        )
    store = middleware.store
    data = contents.data
    lines = [f"valid session cookie {name!r} ({store!r})"]
    if isinstance(store, ServerSessionStore):
        assert contents.sid is not None
        try:
            key, data = middleware.load_stored(contents.sid)
        except ValueError as exc:
            raise CommandError(f"invalid: the stored record is corrupt ({exc})") from None
        if data is None:
            raise CommandError(
                f"invalid: the signature is good but {store!r} holds no session under this id"
                " (it expired, was logged out, or lives in another store)"
            )
        lines.append(f"store key {key}")
    ends = [
        stamp + limit
        for stamp, limit in (
            (contents.issued, times.idle_limit(contents.lifetime)),
            (contents.created, times.absolute_max_age),
        )
        if limit is not None
    ]
    lines += [
        f"created   {_when(contents.created, now)}",
        f"issued    {_when(contents.issued, now)}",
        f"expires   {_when(min(ends), now) if ends else 'when the browser closes'}"
        + (", unless used before" if times.max_age is not None else ""),
        "key       "
        + (
            "a fallback key (the next response re-issues it under the current key)"
            if contents.stale_key
            else "the current secret key"
        ),
        "data      " + pprint.pformat(data, sort_dicts=True).replace("\n", "\n          "),
    ]
    print("\n".join(lines))
    return 0


# -- gc --------------------------------------------------------------------------
