"""Typed variables over the session and the request scope.

A plain ``session["username"]`` is an ``Any`` under a string key that any other
part of the program may reuse by accident. A :class:`SessionVar` is declared once,
as a class attribute, and gives its value a type both mypy and the runtime check::

    class SVar:
        username = SessionVar(str)
        is_admin = SessionVar(bool, default=False)

    SVar.username.set("alice")
    SVar.username.get()  # "alice", a str to mypy

The key is derived from where the variable is declared (module, class, attribute),
so two variables never share one (two variables with one key would silently
overwrite each other). :class:`RequestVar` is the same
over the request scope (:data:`~wsgisession.at`), for data that lives one request.

A stored value of the wrong type (the type was changed by a deploy while old
sessions were still out) reads as undefined and logs a warning; the rest of the
session is kept.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import MutableMapping
from typing import Any, Final, Generic, Self, TypeVar, get_origin, overload

from ._options import a
from .context import get_session, request_scope

__all__ = ["RequestVar", "SessionVar"]

log = logging.getLogger("wsgisession")

T = TypeVar("T")
D = TypeVar("D")


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


class _Var(Generic[T]):
    """What :class:`SessionVar` and :class:`RequestVar` share; they differ in storage."""

    _kind = "variable"

    def __init__(
        self, type_: type[T], *, default: T | _Missing = _MISSING, key: str | None = None
    ) -> None:
        origin = get_origin(type_) or type_
        if not isinstance(origin, type):
            raise TypeError(
                f"{self._kind} needs a class as its type (str, list[int] ...), not {type_!r}"
            )
        self.type = type_
        self._origin: type[Any] = origin
        self._accepts: tuple[type[Any], ...] = (int, float) if origin is float else (origin,)
        if default is not _MISSING and not self._matches(default):
            raise TypeError(
                f"the default of a {self._kind}({origin.__name__}) must be"
                f" {a(origin.__name__)}, not {a(type(default).__name__)}"
            )
        self.default = default
        self.key = key
        self._name: str | None = None

    def __set_name__(self, owner: type[Any], name: str) -> None:
        if self._name is not None:
            raise TypeError(
                f"{self._kind} {self._name} is also assigned to {name!r}: two names would"
                f" share one value; give each its own {self._kind}"
            )
        self._name = f"{owner.__module__}.{owner.__qualname__}.{name}"
        if self.key is None:
            self.key = self._name

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Self:
        # Read through the class or an instance alike: the value is per request or
        # per session, never per instance.
        return self

    def __repr__(self) -> str:
        return f"<{self._kind} {self.key or '(unnamed)'}: {self._origin.__name__}>"

    def _mapping(self) -> MutableMapping[str, Any]:
        raise NotImplementedError

    def _key(self) -> str:
        if self.key is None:
            raise TypeError(
                f"this {self._kind} has no key: declare it as a class attribute"
                f" (class SVar: name = {self._kind}(str)) or pass key='...'"
            )
        return self.key

    def _matches(self, value: Any) -> bool:
        return isinstance(value, self._accepts) and not (
            # bool is an int to isinstance, but a True in a float var is a bug.
            self._origin is float and isinstance(value, bool)
        )

    def _read(self, mapping: MutableMapping[str, Any], key: str) -> T | _Missing:
        value = mapping.get(key, _MISSING)
        if value is _MISSING or self._matches(value):
            return value  # type: ignore[no-any-return]
        log.warning(
            "%s %s holds %s, not %s (its type changed?); reading it as undefined",
            self._kind,
            key,
            a(type(value).__name__),
            a(self._origin.__name__),
        )
        return _MISSING

    @overload
    def get(self) -> T: ...

    @overload
    def get(self, default: D) -> T | D: ...

    def get(self, default: Any = _MISSING) -> Any:
        """The value; else *default*, else the variable's default.

        :param default: Returned when the variable is not set (overrides the default
            given when it was declared).
        :raises LookupError: not set and no default.
        :raises RuntimeError: no request is being handled (or, for a
            :class:`SessionVar`, the app has no :class:`~wsgisession.SessionMiddleware`).
        """
        key = self._key()
        value = self._read(self._mapping(), key)
        if value is not _MISSING:
            return value
        if default is not _MISSING:
            return default
        if self.default is not _MISSING:
            return self.default
        raise LookupError(f"{self._kind} {key} is not set and has no default")

    def set(self, value: T) -> None:
        """Store *value*.

        :param value: An instance of the variable's type (for ``list[int]``, a list:
            only the outer type is checked).
        :raises TypeError: *value* is of another type.
        """
        key = self._key()
        if not self._matches(value):
            raise TypeError(
                f"{self._kind} {key} holds {a(self._origin.__name__)},"
                f" not {a(type(value).__name__)}"
            )
        self._mapping()[key] = value

    def remove(self) -> T | None:
        """Unset the variable; returns the value it had, or ``None``."""
        key = self._key()
        mapping = self._mapping()
        value = self._read(mapping, key)
        mapping.pop(key, None)
        return None if value is _MISSING else value

    @property
    def is_defined(self) -> bool:
        """Whether a value (of the right type) is set; the default does not count."""
        return self._read(self._mapping(), self._key()) is not _MISSING


class SessionVar(_Var[T]):
    """A typed value in the session, declared as a class attribute.

    Values go through the session's serializer, so they may be of any type a
    session holds (``datetime``, ``UUID`` …).

    :param type_: The type of the value: a class, or a generic alias like
        ``list[int]`` (only ``list`` is checked at run time).
    :param default: What :meth:`get` returns when the variable is not set.
    :param key: The session key; by default ``module.Class.attribute``. Required
        for a variable that is not a class attribute.
    :raises TypeError: *type_* is not a class, or *default* is not a *type_*.

    ::

        class SVar:
            username = SessionVar(str)

        SVar.username.set("alice")
        if SVar.username.is_defined:
            greeting = f"Hello, {SVar.username.get()}"
    """

    _kind = "SessionVar"

    def _mapping(self) -> MutableMapping[str, Any]:
        return get_session()


class RequestVar(_Var[T]):
    """A typed value in the request scope (:data:`~wsgisession.at`), for one request.

    Takes the same arguments as :class:`SessionVar`; the value is gone when the
    response is closed.

    ::

        class RVar:
            title = RequestVar(str, default="My Site")

        RVar.title.set("Articles")  # in the view
        RVar.title.get()  # in the layout
    """

    _kind = "RequestVar"

    def _mapping(self) -> MutableMapping[str, Any]:
        return request_scope()
