"""Answering a refusal (401, 403, 503 …) with the default body or the app's own page.

Every middleware that refuses a request (:class:`~wsgisession.Guard`,
:class:`~wsgisession.Auth`, :class:`~wsgisession.AuthRedirect`,
:class:`~wsgisession.CsrfMiddleware`, :class:`~wsgisession.SessionMiddleware`'s
``503``) takes the same ``error_page`` option: a callable given the refusal (a
werkzeug ``HTTPException`` such as :class:`~wsgisession.errors.AccessDenied`) and
the environ, returning the WSGI application (a werkzeug ``Response``, a Flask or
Django app) that answers instead of the one-line default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .context import bind, unbind
from .errors import ConfigurationError, _wants_json

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ErrorPage", "answer_refusal", "check_error_page", "refusal_response"]

#: ``error_page(refusal, environ) -> WSGI application``: the page sent for a refusal.
ErrorPage: TypeAlias = "Callable[[HTTPException, WSGIEnvironment], WSGIApplication]"

# Kept from the default answer when the app's page leaves them out: a client needs
# them whatever the body looks like (when to retry, which scheme, not to cache).
_KEPT_HEADERS = ("retry-after", "www-authenticate", "cache-control")


def check_error_page(error_page: object) -> ErrorPage | None:
    """*error_page* if it is ``None`` or callable.

    :raises ConfigurationError: anything else.
    """
    if error_page is not None and not callable(error_page):
        raise ConfigurationError(
            "error_page must be a callable taking (refusal, environ) and returning a WSGI"
            f" application such as a werkzeug Response, not {error_page!r}"
        )
    return error_page


def answer_refusal(
    refusal: HTTPException,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    error_page: ErrorPage | None,
) -> Iterable[bytes]:
    """Answer *refusal* with *error_page*, or with its own body.

    A client whose ``Accept`` prefers JSON always gets the documented JSON body: the
    page is for people. The page's status and body are the app's; ``Retry-After``,
    ``WWW-Authenticate`` and ``Cache-Control: no-store`` of the default answer are
    added when the page has none.
    """
    if error_page is None or _wants_json(environ):
        return refusal(environ, start_response)
    page = error_page(refusal, environ)
    kept = [
        (name, value)
        for name, value in refusal.get_headers(environ)
        if name.lower() in _KEPT_HEADERS
    ]
    if not any(name.lower() == "cache-control" for name, _ in kept):
        kept.append(("Cache-Control", "no-store"))

    def page_start_response(
        status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Any:
        present = {name.lower() for name, _ in headers}
        headers = list(headers) + [h for h in kept if h[0].lower() not in present]
        return start_response(status, headers, exc_info)

    return page(environ, page_start_response)


def refusal_response(
    refusal: HTTPException, environ: WSGIEnvironment, error_page: ErrorPage | None
) -> Response:
    """:func:`answer_refusal` as a response object, for a framework that needs one.

    Flask's ``save_session`` and Django's middleware meet a store outage after their
    framework built its response; this is the answer to send instead. The page runs
    with no current session, as it does in :class:`~wsgisession.SessionMiddleware`.
    """
    token = bind(None)
    try:
        return Response.from_app(partial(answer_refusal, refusal, error_page=error_page), environ)
    finally:
        unbind(token)
