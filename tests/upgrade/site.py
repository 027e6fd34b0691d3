"""The site behind the upgrade fixtures: the pages that wrote them, and those that read them.

``make_fixtures.py`` drives the *write* pages with werkzeug's test ``Client`` to
make a fixture set; ``test_read_old_versions.py`` drives the *read* pages, on every
fixture set, through the public API only. Both are plain WSGI apps wrapped in a real
``SessionMiddleware`` (the Flask and Django sites in their integrations).

What a read page answers is a JSON document in :func:`plain` form, a type-exact
encoding owned by these tests (not wsgisession's serializer, which is what is under
test): a fixture's expected values are kept in that form in its ``manifest.json``.

Keep :class:`Prefs` where it is, under its name: a :class:`~wsgisession.SessionVar`
keys its value by module, class and attribute, and the fixtures hold that key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from markupsafe import Markup
from werkzeug.wrappers import Request, Response

from wsgisession import (
    CsrfMiddleware,
    FlashLevel,
    SessionVar,
    csrf_token,
    current_user,
    flash,
    get_signed_cookie,
    login,
    peek_flashed_messages,
    revoke_all,
    session,
    sessions_of,
    set_signed_cookie,
)

#: The prefix of wsgisession's own session keys (login, flash, CSRF, devices …):
#: read through their own functions, not compared as data.
OWN_KEYS = "_wsgisession."

#: The name of the separate signed cookie (set_signed_cookie).
SIGNED_COOKIE = "prefs"


class Prefs:
    """A typed session variable, as an app declares one."""

    theme = SessionVar(str)


# -- a type-exact JSON form of session values, owned by the tests ------------------

_TAGGED: dict[type[Any], tuple[str, Callable[[Any], Any]]] = {
    bytes: ("bytes", lambda v: base64.b64encode(v).decode("ascii")),
    datetime: ("datetime", lambda v: v.isoformat()),
    date: ("date", lambda v: v.isoformat()),
    UUID: ("uuid", str),
    Decimal: ("decimal", str),
    Markup: ("markup", str),
}


def plain(value: Any) -> Any:
    """*value* as JSON that tells every type apart (a ``tuple`` from a ``list``,
    ``1`` from ``1.0`` and ``True``, a naive ``datetime`` from an aware one).

    Dicts and sets are sorted, so :func:`canonical` text compares them by content.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (list, tuple):
        return {kind.__name__: [plain(item) for item in value]}
    if kind in (set, frozenset):
        return {kind.__name__: sorted((plain(item) for item in value), key=canonical)}
    if kind is dict:
        items = [[plain(k), plain(v)] for k, v in value.items()]
        return {"dict": sorted(items, key=lambda item: canonical(item[0]))}
    if kind in _TAGGED:
        tag, encode = _TAGGED[kind]
        return {tag: encode(value)}
    raise TypeError(f"no plain form for {kind.__module__}.{kind.__qualname__}")


def canonical(document: Any) -> str:
    """One text per :func:`plain` document, for exact comparison."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _json(document: Any) -> Response:
    return Response(canonical(document), content_type="application/json")


def user_data(mapping: Any) -> dict[str, Any]:
    """The app's own keys of a session (wsgisession's own are read through their API)."""
    return {key: value for key, value in mapping.items() if not key.startswith(OWN_KEYS)}


def who() -> Any:
    """The logged-in user as :func:`plain` sees it, or ``None``."""
    user = current_user()
    if user is None:
        return None
    return plain(
        {
            "id": user.user_id,
            "roles": sorted(user.roles),
            "extra": dict(user.extra),
            "logged_in_at": user.logged_in_at,
        }
    )


def devices() -> Any:
    """The logged-in user's sessions as :func:`~wsgisession.sessions_of` lists them."""
    return plain(
        [
            {
                "handle": d.handle,
                "logged_in": d.logged_in,
                "last_seen": d.last_seen,
                "user_agent": d.user_agent,
                "ip": d.ip,
                "current": d.current,
            }
            for d in sessions_of()
        ]
    )


# -- the pages ----------------------------------------------------------------------


def read_app(tracked: bool) -> Any:
    """The read pages, behind ``CsrfMiddleware`` (wrap it in a ``SessionMiddleware``).

    :param tracked: Device tracking is on, so ``/devices`` may list.
    """

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        path = request.path
        if path == "/data":
            return _json(plain(user_data(session)))
        if path == "/user":
            return _json(who())
        if path == "/flashes":
            return _json([[int(m.level), m.message] for m in peek_flashed_messages()])
        if path == "/var":
            return _json(Prefs.theme.get(None))
        if path == "/csrf":
            return _json("accepted")  # reached only past CsrfMiddleware's check
        if path == "/devices" and tracked:
            return _json(devices())
        if path == "/signed":
            return _json(plain(get_signed_cookie(request.environ, SIGNED_COOKIE)))
        return Response("not found", status=404)

    return CsrfMiddleware(app)


def write_app(data: dict[str, Any], notes: str, signed: Any) -> Any:
    """The pages that wrote the fixtures (wrap it in a ``SessionMiddleware``).

    :param data: The values ``/everything`` stores, one session key each.
    :param notes: The long text ``/remembered`` stores (its cookie is compressed).
    :param signed: The value ``/signed`` puts in its own signed cookie.
    """

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        path = request.path
        if path == "/everything":
            login("ada", roles=["admin", "editor"], name="Ada Lovelace")
            session.update(data)
            Prefs.theme.set("dark")
            flash("Saved.", FlashLevel.SUCCESS)
            flash("Ünïcödé ⚠ <b>not markup</b>", FlashLevel.WARNING)
            return _json({"csrf_token": csrf_token()})
        if path == "/remembered":
            login("grace", remember=True)
            session["notes"] = notes
            return _json(None)
        if path == "/login":
            login(request.args["user"])
            return _json(None)
        if path == "/revoke-all":
            return _json(revoke_all(request.args["user"]))
        if path == "/signed":
            response = _json(None)
            set_signed_cookie(response.headers, SIGNED_COOKIE, signed, max_age=400 * 86400)
            return response
        return Response("not found", status=404)

    return app


def flask_site(secret_key: str, store: Any, data: dict[str, Any] | None = None) -> Any:
    """A Flask app on ``init_app``: ``/permanent`` and ``/browser`` write *data*, ``/data`` reads.

    :param secret_key: Flask's ``SECRET_KEY``, which signs the session.
    :param store: The session store.
    :param data: What the write pages store.
    """
    import flask

    from wsgisession.contrib.flask import init_app

    app = flask.Flask(__name__)
    app.secret_key = secret_key
    init_app(app, store=store)

    @app.get("/permanent")
    def permanent() -> str:
        flask.session.permanent = True
        flask.session.update(data or {})
        return "ok"

    @app.get("/browser")
    def browser() -> str:
        flask.session.update(data or {})
        return "ok"

    @app.get("/data")
    def read() -> Response:
        found = user_data(flask.session)
        return _json({"data": plain(found), "permanent": flask.session.permanent})

    return app


def django_views(data: dict[str, Any] | None = None) -> list[Any]:
    """Django views: ``/write`` stores *data* for an hour (``set_expiry``), ``/data`` reads."""
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def write(request: HttpRequest) -> HttpResponse:
        request.session.update(data or {})
        request.session.set_expiry(3600)
        return HttpResponse("ok")

    def read(request: HttpRequest) -> HttpResponse:
        found = user_data(dict(request.session.items()))
        document = {"data": plain(found), "expiry_age": request.session.get_expiry_age()}
        return HttpResponse(canonical(document), content_type="application/json")

    return [path("write", write), path("data", read)]
