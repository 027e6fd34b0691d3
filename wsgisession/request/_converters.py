"""Turn the text of a request parameter into the type a view asked for.

Built in: ``str``, ``int``, ``float``, ``bool``, ``Decimal``, ``UUID``, ``date``,
``datetime`` and any ``Enum``; :func:`register_converter` adds more. A converter
raises ``ValueError`` (or ``TypeError``, ``ArithmeticError``) for text it cannot
convert; :func:`~wsgisession.param` turns that into a ``400``.

The built-in ``Decimal`` converter also refuses a value of more digits, written
out, than :attr:`~wsgisession.RequestLimits.max_decimal_digits`: ``9e999999999``
is nine characters, but ``int()`` or ``f"{x:.2f}"`` on it builds a billion digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

__all__ = [
    "MAX_DECIMAL_DIGITS",
    "TooManyDigits",
    "check_decimal_digits",
    "convert",
    "converter_for",
    "is_registered",
    "register_converter",
]

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "nan" and "inf" parse, but no form means them
        raise ValueError(text)
    return value


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(text)
    return value


#: The default of :attr:`~wsgisession.RequestLimits.max_decimal_digits`.
MAX_DECIMAL_DIGITS = 1000


class TooManyDigits(ValueError):
    """A ``Decimal`` over the digits limit (a ``ValueError``, so a ``400``)."""


def check_decimal_digits(value: Decimal, max_digits: int) -> Decimal:
    """*value* if written without an exponent it has at most *max_digits* digits.

    :raises TooManyDigits: it has more (``1e-999999999`` has a billion decimals).
    """
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite value: _decimal refused the others
    if max(value.adjusted() + 1, 1) + max(-exponent, 0) > max_digits:
        raise TooManyDigits(f"a decimal number of more than {max_digits} digits")
    return value


def _int(text: str) -> int:
    return int(text, 10)


_BUILT_IN: dict[type[Any], Callable[[str], Any]] = {
    str: str,
    int: _int,
    float: _float,
    bool: _bool,
    Decimal: _decimal,
    UUID: UUID,
    date: date.fromisoformat,
    datetime: datetime.fromisoformat,
}
_CONVERTERS = dict(_BUILT_IN)


def register_converter(type_: type[T], fn: Callable[[str], T]) -> None:
    """Let :func:`~wsgisession.param` and friends convert parameters to *type_*.

    Replaces a converter registered before for the same type, built-ins included.

    :param type_: The type asked for, as in ``param("at", type_)``.
    :param fn: Turns the parameter's text into a *type_*; raises ``ValueError``
        when it cannot, which becomes a ``400``.

    ::

        register_converter(Point, Point.parse)
        point = param("at", Point)
    """
    if not isinstance(type_, type):
        raise TypeError(f"register_converter needs a class, not {type_!r}")
    _CONVERTERS[type_] = fn


def unregister_converter(type_: type[Any]) -> None:
    """Undo :func:`register_converter` for *type_*: the built-in converter, if any, is back.

    Tests that register a converter call it on the way out, so the process-wide
    registry is the same for every test.

    :param type_: A type given to :func:`register_converter` (no error if it was not).
    """
    if type_ in _BUILT_IN:
        _CONVERTERS[type_] = _BUILT_IN[type_]
    else:
        _CONVERTERS.pop(type_, None)


def is_registered(type_: Any) -> bool:
    """Whether *type_* has a converter of its own (built in or registered)."""
    return type_ in _CONVERTERS


def _enum(enum: type[Enum]) -> Callable[[str], Enum]:
    def convert(text: str) -> Enum:
        for member in enum:  # by value first, as the value is what a form sends
            if member.value == text or str(member.value) == text:
                return member
        by_name = enum.__members__.get(text)
        if by_name is None:
            raise ValueError(text)
        return by_name

    return convert


def converter_for(type_: type[T]) -> Callable[[str], T]:
    """The converter for *type_*.

    :raises TypeError: no converter is known for *type_*.
    """
    fn = _CONVERTERS.get(type_)
    if fn is not None:
        return fn
    if isinstance(type_, type) and issubclass(type_, Enum):
        return _enum(type_)  # type: ignore[return-value]
    raise TypeError(
        f"no converter for {type_!r}: use str, int, float, bool, Decimal, UUID, date,"
        " datetime or an Enum, or register one with register_converter()"
    )


def convert(value: Any, type_: type[T], *, max_decimal_digits: int = MAX_DECIMAL_DIGITS) -> T:
    """*value* (a parameter's text, or an already-typed path value) as a *type_*.

    :param max_decimal_digits: The most digits the built-in ``Decimal`` converter
        accepts (see :func:`check_decimal_digits`).
    :raises ValueError: (or ``TypeError``, ``ArithmeticError``) it cannot be converted.
    """
    if isinstance(value, type_) and not (isinstance(value, bool) and type_ is not bool):
        return value
    fn = converter_for(type_)
    converted = fn(value if isinstance(value, str) else str(value))
    if fn is _decimal:
        check_decimal_digits(converted, max_decimal_digits)  # type: ignore[arg-type]
    return converted
