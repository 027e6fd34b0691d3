"""Option checks shared by every constructor: a bad setting fails at start-up.

Each check raises :class:`~wsgisession.errors.ConfigurationError` with the option's
name, the value given and what would be accepted, so no misconfiguration survives to
the first request.
"""

from __future__ import annotations

from typing import Any, overload

from .errors import ConfigurationError

__all__ = ["a", "check_bool", "count"]


@overload
def count(
    name: str, value: Any, *, minimum: int = 1, unit: str = "", optional: bool
) -> int | None: ...


@overload
def count(name: str, value: Any, *, minimum: int = 1, unit: str = "") -> int: ...


def count(
    name: str, value: Any, *, minimum: int = 1, unit: str = "", optional: bool = False
) -> int | None:
    """*value* if it is a whole number of at least *minimum* (or ``None`` when *optional*).

    :param name: The option's name, for the message.
    :param value: What was given.
    :param minimum: The smallest value accepted.
    :param unit: What the number counts (``"seconds"``), for the message.
    :param optional: Whether ``None`` is accepted.
    :raises ConfigurationError: anything else (a ``bool`` or a string included).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        if unit:
            what += f" of {unit}"
        if optional:
            what += " or None"
        raise ConfigurationError(f"{name} must be {what}, not {value!r}")
    return value


def check_bool(name: str, value: Any, *, optional: bool = False) -> bool | None:
    """*value* if it is ``True`` or ``False`` (or ``None`` when *optional*).

    :raises ConfigurationError: anything else, such as the string ``"false"``.
    """
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{name} must be True or False{' or None' if optional else ''}, not {value!r}"
        )
    return value


def a(noun: str) -> str:
    """*noun* after its indefinite article, for messages: ``a str``, ``an int``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
