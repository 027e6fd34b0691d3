"""The demo site: a plain WSGI app that counts your visits and remembers your name.

Run it with ``make demo`` (gunicorn, http://127.0.0.1:8000) or import ``app``.
"""

from __future__ import annotations

import html
import os
import secrets
from pathlib import Path

from werkzeug.wrappers import Request, Response

from wsgisession import SessionMiddleware, session

PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>wsgisession demo</title>
<h1>Hello, {name}!</h1>
<p>You have visited this page {visits} time{plural} in this session.</p>
<form method="post" action="/name">
  <label>Your name <input name="name" value="{value}" maxlength="100" autofocus></label>
  <button>Remember me</button>
</form>
<form method="post" action="/forget"><button>Forget me</button></form>
"""


def secret_key() -> str:
    """The key from WSGISESSION_SECRET_KEY, else the one gunicorn.conf.py generated."""
    key = os.environ.get("WSGISESSION_SECRET_KEY")
    if key:
        return key
    path = Path(__file__).with_name(".secret_key")
    if not path.exists():  # run without gunicorn.conf.py: a key for this process only
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


@Request.application  # type: ignore[arg-type]
def site(request: Request) -> Response:
    """The whole site: GET / shows the page, POST /name and /forget change the session."""
    if request.method == "POST" and request.path == "/name":
        name = request.form.get("name", "").strip()[:100]
        if name:
            session["name"] = name
        return Response(status=303, headers={"Location": "/"})
    if request.method == "POST" and request.path == "/forget":
        session.clear()
        return Response(status=303, headers={"Location": "/"})
    if request.path != "/":
        return Response("Not found\n", status=404, content_type="text/plain")
    session["visits"] = visits = session.get("visits", 0) + 1
    name = session.get("name", "")
    body = PAGE.format(
        name=html.escape(name or "stranger"),
        visits=visits,
        plural="" if visits == 1 else "s",
        value=html.escape(name, quote=True),
    )
    return Response(body, content_type="text/html; charset=utf-8")


app = SessionMiddleware(site, secret_key=secret_key())
