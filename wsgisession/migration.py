"""Carrying sessions over from the system being replaced, so nobody is logged out.

While a reader is set, a request that has no session of ours, but a valid session of
the old system, gets that session's data in a new session of ours: a new id, our
cookie set in the response, the old cookie deleted. It happens once per old session:

- a **server-side** old session (Flask-Session, Django's ``db`` or ``cache``
  engines) is deleted from the old store as it is read, so its cookie cannot be
  replayed to fork the session;
- a **client-side** old session (Flask's default cookie, Django's
  ``signed_cookies``) cannot be deleted: it is honoured only until ``until``, which
  is required for such a reader and at most the old lifetime away.

Expired or tampered old sessions are not carried over (the reader says so by
returning ``None``); a value the session cannot hold is left out with a log line
naming its key. Device tracking sees a carried-over login as a login (its adoption
of logins it has not seen), events get :attr:`~wsgisession.events.EventName.MIGRATED`.

Set it with ``SessionMiddleware(app, ..., migrate_from=reader, migrate_until=...)``;
the Flask and Django integrations name their readers (``migrate_from="flask"``,
``"flask-session"`` or a Django engine path). A reader for another scheme is a small
object with the :class:`MigrationReader` interface::

    class OldCookieReader:
        cookie = OldCookie("legacy_sid")
        client_side = False

        def read(self, value):
            return legacy_store.pop(value)  # None when unknown or expired

        def remaining(self):
            return len(legacy_store)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from werkzeug.http import dump_cookie

from . import serialization
from ._cookie_header import request_cookie_values
from .cookies import MAX_COOKIE_AGE
from .errors import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Migration", "MigrationReader", "MigrationStatus", "OldCookie"]

log = logging.getLogger("wsgisession")

#: The environ key under which a carried-over request notes the old cookie to delete.
MIGRATED_KEY = "wsgisession.migrated"


@dataclass(frozen=True, slots=True)
class OldCookie:
    """The old system's session cookie: read, then deleted as it was set.

    :param name: Its name (Flask's ``session``, Django's ``sessionid``).
    :param path: The ``Path`` it was set with; a deletion must name the same one.
    :param domain: The ``Domain`` it was set with, if any.
    """

    name: str
    path: str = "/"
    domain: str | None = None

    def delete_header(self) -> str:
        """The ``Set-Cookie`` value that deletes this cookie in the browser."""
        return dump_cookie(self.name, "", max_age=0, expires=0, path=self.path, domain=self.domain)


@runtime_checkable
class MigrationReader(Protocol):
    """Reads the sessions of the system being replaced (see the module's docs).

    :attr:`cookie` names the old cookie; :attr:`client_side` says whether the old
    session lives in that cookie (then it cannot be deleted, and the migration needs
    an end date).
    """

    cookie: OldCookie
    client_side: bool

    def read(self, value: str) -> dict[str, Any] | None:
        """The data of the old session the cookie *value* names, or ``None``.

        ``None`` for an unknown, expired, tampered or unreadable session (never
        pickle). A server-side reader deletes the old record as it reads it, in one
        step where the old store allows, so the same cookie is never read twice.

        :raises StoreUnavailable: the old store failed (the request answers ``503``
            and nothing is lost: the old record is still there).
        """

    def remaining(self) -> int | None:
        """How many old sessions are left to carry over, if the old store can tell."""


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """How a migration is going, for the log and ``wsgisession migration-status``.

    :param source: What is read (the reader's class name).
    :param carried: Sessions carried over by this process since it started.
    :param remaining: Old sessions not carried over yet, if the old store can tell.
    :param until: When a client-side reader stops honouring old cookies.
    :param done: Whether the reader can be removed: its end date passed, or no old
        session is left.
    """

    source: str
    carried: int
    remaining: int | None
    until: datetime | None
    done: bool

    def describe(self) -> str:
        """One line for a person: what was carried, what is left, when to stop."""
        parts = [f"{self.source}: {self.carried} session(s) carried over by this process"]
        if self.remaining is not None:
            parts.append(f"{self.remaining} old session(s) left")
        if self.until is not None:
            parts.append(f"old cookies honoured until {self.until.isoformat()}")
        parts.append("the reader can be removed now" if self.done else "keep the reader for now")
        return "; ".join(parts)


class Migration:
    """A middleware's reader of old sessions, and the one owner of its counts.

    Made by :class:`~wsgisession.SessionMiddleware` from ``migrate_from`` and
    ``migrate_until``; the session backends call :meth:`carry_over` when a load
    would otherwise start a fresh session.

    :param reader: Reads the old sessions.
    :param until: For a client-side reader (required, at most 400 days away): when
        old cookies stop being honoured. Optional for a server-side reader.
    :param cookie_name: Our own session cookie's name: when the old cookie has the
        same name, ours replaces it rather than deleting it. ``None``: we set no
        cookie (sessions travel in a header).
    :raises ConfigurationError: a reader without the interface, or a client-side one
        without a valid *until*.
    """

    def __init__(
        self, reader: MigrationReader, until: datetime | None = None, *, cookie_name: str | None
    ) -> None:
        if not isinstance(reader, MigrationReader) or not isinstance(reader.cookie, OldCookie):
            raise ConfigurationError(
                f"migrate_from must be a migration reader (cookie, client_side, read(),"
                f" remaining(): see wsgisession.migration), not {reader!r}"
            )
        self.reader = reader
        self.until = _checked_until(until, reader.client_side)
        self._until_ts = None if self.until is None else self.until.timestamp()
        self._same_name = reader.cookie.name == cookie_name
        self._lock = threading.Lock()
        self._carried = 0

    @property
    def same_cookie(self) -> bool:
        """Whether the old cookie has our cookie's name (ours then replaces it)."""
        return self._same_name

    def carry_over(self, environ: WSGIEnvironment) -> dict[str, Any] | None:
        """The old session's data for this request, if it has one to carry over.

        :raises StoreUnavailable: the old store failed.
        """
        if self._until_ts is not None and time.time() > self._until_ts:
            return None
        values = request_cookie_values(environ, self.reader.cookie.name)
        if len(values) != 1 or not values[0]:
            return None
        try:
            old = self.reader.read(values[0])
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("the migration reader failed on a cookie; starting a fresh session")
            return None
        if not old:
            return None
        data = _storable(old)
        if not self._same_name:
            environ[MIGRATED_KEY] = self.reader.cookie
        with self._lock:
            self._carried += 1
            carried = self._carried
        log.info(
            "carried a session over from %s (%d by this process); %s",
            type(self.reader).__name__,
            carried,
            _when_to_stop(self.until),
        )
        return data

    def status(self) -> MigrationStatus:
        """What was carried over and what is left; asks the old store how many remain.

        :raises StoreUnavailable: the old store failed.
        """
        remaining = self.reader.remaining()
        ended = self._until_ts is not None and time.time() > self._until_ts
        return MigrationStatus(
            type(self.reader).__name__,
            self._carried,
            remaining,
            self.until,
            ended or remaining == 0,
        )


def _checked_until(until: datetime | None, client_side: bool) -> datetime | None:
    if until is None:
        if client_side:
            raise ConfigurationError(
                "a client-side old session (a signed cookie) cannot be deleted, so"
                " migrate_until is required: a date at most the old cookies' lifetime"
                " from now, after which they are no longer honoured"
            )
        return None
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise ConfigurationError(
            f"migrate_until must be a timezone-aware datetime, not {until!r}"
            " (datetime(2027, 1, 31, tzinfo=timezone.utc))"
        )
    if until.timestamp() - time.time() > MAX_COOKIE_AGE:
        raise ConfigurationError(
            f"migrate_until {until.isoformat()} is more than 400 days away: no browser"
            " keeps the old cookie that long; set it to the end of the old lifetime"
        )
    return until


def _storable(old: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in old.items():
        if not isinstance(key, str):
            log.warning("migration: left out the old session key %r (not a str)", key)
            continue
        try:
            serialization.dumps(value, where=f"session[{key!r}]")
        except (TypeError, ValueError) as exc:
            log.warning("migration: left out the old session key %r: %s", key, exc)
            continue
        data[key] = value
    return data


def _when_to_stop(until: datetime | None) -> str:
    if until is not None:
        return f"old cookies are honoured until {until.isoformat()}"
    return "remove the reader once `wsgisession migration-status` shows none left"
