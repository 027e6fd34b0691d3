"""The request scope and typed request parameters, for any WSGI app.

- :data:`at` is a mutable mapping that lives for one request: a view puts data
  in, the layout takes it out, with no argument passing in between. :func:`at_json`
  hands a value to JavaScript safely.
- :func:`param`, :func:`optional_param` and :func:`params` read a parameter from the
  path, the form body or the query string, converted to the type asked for; bad input is
  a ``400`` (:class:`~wsgisession.errors.BadParam`), never a ``500``.

Both need the request to be bound to the context: :class:`~wsgisession.SessionMiddleware`
does it, and so does :class:`RequestScope`, for apps that want these without sessions.

Reading the form does not take the body away from the application: Flask's
``request.form`` and Django's ``request.POST`` still see it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import parse_qsl
from uuid import UUID

from markupsafe import Markup
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import ClosingIterator

from .._input import keep_body_readable
from .._options import a
from ..context import at, bind, current_environ, request_scope, unbind
from ..errors import BadParam
from ..limits import RequestLimits, check_limits, limits_for
from ._converters import convert, converter_for, register_converter, unregister_converter
from ._forms import form_data

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "RequestScope",
    "at",
    "at_json",
    "optional_param",
    "param",
    "params",
    "register_converter",
    "set_path_params",
    "unregister_converter",
]

T = TypeVar("T")

#: The standard environ key for path parameters: ``(positional, named)``.
ROUTING_ARGS_KEY = "wsgiorg.routing_args"

_QUERY_KEY = "wsgisession.query"

# What must not appear literally in JSON inside an HTML <script> block: "</script>"
# and "<!--" end or confuse it, & and ' matter in attributes, and U+2028/U+2029 are
# line breaks to older JavaScript engines.
_SCRIPT_SAFE = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "'": "\\u0027",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


class RequestScope:
    """Bind each request to the context, for apps that do not use sessions.

    :class:`~wsgisession.SessionMiddleware` already does this; wrap an app in
    ``RequestScope`` when it wants :data:`at`, :class:`~wsgisession.RequestVar` and
    :func:`param` but no session. What it does per request:

    - makes the environ current, so :data:`at` and :func:`param` work anywhere in the
      code that handles the request, while the body is produced included;
    - renders a werkzeug :class:`~werkzeug.exceptions.HTTPException` (a
      :class:`~wsgisession.errors.BadParam` above all) that escapes the app as its
      response, rather than letting it become a ``500``;
    - unbinds when the response is closed.

    :param app: The WSGI application to wrap.
    :param limits: How much of a request body :func:`param` and
        :func:`~wsgisession.body` parse: a :class:`~wsgisession.RequestLimits`.
        ``None`` (default): its defaults.
    :raises ConfigurationError: *limits* is not a ``RequestLimits``.

    ::

        app = RequestScope(app)
    """

    def __init__(self, app: WSGIApplication, *, limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = check_limits(limits)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        keep_body_readable(environ, self.limits)
        token = bind(environ)
        started = False

        def scope_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Any:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        try:
            app_iter = self.app(environ, scope_start_response)
        except HTTPException as exc:
            # PEP 3333: exc_info only if the app had started its own response; else
            # strict servers (werkzeug's test client) re-raise instead of answering.
            error_start_response = (
                partial(_with_exc_info, start_response) if started else start_response
            )
            app_iter = exc(environ, error_start_response)
        except BaseException:
            unbind(token)
            raise
        if type(app_iter) is list:
            unbind(token)  # nothing of the app runs after it returned a list
            return app_iter
        return ClosingIterator(app_iter, partial(unbind, token))


def _with_exc_info(
    start_response: StartResponse, status: str, headers: list[tuple[str, str]], *_: Any
) -> Any:
    exc_info: OptExcInfo = sys.exc_info()
    return start_response(status, headers, exc_info)


def at_json(key: str) -> Markup:
    """``at[key]`` as JSON that is safe inside an HTML ``<script>`` block.

    ``<``, ``>``, ``&``, ``'``, U+2028 and U+2029 are written as ``\\uXXXX`` escapes,
    so a value holding ``</script>`` stays a string. The result is a
    :class:`~markupsafe.Markup`, which Jinja and Django templates insert unescaped.
    Dataclasses become objects; ``datetime``, ``date``, ``UUID`` and ``Decimal``
    become strings; sets and tuples become arrays.

    :param key: A key of :data:`at`.
    :raises KeyError: *key* is not in :data:`at`.
    :raises TypeError: the value holds something JSON cannot represent.

    ::

        at["user"] = {"login": "admin"}
        # in the template: <script>const user = {{ at_json("user") }};</script>
    """
    value = request_scope()[key]
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    return Markup(text.translate(_SCRIPT_SAFE))  # noqa: S704 -- escaped for <script> above


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"at_json cannot write {a(type(value).__name__)} as JSON")


def set_path_params(mapping: Mapping[str, Any]) -> None:
    """Make *mapping* the current request's path parameters.

    For routers that do not set ``environ["wsgiorg.routing_args"]``: call it where
    the route is known (a Flask ``before_request`` with ``request.view_args``, a
    Django middleware's ``process_view`` with its ``view_kwargs``). Values are
    strings, lists of strings, or values already of the type a view asks for.

    :param mapping: Parameter names to values; replaces the current ones.
    :raises RuntimeError: no request is being handled.
    """
    environ = current_environ()
    positional = _routing_args(environ)[0]
    environ[ROUTING_ARGS_KEY] = (positional, dict(mapping))


@overload
def param(name: str) -> str: ...


@overload
def param(name: str, type_: type[T]) -> T: ...


def param(name: str, type_: type[Any] = str) -> Any:
    """The request parameter *name*, converted to *type_*.

    Looked for in the path parameters, then the form body (urlencoded or
    multipart), then the query string; the first place that has it wins. With
    several values, the first. ``param("avatar", FileStorage)`` gives an uploaded
    file.

    :param name: The parameter's name.
    :param type_: ``str`` (default), ``int``, ``float``, ``bool``, ``Decimal``,
        ``UUID``, ``date``, ``datetime``, an ``Enum``, ``FileStorage`` or a type
        given to :func:`register_converter`.
    :raises BadParam: missing (a blank value counts as missing for any type but
        ``str``), or cannot be converted: a ``400``.
    :raises TypeError: no converter for *type_* (a bug, so not a ``400``).
    :raises RuntimeError: no request is being handled.

    ::

        page = param("page", int)
    """
    values = _values(name, type_)
    if not values:
        raise BadParam(name)
    return _convert(name, values[0], type_)


@overload
def optional_param(name: str) -> str | None: ...


@overload
def optional_param(name: str, type_: type[T]) -> T | None: ...


def optional_param(name: str, type_: type[Any] = str) -> Any:
    """Like :func:`param`, but ``None`` when the parameter is missing.

    :param name: The parameter's name.
    :param type_: As for :func:`param`.
    :raises BadParam: present but cannot be converted: a ``400``.

    ::

        query = optional_param("q") or ""
    """
    values = _values(name, type_)
    return _convert(name, values[0], type_) if values else None


@overload
def params(name: str) -> list[str]: ...


@overload
def params(name: str, type_: type[T]) -> list[T]: ...


def params(name: str, type_: type[Any] = str) -> list[Any]:
    """Every value of the parameter *name*, converted; ``[]`` when missing.

    The values all come from the first place that has the name (path, then body,
    then query): a name in the body replaces the whole list of the query.

    :param name: The parameter's name.
    :param type_: As for :func:`param`.
    :raises BadParam: a value cannot be converted: a ``400``.

    ::

        ids = params("id", int)  # ?id=1&id=2 -> [1, 2]
    """
    return [_convert(name, value, type_) for value in _values(name, type_)]


def _values(name: str, type_: type[Any]) -> list[Any]:
    environ = current_environ()
    if isinstance(type_, type) and issubclass(type_, FileStorage):
        # A file input left empty still sends a part, with no file name.
        return [f for f in form_data(environ)[1].getlist(name) if f.filename]
    converter_for(type_)  # an unknown type is a bug, even when the value is missing
    named = _routing_args(environ)[1]
    if name in named:
        value = named[name]
        values = list(value) if isinstance(value, list | tuple) else [value]
    else:
        form = form_data(environ)[0]
        values = form.getlist(name) if name in form else _query(environ).getlist(name)
    if type_ is not str:
        values = [v for v in values if v != ""]
    return values


def _convert(name: str, value: Any, type_: type[T]) -> T:
    if isinstance(value, FileStorage):
        return value  # type: ignore[return-value]
    try:
        digits = limits_for(current_environ()).max_decimal_digits
        return convert(value, type_, max_decimal_digits=digits)
    except (ValueError, TypeError, ArithmeticError):
        raise BadParam(name, str(value), type_.__name__) from None


def _routing_args(environ: WSGIEnvironment) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
    args = environ.get(ROUTING_ARGS_KEY)
    if isinstance(args, tuple | list) and len(args) == 2:
        positional, named = args
        if isinstance(named, Mapping):
            return tuple(positional), named
    return (), {}


def _query(environ: WSGIEnvironment) -> MultiDict[str, str]:
    query: MultiDict[str, str] | None = environ.get(_QUERY_KEY)
    if query is None:
        # PEP 3333 gives the raw bytes as latin-1; bytes that are not UTF-8 stay
        # percent-encoded, as werkzeug does after unquoting, instead of failing.
        raw = environ.get("QUERY_STRING", "").encode("latin-1", "replace")
        text = raw.decode("utf-8", "werkzeug.url_quote")
        query = MultiDict(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))
        environ[_QUERY_KEY] = query
    return query
