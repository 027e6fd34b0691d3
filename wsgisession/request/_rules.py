"""Validation rules declared next to a dataclass field: ``field(metadata=rules(...))``."""

from __future__ import annotations

import operator
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Rules", "rules", "rules_of"]

#: The key of the rules in a dataclass field's metadata.
RULES_KEY = "wsgisession.rules"

# A light check, as the only real one is a mail that arrives: something, one @,
# a domain with a dot, no spaces; 254 is the longest address SMTP can carry.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_EMAIL_MAX = 254


@dataclass(frozen=True)
class Rules:
    """The rules of one field, as given to :func:`rules`."""

    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    ge: Any = None
    le: Any = None
    gt: Any = None
    lt: Any = None
    email: bool = False
    one_of: tuple[Any, ...] | None = None
    strip: bool = False
    message: str | None = None

    def check(self, value: Any) -> str | None:
        """The message for the first rule *value* breaks, or ``None`` when it keeps all."""
        broken = self._broken(value)
        if broken is None:
            return None
        return self.message if self.message is not None else broken

    def _broken(self, value: Any) -> str | None:
        if self.min_length is not None and len(value) < self.min_length:
            if self.min_length == 1:
                return "must not be empty"
            return f"must have at least {self.min_length} {_unit(value)}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must have at most {self.max_length} {_unit(value)}"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"must match the pattern {self.pattern.pattern}"
        if self.email and (len(value) > _EMAIL_MAX or not _EMAIL.fullmatch(value)):
            return "must be an email address"
        for bound, op, fails in (
            (self.ge, ">=", operator.lt),
            (self.le, "<=", operator.gt),
            (self.gt, ">", operator.le),
            (self.lt, "<", operator.ge),
        ):
            if bound is None:
                continue
            try:
                if fails(value, bound):
                    return f"must be {op} {bound}"
            except TypeError:  # a naive datetime against an aware one, say
                return _incomparable(value, bound)
        if self.one_of is not None and value not in self.one_of:
            return "must be one of: " + ", ".join(str(choice) for choice in self.one_of)
        return None


def _incomparable(value: Any, bound: Any) -> str:
    if isinstance(value, datetime) and isinstance(bound, datetime):
        if bound.utcoffset() is None:
            return "must be a date and time without a time zone"
        return "must be a date and time with a time zone (such as +00:00)"
    return f"cannot be compared with {bound}"


def _unit(value: Any) -> str:
    return "characters" if isinstance(value, str) else "items"


def rules(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    ge: Any = None,
    le: Any = None,
    gt: Any = None,
    lt: Any = None,
    email: bool = False,
    one_of: Collection[Any] | None = None,
    strip: bool = False,
    message: str | None = None,
) -> Mapping[str, Any]:
    """Validation rules for a dataclass field, read by :func:`~wsgisession.request.body`.

    Give the result as the field's ``metadata``. A value breaking a rule is a field
    error; only the first rule it breaks is reported, and ``None`` (of a ``T | None``
    field) is never checked.

    :param min_length: The fewest characters of a ``str``, or items of a ``list``.
    :param max_length: The most characters, or items.
    :param pattern: A regular expression the whole ``str`` must match (compiled now,
        so a bad one fails when the model is defined).
    :param ge: The value must be ``>=`` this (any comparable: a number, a date).
    :param le: The value must be ``<=`` this.
    :param gt: The value must be ``>`` this.
    :param lt: The value must be ``<`` this.
    :param email: The ``str`` must look like an email address (one ``@``, a dot in
        the domain, no spaces, 254 characters at most); only a mail that arrives
        proves it.
    :param one_of: The value must be one of these.
    :param strip: Strip the spaces around a ``str`` before the rules, and keep it
        stripped, so ``"  "`` breaks ``min_length=1``.
    :param message: Say this instead of the rule's own message.
    :raises ValueError: a bound that cannot hold (``min_length`` above
        ``max_length``, a negative length).
    :raises re.error: *pattern* is not a regular expression.

    ::

        @dataclass
        class Profile:
            name: str = field(metadata=rules(min_length=1, max_length=100, strip=True))
            age: int = field(default=0, metadata=rules(ge=0, le=150))
    """
    for length in (min_length, max_length):
        if length is not None and length < 0:
            raise ValueError(f"a length cannot be negative, not {length}")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ValueError(f"min_length {min_length} is over max_length {max_length}")
    return {
        RULES_KEY: Rules(
            min_length=min_length,
            max_length=max_length,
            pattern=re.compile(pattern) if pattern is not None else None,
            ge=ge,
            le=le,
            gt=gt,
            lt=lt,
            email=email,
            one_of=tuple(one_of) if one_of is not None else None,
            strip=strip,
            message=message,
        )
    }


def rules_of(metadata: Mapping[str, Any]) -> Rules | None:
    """The rules in a dataclass field's *metadata*, if it has any."""
    found = metadata.get(RULES_KEY)
    return found if isinstance(found, Rules) else None
