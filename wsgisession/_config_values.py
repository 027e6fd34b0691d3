"""How :mod:`wsgisession.config` reads each setting's value.

Values come native from TOML files and dicts, and as strings from environment
variables and URL queries; each reader accepts both and raises
:class:`~wsgisession.errors.ConfigurationError` naming the setting otherwise.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigurationError

_NONE = frozenset({"", "none", "null"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _fail(setting: str, value: Any, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{setting} must be {expected}, not {value!r}")


def _str(setting: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(setting, value, "a string")
    return value


def _secret(setting: str, value: Any) -> str | bytes:
    # A framework's own key may be bytes (Flask's app.secret_key often is).
    return value if isinstance(value, bytes) else _str(setting, value)


def _secret_list(setting: str, value: Any) -> list[str | bytes]:
    if isinstance(value, list | tuple) and all(isinstance(item, str | bytes) for item in value):
        return list(value)
    return list(_str_list(setting, value))


def _optional_str(setting: str, value: Any) -> str | None:
    if value is None or value is False or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _str(setting, value)


def _str_list(setting: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise _fail(setting, value, "a list of strings (in an env var: comma-separated)")


def _int(setting: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(setting, value, "a whole number")
    return value


def _float(setting: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise _fail(setting, value, "a number") from None


def _float_or_none(setting: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _float(setting, value)


def _seconds(setting: str, value: Any) -> int | None:
    if value is None or value is False or (isinstance(value, str) and value.lower() in _NONE):
        return None
    return _int(setting, value)


def _bool(setting: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _fail(setting, value, "true or false")


def _samesite(setting: str, value: Any) -> str | None:
    # "None" is a SameSite value (cross-site allowed); no attribute at all is false.
    if value is None or value is False:
        return None
    value = _str(setting, value)
    return None if value.lower() in _FALSE | {""} else value


def _secure(setting: str, value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.lower() in _NONE | {"auto"}):
        return None
    return _bool(setting, value)
