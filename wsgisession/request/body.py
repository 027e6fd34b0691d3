"""Typed, validated request bodies: ``body(Model)`` or a ``400`` listing what is wrong.

- :func:`body` reads the request body into a :func:`~dataclasses.dataclass`: JSON
  when the media type is ``application/json`` (or ``application/*+json``), an HTML
  form (urlencoded or multipart) otherwise. Each field is converted with the same
  converters as :func:`~wsgisession.param` (:func:`~wsgisession.register_converter`
  adds more) and checked against its :func:`rules`; a ``__post_init__`` raising
  ``ValueError`` adds a cross-field rule.
- On failure it raises :class:`~wsgisession.errors.BadBody`, a ``400`` listing
  **every** failing field; :func:`validate_body` gives the handler a
  :class:`Validation` instead, to re-render a form with its errors.
- A model that is a pydantic ``BaseModel`` or a msgspec ``Struct`` is handed to that
  library, and its errors come back in the same shape.

Like :func:`~wsgisession.param`, this needs the request bound to the context
(:class:`~wsgisession.SessionMiddleware` or :class:`~wsgisession.RequestScope`), and
reading the body does not take it away from the application.

When *not* to use it: for a stream (a large upload you want to write to disk as it
arrives), since the whole body is held in memory: 500 KB of JSON, 16 MB of form.

Django turns any exception raised in a view into a ``500`` before a WSGI middleware
sees it: decorate a Django view that calls :func:`body` with
:func:`catch_http_errors`, or use :func:`validate_body`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

from .._frameworks import django_response_for
from ..context import current_environ
from ..errors import BadBody, FieldError
from ..limits import limits_for
from ._delegate import delegate
from ._forms import form_data, is_form, is_json, json_body
from ._models import MAX_ERRORS, FormObject, build, form_object
from ._rules import rules

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Validation", "body", "catch_http_errors", "rules", "validate_body"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Validation(Generic[T]):
    """The result of :func:`validate_body`: the value, or what is wrong with the body.

    :param value: The model instance; ``None`` when there are errors.
    :param errors: Every failing field, in declaration order; empty when ``ok``.
    """

    value: T | None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the body is valid, so :attr:`value` is the model instance."""
        return not self.errors

    def error(self, name: str | None) -> str | None:
        """The first message for the field *name* (``None`` for the whole body), if any.

        :param name: A field's path, as in :attr:`FieldError.field`.

        ::

            <input name="name"> {{ validation.error("name") or "" }}
        """
        return next((e.message for e in self.errors if e.field == name), None)


def validate_body(model: type[T]) -> Validation[T]:
    """Read and check the request body against *model*, without raising for bad input.

    For a handler that shows the errors itself, typically a form re-rendered with a
    message next to each field.

    - JSON when the media type is ``application/json`` (parameters allowed, as in
      ``; charset=utf-8``) or ``application/*+json``; a urlencoded or multipart
      form when it says so, or when there is no ``Content-Type`` at all.
    - Fields not in the model are ignored. A field without a default is required
      (``T | None`` defaults to ``None``); in a form, a blank value counts as missing
      for any type but ``str``.
    - Malformed JSON (its position is named), a JSON body that is not an object, or a
      malformed multipart body is one error with ``field`` ``None``.

    :param model: A dataclass (fields of ``str``, ``int``, ``float``, ``bool``,
        ``Decimal``, ``UUID``, ``date``, ``datetime``, an ``Enum``, a registered type,
        ``FileStorage`` in a multipart form, ``list[T]``, ``dict[str, T]``, ``T |
        None``, ``Any``, or a nested dataclass), a pydantic model or a msgspec Struct.
    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over the limit: a
        ``413``.
    :raises werkzeug.exceptions.UnsupportedMediaType: a body that is neither JSON nor
        a form: a ``415``.
    :raises TypeError: *model* has a field of a type no converter knows (a bug).
    :raises RuntimeError: no request is being handled.

    ::

        result = validate_body(Profile)
        if not result.ok:
            return render("profile.html", errors=result.errors)
        save(result.value)
    """
    environ = current_environ()
    try:
        source = _read(environ)
    except _BodyRefused as refused:
        return Validation(None, [FieldError(None, refused.message)])
    errors: list[FieldError] = []
    delegated = delegate(model, source)
    if delegated is not None:
        value, errors = delegated
    else:
        value = build(model, source, None, errors, limits_for(environ).max_decimal_digits)
    if len(errors) >= MAX_ERRORS:
        errors = [
            *errors[:MAX_ERRORS],
            FieldError(None, f"too many errors: only the first {MAX_ERRORS} are listed"),
        ]
    return Validation(None, errors) if errors else Validation(value)


def body(model: type[T]) -> T:
    """The request body read into *model*, or a ``400`` listing every failing field.

    Everything :func:`validate_body` says holds; on errors this raises
    :class:`~wsgisession.errors.BadBody` instead of returning them.

    :param model: As for :func:`validate_body`.
    :raises BadBody: some fields are missing or invalid, or the body is malformed.
    :raises werkzeug.exceptions.RequestEntityTooLarge: the body is over the limit.
    :raises werkzeug.exceptions.UnsupportedMediaType: neither JSON nor a form.

    ::

        @dataclass
        class SignUp:
            email: str = field(metadata=rules(email=True))
            age: int = field(metadata=rules(ge=13))

        sign_up = body(SignUp)
    """
    result = validate_body(model)
    if not result.ok:
        raise BadBody(result.errors)
    return result.value  # type: ignore[return-value]


def catch_http_errors(view: F) -> F:
    """Decorate a Django view so that :func:`body` failing in it is a ``400``, not a ``500``.

    Django turns any exception that is not its own into a ``500`` before a WSGI
    middleware sees it. A werkzeug :class:`~werkzeug.exceptions.HTTPException`
    (:class:`~wsgisession.errors.BadBody`, :class:`~wsgisession.errors.BadParam`)
    raised by a Django view so decorated becomes its ``HttpResponse``, rendered
    exactly as elsewhere. In any other view it is raised on, for Flask or the
    middleware to render.

    :param view: A view of any framework.

    ::

        @catch_http_errors
        def profile(request):
            data = body(Profile)
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except HTTPException as exc:
            response = django_response_for(args, exc, current_environ())
            if response is None:
                raise
            return response

    return wrapper  # type: ignore[return-value]


class _BodyRefused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _read(environ: WSGIEnvironment) -> dict[str, Any] | FormObject:
    if is_json(environ):
        return _json_object(json_body(environ))
    if is_form(environ) or not environ.get("CONTENT_TYPE"):
        try:
            form, files = form_data(environ)
        except BadRequest as exc:  # a malformed multipart body
            raise _BodyRefused(str(exc.description)) from None
        return form_object(form, files)
    raise UnsupportedMediaType(
        "Send the body as application/json, application/x-www-form-urlencoded or"
        " multipart/form-data."
    )


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _BodyRefused(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise _BodyRefused("malformed JSON: the body is not UTF-8") from None
    except RecursionError:
        raise _BodyRefused("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # NaN, Infinity, an integer of thousands of digits
        raise _BodyRefused(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BodyRefused(f"expected a JSON object, got {_json_kind(data)}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
