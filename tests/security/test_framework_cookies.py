"""The session cookie inside Django and Flask is read exactly as the core reads it.

Django parses ``Cookie`` with a parser of its own, which strips characters from
names that werkzeug's keeps; a non-UTF-8 byte in the header must not turn a page
into a 500 on any integration.
"""

from __future__ import annotations

from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from wsgisession import LRUStore
from wsgisession.contrib.flask import init_app

from ..conftest import SECRET
from ..djangoapp import django_app

HOST = "__Host-session"

#: Characters that Django's cookie parser strips from a name and werkzeug's keeps,
#: as the UTF-8 a browser sends, then decoded as WSGI's latin-1 strings.
LOOK_ALIKE_PREFIXES = [
    pytest.param("\u00a0", id="nbsp"),
    pytest.param("\u2000", id="en-quad"),
    pytest.param("\u3000", id="ideographic-space"),
    pytest.param("\u0085", id="next-line"),
    pytest.param("\x0b", id="vertical-tab"),
    pytest.param("\x1c", id="file-separator"),
]


def wsgi(header: str) -> str:
    """*header* as the WSGI server hands it to the app: UTF-8 bytes as latin-1."""
    return header.encode("utf-8").decode("latin-1")


def django_views() -> list[Any]:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    def who(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(request.session.get("user")))

    def become(request: HttpRequest) -> HttpResponse:
        request.session["user"] = request.GET["user"]
        return HttpResponse("ok")

    def plain(request: HttpRequest) -> HttpResponse:
        return HttpResponse("a page that never touches the session")

    return [path("who", who), path("become", become), path("plain", plain)]


@pytest.fixture(scope="module")
def django_site() -> Any:
    return django_app(
        django_views(),
        ["wsgisession.contrib.django.SessionMiddleware"],
        WSGISESSION={"store": LRUStore(), "secret_key": SECRET},
        SESSION_COOKIE_NAME=HOST,
    )


def session_of(app: Any, user: str) -> str:
    """A genuine session cookie of *user*'s, from the site itself."""
    client = Client(app)
    assert client.get(f"/become?user={user}").text == "ok"
    cookie = client.get_cookie(HOST, domain="localhost")
    assert cookie is not None
    return cookie.value


def who(app: Any, header: str) -> str:
    client = Client(app, use_cookies=False)
    response = client.get("/who", environ_overrides={"HTTP_COOKIE": wsgi(header)})
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize("prefix", LOOK_ALIKE_PREFIXES)
def test_django_does_not_read_the_session_from_a_look_alike_cookie_name(
    django_site: Any, prefix: str
) -> None:
    mallory = session_of(django_site, "mallory")
    assert who(django_site, f"{HOST}={mallory}") == "mallory", "the control: the real name"
    assert who(django_site, f"{prefix}{HOST}={mallory}; theme=dark") == "None"


@pytest.mark.parametrize("prefix", LOOK_ALIKE_PREFIXES)
def test_django_never_swaps_a_victim_into_a_look_alike_cookies_session(
    django_site: Any, prefix: str
) -> None:
    victim, mallory = session_of(django_site, "victim"), session_of(django_site, "mallory")
    answer = who(django_site, f"{HOST}={victim}; {prefix}{HOST}={mallory}")
    assert answer != "mallory"
    answer = who(django_site, f"{prefix}{HOST}={mallory}; {HOST}={victim}")
    assert answer != "mallory"


def test_a_non_utf8_cookie_is_no_500_in_django(django_site: Any) -> None:
    client = Client(django_site, use_cookies=False)
    for path in ("/plain", "/who"):
        response = client.get(path, headers={"Cookie": "theme=caf\xe9"})
        assert response.status_code == 200, response.text
    victim = session_of(django_site, "victim")
    # A broken neighbour does not cost the user their session.
    assert who(django_site, f"theme=caf\xe9; {HOST}={victim}") == "victim"


def flask_site() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    init_app(app, store=LRUStore())

    @app.get("/who")
    def who() -> str:
        return str(flask.session.get("user"))

    @app.get("/plain")
    def plain() -> str:
        return "a page that never touches the session"

    return app


def test_a_non_utf8_cookie_is_no_500_in_flask() -> None:
    client = Client(flask_site(), use_cookies=False)
    for path in ("/plain", "/who"):
        assert client.get(path, headers={"Cookie": "theme=caf\xe9"}).status_code == 200


#: Pieces of hostile Cookie headers: raw bytes (as latin-1), separators, our name.
PIECES = st.one_of(
    st.binary(max_size=12).map(lambda raw: raw.decode("latin-1")),
    st.sampled_from([HOST, "=", "; ", ";", '"', "\\", "\u00a0", "\xe9", "\xc3", " "]),
    st.sampled_from(["\u00a0", "\u3000", "\x85"]).map(lambda s: wsgi(s) + HOST + "="),
)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(PIECES, max_size=12))
@example(parts=["theme=caf\xe9"])
@example(parts=[f"{HOST}=\xff\xfe"])
def test_no_cookie_header_is_a_500_in_django(django_site: Any, parts: list[str]) -> None:
    header = "".join(parts)
    client = Client(django_site, use_cookies=False)
    for path in ("/plain", "/who"):
        # As the server hands it over: any byte but a line break is possible.
        response = client.get(path, environ_overrides={"HTTP_COOKIE": header})
        assert response.status_code == 200, (header, response.text[:200])
        if path == "/who":
            assert response.text == "None"
