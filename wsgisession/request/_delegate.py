"""Hand a body to pydantic or msgspec when the model is theirs, mapping their errors.

Neither library is imported here: a model of theirs can only exist if the library
is loaded, so ``sys.modules`` says whether to look.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from typing import TYPE_CHECKING, Any

from ..errors import FieldError

if TYPE_CHECKING:
    from ._models import FormObject

__all__ = ["delegate"]

# msgspec says where in one string: "Expected `int`, got `str` - at `$.items[0].n`".
_MSGSPEC_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def delegate(
    model: type[Any], source: dict[str, Any] | FormObject
) -> tuple[Any, list[FieldError]] | None:
    """``(value, errors)`` from pydantic or msgspec, or ``None`` when *model* is not theirs."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        data = source if isinstance(source, dict) else _form_dict(source, _pydantic_lists(model))
        try:
            return model.model_validate(data), []
        except pydantic.ValidationError as exc:
            return None, [FieldError(_path(error["loc"]), error["msg"]) for error in exc.errors()]
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(model, type) and issubclass(model, msgspec.Struct):
        if isinstance(source, dict):
            data, strict = source, True
        else:  # a form is all strings: let msgspec convert "42" to 42
            data, strict = _form_dict(source, _msgspec_lists(model)), False
        try:
            return msgspec.convert(data, model, strict=strict), []
        except msgspec.ValidationError as exc:
            # msgspec stops at the first error, so that is the only one reported.
            match = _MSGSPEC_AT.match(str(exc))
            assert match is not None  # the pattern matches any string
            where = match["path"].lstrip(".") if match["path"] else None
            return None, [FieldError(where or None, match["message"])]
    return None


def _form_dict(source: FormObject, lists: set[str]) -> dict[str, Any]:
    # Single values as strings, and every value of a field the model types as a list.
    data: dict[str, Any] = {}
    for key in source.form:
        data[key] = source.form.getlist(key) if key in lists else source.form[key]
    for key in source.files:
        data[key] = source.files.getlist(key) if key in lists else source.files[key]
    return data


def _pydantic_lists(model: Any) -> set[str]:
    return {
        info.alias or name for name, info in model.model_fields.items() if _is_list(info.annotation)
    }


def _msgspec_lists(model: Any) -> set[str]:
    hints = typing.get_type_hints(model)
    return {name for name in model.__struct_fields__ if _is_list(hints.get(name))}


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):  # list[int] | None
        return any(typing.get_origin(arg) is list for arg in typing.get_args(annotation))
    return origin is list


def _path(loc: tuple[int | str, ...]) -> str | None:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None
