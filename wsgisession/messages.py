"""Flash messages: a note for the next page the user sees, shown once.

A view calls :func:`flash` before redirecting; the page that follows reads the
message with :func:`get_flashed_messages`, which removes it, so a reload does not
show it again. Messages have a level (:class:`FlashLevel`); reading one level, or
every level from a minimum up, leaves the others waiting for a later read (Flask
drops them all).

Messages live in the session under a private key, as plain data (a list of
``[level, message]`` pairs), so they work with every store and need
:class:`~wsgisession.SessionMiddleware`. With :class:`~wsgisession.CookieStore`, too
many messages give :class:`~wsgisession.errors.SessionTooLarge` rather than a cookie
the browser drops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .context import get_session

__all__ = [
    "FlashLevel",
    "FlashMessage",
    "flash",
    "get_flashed_message",
    "get_flashed_messages",
    "peek_flashed_messages",
]

log = logging.getLogger("wsgisession")

#: The session key the messages are kept under (Flask's ``_flashes`` is left alone).
FLASH_KEY = "_wsgisession.flash"


class FlashLevel(IntEnum):
    """How important a flash message is; the values are :mod:`logging`'s."""

    DEBUG = 10
    INFO = 20
    SUCCESS = 25
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


_LEVELS: dict[int, int] = {level.value: level for level in FlashLevel}


@dataclass(frozen=True, slots=True)
class FlashMessage:
    """One flash message; ``str()`` gives the text.

    :param message: The text to show.
    :param level: Its level: a :class:`FlashLevel`, or a plain ``int`` for levels of
        your own.
    """

    message: str
    level: int = FlashLevel.INFO

    def __str__(self) -> str:
        return self.message

    @property
    def category(self) -> str:
        """The level's name in lower case (``"warning"``), handy as a CSS class."""
        if isinstance(self.level, FlashLevel):
            return self.level.name.lower()
        return str(self.level)


def flash(message: str, level: int = FlashLevel.INFO) -> None:
    """Keep *message* in the session until a later request reads it.

    :param message: The text to show.
    :param level: A :class:`FlashLevel` (default ``INFO``) or an ``int``.
    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.
    :raises TypeError: *message* is not a ``str`` or *level* not an ``int``.

    ::

        flash("Saved.", FlashLevel.SUCCESS)
        return redirect("/")
    """
    if not isinstance(message, str):
        raise TypeError(f"a flash message must be a str, not {type(message).__name__}")
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"a flash level must be a FlashLevel or an int, not {level!r}")
    session = get_session()
    pending = session.get(FLASH_KEY)
    entry = [int(level), str(message)]
    if isinstance(pending, list):
        pending.append(entry)
    else:
        session[FLASH_KEY] = [entry]


def get_flashed_messages(
    level: int | None = None, *, min_level: int | None = None
) -> list[FlashMessage]:
    """Return and remove the waiting messages that match, oldest first.

    Messages that do not match stay for a later read.

    :param level: Only messages of exactly this level.
    :param min_level: Only messages of this level or higher.
    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.

    ::

        errors = get_flashed_messages(min_level=FlashLevel.ERROR)
        everything_else = get_flashed_messages()
    """
    return _take(level, min_level, remove=True, limit=None)


def get_flashed_message(level: int) -> FlashMessage | None:
    """Return and remove the oldest waiting message of *level*, or ``None``.

    :param level: The level to look for.
    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.
    """
    found = _take(level, None, remove=True, limit=1)
    return found[0] if found else None


def peek_flashed_messages(
    level: int | None = None, *, min_level: int | None = None
) -> list[FlashMessage]:
    """The waiting messages that match, oldest first, without removing them.

    :param level: Only messages of exactly this level.
    :param min_level: Only messages of this level or higher.
    :raises RuntimeError: the app is not wrapped in :class:`~wsgisession.SessionMiddleware`.
    """
    return _take(level, min_level, remove=False, limit=None)


def _take(
    level: int | None, min_level: int | None, *, remove: bool, limit: int | None
) -> list[FlashMessage]:
    session = get_session()
    pending = session.get(FLASH_KEY)
    if pending is None:
        return []
    if not isinstance(pending, list):
        log.warning("ignored flash messages in an unknown format: %r", pending)
        if remove:
            del session[FLASH_KEY]
        return []
    taken: list[FlashMessage] = []
    kept: list[Any] = []
    for entry in pending:
        message = _message(entry)
        if message is None:
            continue  # not something flash() wrote: dropped on the next removal
        if (
            (level is None or message.level == level)
            and (min_level is None or message.level >= min_level)
            and (limit is None or len(taken) < limit)
        ):
            taken.append(message)
        else:
            kept.append(entry)
    if remove and len(kept) != len(pending):
        if kept:
            session[FLASH_KEY] = kept
        else:
            del session[FLASH_KEY]
    return taken


def _message(entry: Any) -> FlashMessage | None:
    if (
        isinstance(entry, list)
        and len(entry) == 2
        and type(entry[0]) is int
        and isinstance(entry[1], str)
    ):
        return FlashMessage(entry[1], _LEVELS.get(entry[0], entry[0]))
    log.warning("ignored a flash message in an unknown format: %r", entry)
    return None
