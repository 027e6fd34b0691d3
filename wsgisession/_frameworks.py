"""Answers for frameworks that do not speak WSGI inside: werkzeug responses as Django's.

Django turns any exception but its own into a 500 before it reaches a WSGI middleware,
so a werkzeug ``HTTPException`` raised in a Django view (a refusal from a guard, a
``BadParam``) must become a Django response first. No Django import here: the caller
passes the ``django.http`` module it has (core modules never import a framework).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.exceptions import HTTPException
    from werkzeug.wrappers import Response

__all__ = ["add_django_cookie", "as_django_response", "django_response_for"]


def as_django_response(http: ModuleType, response: Response) -> Any:
    """*response* as a ``django.http.HttpResponse``: status, body and headers.

    :param http: The ``django.http`` module.
    :param response: A werkzeug response (an ``HTTPException``'s ``get_response()``).
    """
    django_response = http.HttpResponse(
        response.get_data(),
        status=response.status_code,
        content_type=response.headers.get("Content-Type"),
    )
    for name, value in response.headers.items():
        lowered = name.lower()
        if lowered == "set-cookie":
            add_django_cookie(django_response, value)
        elif lowered not in ("content-type", "content-length"):
            django_response[name] = value
    return django_response


def add_django_cookie(django_response: Any, header: str) -> None:
    """Add the ``Set-Cookie`` value *header* to a Django response, byte for byte.

    A Django response holds one header per name, so only the first ``Set-Cookie``
    goes in as a header; any other is parsed into its cookie jar, which may quote an
    unusual value differently.
    """
    if "Set-Cookie" in django_response.headers:
        django_response.cookies.load(header)
    else:
        django_response.headers["Set-Cookie"] = header


def django_response_for(args: tuple[Any, ...], exc: HTTPException, environ: WSGIEnvironment) -> Any:
    """*exc* as a Django response when the view called with *args* is a Django view.

    ``None`` for any other view (the caller raises *exc* then). ``django.http`` is
    looked up, never imported: a Django request means it is loaded.

    :param args: The view's positional arguments; a Django view gets the request
        first (a method view second).
    :param exc: The refusal or error to answer with.
    :param environ: The request's WSGI environ, for the error's rendering.
    """
    http = sys.modules.get("django.http")
    if http is None or not any(isinstance(arg, http.HttpRequest) for arg in args[:2]):
        return None
    return as_django_response(http, exc.get_response(environ))
