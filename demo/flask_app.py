"""The demo site on Flask: the views of :mod:`demo.wsgi`, routed by Flask.

``init_app`` puts the session under Flask, so ``flask.session`` here is the same
session the shared views use through ``wsgisession.session``; the guards and the
CSRF check wrap ``app.wsgi_app`` inside it. Run it with ``make demo-flask``.
"""

from __future__ import annotations

from collections.abc import Callable

import flask
from werkzeug.wrappers import Request, Response

from demo.wsgi import ROUTES, protect, session_options
from wsgisession.contrib.flask import init_app


def _flask_view(view: Callable[[Request], Response]) -> Callable[[], Response]:
    def handle() -> Response:
        request: Request = flask.request._get_current_object()  # type: ignore[attr-defined]
        return view(request)

    handle.__name__ = view.__name__
    return handle


def create_app() -> flask.Flask:
    """The Flask app: one rule per path of the shared routes, then the session."""
    app = flask.Flask(__name__)
    methods: dict[str, list[str]] = {}
    views: dict[str, Callable[[Request], Response]] = {}
    for (method, path), view in ROUTES.items():
        methods.setdefault(path, []).append(method)
        views[path] = view
    for path, view in views.items():
        app.add_url_rule(path, view.__name__, _flask_view(view), methods=methods[path])
    app.wsgi_app = protect(app.wsgi_app)  # type: ignore[method-assign]
    init_app(app, **session_options())
    return app


app = create_app()
