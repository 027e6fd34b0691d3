"""A counter app for the command-line tests: ``app`` is bare, ``wrapped`` is not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

from wsgisession import LRUStore, SessionMiddleware, session

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Count this session's requests; needs a SessionMiddleware around it."""
    session["count"] = session.get("count", 0) + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(session["count"]).encode()]


#: Already wrapped (inside a ProxyFix, as in production): `serve` must not wrap it again.
wrapped = ProxyFix(
    SessionMiddleware(app, secret_key="counter-app-key-" + "c" * 32, store=LRUStore())
)

not_an_app = 42


def create_app() -> ProxyFix:
    """An app factory, as in ``wsgisession serve 'tests.counter_app:create_app()'``."""
    return wrapped


def broken_factory() -> ProxyFix:
    """A factory that fails, as one does when its configuration is missing."""
    raise KeyError("DATABASE_URL")
