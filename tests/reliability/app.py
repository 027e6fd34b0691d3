"""A tiny app for the load and fault tests, served by gunicorn.

The store comes from ``RELIABILITY_STORE`` (a store URL), the key from
``WSGISESSION_SECRET_KEY``. Routes (all GET, bodies are JSON or plain text):

- ``/health``: never touches the session;
- ``/login``: ``session["user"] = "ann"``;
- ``/inc?key=k``: increments ``session[k]``, answers the new value;
- ``/set?key=k&value=v``: ``session[k] = v``;
- ``/get``: the whole session as JSON;
- ``/work?key=k&delay=s``: reads the user, sleeps *s* seconds (a slow request),
  then increments ``session[k]``; answers the user it saw;
- ``/logout``: ``session.invalidate()``.
"""

from __future__ import annotations

import json
import os
import time

from werkzeug.wrappers import Request, Response

from wsgisession import SessionMiddleware, session, store_from_url


@Request.application  # type: ignore[arg-type]
def routes(request: Request) -> Response:
    path, args = request.path, request.args
    if path == "/health":
        return Response("ok")
    if path == "/login":
        session["user"] = "ann"
        return Response("ok")
    if path == "/inc":
        key = args["key"]
        session[key] = session.get(key, 0) + 1
        return Response(str(session[key]))
    if path == "/set":
        session[args["key"]] = args["value"]
        return Response("ok")
    if path == "/get":
        return Response(json.dumps(dict(session)), content_type="application/json")
    if path == "/work":
        user = session.get("user")
        time.sleep(float(args.get("delay", "0.02")))
        key = args["key"]
        session[key] = session.get(key, 0) + 1
        return Response(repr(user))
    if path == "/logout":
        session.invalidate()
        return Response("ok")
    return Response("not found", status=404)


app = SessionMiddleware(
    routes,
    secret_key=os.environ["WSGISESSION_SECRET_KEY"],
    store=store_from_url(os.environ["RELIABILITY_STORE"]),
    # "false": start whatever the store's state, to see what requests then get.
    check_store=False if os.environ.get("RELIABILITY_CHECK_STORE") == "false" else None,
)
