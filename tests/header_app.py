"""An app for the gunicorn test of header sessions (``tests/test_header_sessions.py``).

Configured by ``WSGISESSION_*`` variables (secret key, store, ``WSGISESSION_HEADER``,
device tracking), with :class:`~wsgisession.CsrfMiddleware` in front, so one server
has API clients on the header and browsers on the CSRF-checked cookie.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response

from wsgisession import (
    CsrfMiddleware,
    csrf_token,
    current_user,
    from_config,
    login,
    revoke,
    sessions_of,
)


@Request.application
def _views(request: Request) -> Response:
    if request.path == "/login" and request.method == "POST":
        login(request.form["user"])
        return Response(f"welcome {request.form['user']}")
    if request.path == "/token":
        return Response(csrf_token())
    user = current_user()
    if user is None:
        return Response("anonymous", status=401)
    if request.path == "/devices":
        listed = [
            {"handle": d.handle, "user_agent": d.user_agent, "current": d.current}
            for d in sessions_of()
        ]
        return Response(json.dumps(listed), content_type="application/json")
    if request.path == "/revoke" and request.method == "POST":
        return Response(str(revoke(request.form["handle"])))
    return Response(str(user.user_id))


app = from_config(CsrfMiddleware(_views))
