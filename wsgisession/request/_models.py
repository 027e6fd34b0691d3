"""Build a dataclass from a parsed JSON object or a form, collecting every field error.

The types a field may have are checked once per model (:func:`_fields`, cached), so
an unsupported type is a ``TypeError`` (a bug) even for a body that lacks the field,
and a value that does not convert is always a field error, never an exception.

A hostile body must stay cheap to refuse: a list longer than its ``max_length`` is
refused before any item is converted, and no more than :data:`MAX_ERRORS` errors are
collected.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from werkzeug.datastructures import FileStorage, MultiDict

from ..errors import FieldError
from ._converters import (
    MAX_DECIMAL_DIGITS,
    TooManyDigits,
    check_decimal_digits,
    convert,
    converter_for,
    is_registered,
)
from ._rules import Rules, rules_of

__all__ = ["MAX_ERRORS", "FormObject", "build", "form_object"]

#: The most field errors collected for one body; the rest are not looked for.
MAX_ERRORS = 100

T = TypeVar("T")

_MISSING: Any = object()
#: What _field_value answers for a field whose error it added to the list.
_FAILED: Any = object()

_DESCRIBED: dict[type[Any], str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    Decimal: "a decimal number",
    UUID: "a UUID",
    date: "a date (YYYY-MM-DD)",
    datetime: "a date and time (ISO 8601)",
}


@dataclass(frozen=True)
class FormObject:
    """The fields of a form under *prefix*: a nested dataclass reads ``address.city``."""

    form: MultiDict[str, str]
    files: MultiDict[str, FileStorage]
    prefix: str = ""


def form_object(form: MultiDict[str, str], files: MultiDict[str, FileStorage]) -> FormObject:
    """The top-level fields of a parsed form."""
    return FormObject(form, files)


@dataclass(frozen=True)
class _Field:
    name: str
    annotation: Any
    rules: Rules | None
    has_default: bool


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def build(
    model: type[T],
    source: dict[str, Any] | FormObject,
    path: str | None,
    errors: list[FieldError],
    digits: int = MAX_DECIMAL_DIGITS,
) -> T | None:
    """*model* built from *source*, or ``None`` with what is wrong added to *errors*.

    :param path: Where *source* is in the body (``"address"``), ``None`` at the top.
    :param digits: The most digits of a ``Decimal`` (``RequestLimits.max_decimal_digits``).
    """
    kwargs: dict[str, Any] = {}
    failed = False
    for f in _fields(model):  # type: ignore[arg-type]  # a class is hashable
        if len(errors) >= MAX_ERRORS:
            return None
        where = f.name if path is None else f"{path}.{f.name}"
        value = _field_value(f, _raw(source, f), where, errors, digits)
        if value is _FAILED:
            failed = True
        elif value is not _MISSING:
            kwargs[f.name] = value
    if failed:
        return None
    try:
        return model(**kwargs)
    except ValueError as exc:  # a cross-field rule in __post_init__
        errors.append(FieldError(path, str(exc)))
        return None


def _field_value(f: _Field, raw: Any, where: str, errors: list[FieldError], digits: int) -> Any:
    """The value of field *f*, ``_MISSING`` to leave it out, ``_FAILED`` (in *errors*)."""
    if raw is _MISSING:
        if _optional(f.annotation)[1] and not f.has_default:
            return None
        if not f.has_default:
            errors.append(FieldError(where, "is required"))
            return _FAILED
        return _MISSING
    too_long = _over_max_length(raw, f.rules)
    if too_long is not None:
        errors.append(FieldError(where, too_long))
        return _FAILED
    before = len(errors)
    value = _value(raw, f.annotation, where, errors, digits)
    if len(errors) > before:
        return _FAILED
    if f.rules is not None and value is not None:
        if f.rules.strip and isinstance(value, str):
            value = value.strip()
        message = f.rules.check(value)
        if message is not None:
            errors.append(FieldError(where, message))
            return _FAILED
    return value


def _over_max_length(raw: Any, rules: Rules | None) -> str | None:
    # Checked before the items are converted: 100,000 items for a list of at most
    # 10 must not cost 100,000 conversions and as many errors.
    if rules is None or rules.max_length is None or not isinstance(raw, list):
        return None
    if len(raw) <= rules.max_length:
        return None
    return rules.check(raw)


def _raw(source: dict[str, Any] | FormObject, f: _Field) -> Any:
    if isinstance(source, dict):
        return source.get(f.name, _MISSING)
    key = source.prefix + f.name
    inner, optional = _optional(f.annotation)
    if _is_model(inner):
        nested = FormObject(source.form, source.files, key + ".")
        # An optional nested model with no field in the form is absent; a required
        # one is built anyway, so each of its missing fields is named.
        if optional and not any(k.startswith(nested.prefix) for k in (*source.form, *source.files)):
            return _MISSING
        return nested
    if inner is FileStorage:
        upload = source.files.get(key)
        # A file input left empty still sends a part, with no file name.
        return upload if upload is not None and upload.filename else _MISSING
    blank_is_missing = inner is not str
    if typing.get_origin(inner) is list:
        blank_is_missing = typing.get_args(inner)[0] is not str
        values = source.form.getlist(key)
        values = [v for v in values if v != ""] if blank_is_missing else values
        return values if values else _MISSING
    value = source.form.get(key, _MISSING)
    return _MISSING if blank_is_missing and value == "" else value


def _value(raw: Any, annotation: Any, where: str, errors: list[FieldError], digits: int) -> Any:
    inner, optional = _optional(annotation)
    if inner is Any:
        return raw
    if raw is None:
        if not optional:
            errors.append(FieldError(where, "must not be null"))
        return None
    if _is_model(inner):
        if not isinstance(raw, dict | FormObject):
            errors.append(FieldError(where, "must be an object"))
            return None
        return build(inner, raw, where, errors, digits)
    origin = typing.get_origin(inner)
    if origin is list:
        return _list_value(raw, inner, where, errors, digits)
    if origin is dict:
        return _dict_value(raw, inner, where, errors, digits)
    try:
        return _scalar(raw, inner, digits)
    except _Invalid as invalid:
        errors.append(FieldError(where, invalid.message))
        return None


def _list_value(
    raw: Any, annotation: Any, where: str, errors: list[FieldError], digits: int
) -> list[Any] | None:
    if not isinstance(raw, list):
        errors.append(FieldError(where, "must be a list"))
        return None
    (item,) = typing.get_args(annotation)
    items = []
    for i, v in enumerate(raw):
        if len(errors) >= MAX_ERRORS:
            break
        items.append(_value(v, item, f"{where}[{i}]", errors, digits))
    return items


def _dict_value(
    raw: Any, annotation: Any, where: str, errors: list[FieldError], digits: int
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    item = typing.get_args(annotation)[1]
    values = {}
    for k, v in raw.items():
        if len(errors) >= MAX_ERRORS:
            break
        values[k] = _value(v, item, f"{where}.{k}", errors, digits)
    return values


def _scalar(raw: Any, type_: type[Any], digits: int) -> Any:
    if type_ is FileStorage:
        if isinstance(raw, FileStorage):
            return raw
        raise _Invalid("must be an uploaded file")
    # JSON gives str, int, float and bool; a str goes through the converters, the
    # others only where they mean the same (an int for a float, not a bool for an int).
    if isinstance(raw, str):
        try:
            return convert(raw, type_, max_decimal_digits=digits)
        except TooManyDigits:
            raise _Invalid(f"must have at most {digits} digits") from None
        except (ValueError, TypeError, ArithmeticError):
            raise _Invalid(f"must be {_describe(type_)}") from None
    if type_ is bool and isinstance(raw, bool):
        return raw
    if not isinstance(raw, bool) and not (isinstance(raw, float) and not math.isfinite(raw)):
        value = _number(raw, type_, digits)
        if value is not _MISSING:
            return value
    raise _Invalid(f"must be {_describe(type_)}")


def _number(raw: Any, type_: type[Any], digits: int) -> Any:
    """A JSON number (not a bool, finite) as *type_*; ``_MISSING`` when it is not one."""
    if type_ is int and isinstance(raw, int):
        return raw
    if type_ is float and isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:  # an integer of 400 digits
            raise _Invalid("must be a number within the range of a float") from None
    if type_ is Decimal and isinstance(raw, int | float):
        # str() is the shortest text: 0.1, not 0.1000000000000000055
        try:
            return check_decimal_digits(Decimal(str(raw)), digits)
        except TooManyDigits:
            raise _Invalid(f"must have at most {digits} digits") from None
    if issubclass(type_, Enum) and isinstance(raw, int | float):
        try:
            return convert(str(raw), type_)
        except ValueError:
            pass
    return _MISSING


def _describe(type_: type[Any]) -> str:
    if type_ in _DESCRIBED:
        return _DESCRIBED[type_]
    if issubclass(type_, Enum):
        return "one of: " + ", ".join(str(member.value) for member in type_)
    return f"a valid {type_.__name__}"


def _is_model(type_: Any) -> bool:
    # A dataclass given to register_converter() is read from text, not as an object.
    return isinstance(type_, type) and dataclasses.is_dataclass(type_) and not is_registered(type_)


def _optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


@functools.cache
def _fields(model: type[Any]) -> tuple[_Field, ...]:
    if not (isinstance(model, type) and dataclasses.is_dataclass(model)):
        raise TypeError(
            f"body() needs a dataclass, a pydantic model or a msgspec Struct, not {model!r}"
        )
    try:
        hints = typing.get_type_hints(model)
    except NameError as exc:
        raise TypeError(f"cannot resolve the annotations of {model.__qualname__}: {exc}") from None
    fields = []
    for f in dataclasses.fields(model):
        if not f.init:
            continue
        annotation = hints[f.name]
        _check_type(annotation, model, f.name)
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        fields.append(_Field(f.name, annotation, rules_of(f.metadata), has_default))
    return tuple(fields)


def _check_type(annotation: Any, model: type[Any], name: str) -> None:
    inner, _ = _optional(annotation)
    origin = typing.get_origin(inner)
    if inner is Any or inner is FileStorage:
        return
    if _is_model(inner):
        _fields(inner)
        return
    if origin is list and len(typing.get_args(inner)) == 1:
        _check_type(typing.get_args(inner)[0], model, name)
        return
    if origin is dict and typing.get_args(inner)[:1] == (str,):
        _check_type(typing.get_args(inner)[1], model, name)
        return
    try:
        converter_for(inner)
    except TypeError:
        raise TypeError(
            f"{model.__qualname__}.{name}: body() cannot read a {annotation!r}; use str, int,"
            " float, bool, Decimal, UUID, date, datetime, an Enum, FileStorage, list[T],"
            " dict[str, T], T | None, Any, a dataclass, or register_converter()"
        ) from None
