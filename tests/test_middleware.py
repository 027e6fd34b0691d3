"""The session lifecycle through SessionMiddleware, for every store.

Each test drives a real WSGI app with werkzeug's test Client; the ``store`` fixture
runs it once per store (see ``tests/conftest.py``).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.http import parse_cookie
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, EnvironBuilder, TestResponse
from werkzeug.wrappers import Request, Response

from wsgisession import ServerSessionStore, SessionMiddleware, get_session, session
from wsgisession.errors import ConfigurationError

from .conftest import SECRET, Clock, session_client, set_cookies, text_app


def cookie_value(response: TestResponse, name: str = "session") -> str:
    (header,) = set_cookies(response)
    return parse_cookie(header.split(";", 1)[0])[name]


def counter(request: Request) -> str:
    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


def reader(request: Request) -> str:
    return repr(session.get("n"))


def routed(**views: Any) -> Any:
    """A view dispatching on the first path segment to views[segment]."""

    def view(request: Request) -> Any:
        return views[request.path.strip("/") or "index"](request)

    return view


# -- laziness ---------------------------------------------------------------


def test_untouched_session_sends_no_cookie_and_no_vary(store: Any) -> None:
    client = session_client(routed(set=counter, other=lambda r: "hi"), store=store)
    client.get("/set")
    response = client.get("/other")
    assert response.text == "hi"
    assert set_cookies(response) == []
    assert "Vary" not in response.headers


def test_untouched_session_never_parses_the_cookie(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = session_client(routed(set=counter, other=lambda r: "hi"), store=store)
    client.get("/set")
    calls = []
    import wsgisession._backends.base as backends
    import wsgisession._cookie_header as cookies

    # The cookie is read through request_cookie_values (a fast path for plain
    # headers, werkzeug's parse_cookie otherwise): neither may run untouched.
    real_parse = cookies.parse_cookie
    monkeypatch.setattr(
        cookies, "parse_cookie", lambda *a, **k: calls.append(a) or real_parse(*a, **k)
    )
    real_read = backends.request_cookie_values
    monkeypatch.setattr(
        backends, "request_cookie_values", lambda *a, **k: calls.append(a) or real_read(*a, **k)
    )
    client.get("/other")
    assert calls == []
    client.get("/set")
    assert len(calls) == 1


def test_reading_adds_vary_cookie_and_sends_no_cookie(store: Any) -> None:
    client = session_client(routed(set=counter, read=reader), store=store)
    client.get("/set")
    response = client.get("/read")
    assert response.text == "1"
    assert response.headers["Vary"] == "Cookie"
    assert set_cookies(response) == []


def test_vary_is_merged_with_the_apps_own(store: Any) -> None:
    def view(request: Request) -> Response:
        session["x"] = 1
        return Response("ok", headers={"Vary": "Accept-Encoding"})

    response = session_client(view, store=store).get("/")
    assert response.headers.getlist("Vary") == ["Accept-Encoding, Cookie"]


# -- writing ------------------------------------------------------------------


def test_change_sets_exactly_one_cookie_with_safe_attributes(store: Any) -> None:
    response = session_client(counter, store=store).get("/")
    (header,) = set_cookies(response)
    attributes = [part.strip() for part in header.split(";")[1:]]
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert "Max-Age=1209600" in attributes
    assert "Secure" not in attributes
    assert response.headers["Vary"] == "Cookie"


def test_cookie_is_secure_on_https(store: Any) -> None:
    response = session_client(counter, store=store).get("/", base_url="https://localhost/")
    assert "Secure" in set_cookies(response)[0].split("; ")


def test_session_survives_across_requests(store: Any) -> None:
    client = session_client(counter, store=store)
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_values_keep_their_types(store: Any) -> None:
    import datetime
    import decimal
    import uuid

    values = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "id": uuid.UUID(int=7),
        "raw": b"\x00\xff",
        "pair": (1, 2),
        "tags": {"a", "b"},
        "price": decimal.Decimal("9.99"),
        "nested": {"list": [1, {"x": None}]},
    }

    def view(request: Request) -> str:
        if request.path == "/set":
            session.update(values)
            return "set"
        return "same" if dict(session) == values else repr(dict(session))

    client = session_client(view, store=store)
    client.get("/set")
    assert client.get("/check").text == "same"


def test_reading_only_does_not_reissue_the_cookie(store: Any) -> None:
    client = session_client(routed(set=counter, read=reader), store=store)
    client.get("/set")
    for _ in range(3):
        assert set_cookies(client.get("/read")) == []


def test_setting_a_key_to_its_current_value_is_not_a_change(store: Any) -> None:
    def view(request: Request) -> str:
        session["user"] = "alice"
        return str(session.modified)

    client = session_client(view, store=store)
    assert client.get("/").text == "True"
    response = client.get("/")
    assert response.text == "False"
    assert set_cookies(response) == []


def test_nested_mutation_is_saved_without_a_flag(store: Any) -> None:
    def add(request: Request) -> str:
        session.setdefault("cart", []).append(request.args["item"])
        session.setdefault("profile", {}).setdefault("seen", []).append(1)
        return "ok"

    client = session_client(routed(add=add, cart=lambda r: repr(session.get("cart"))), store=store)
    client.get("/add?item=apple")
    client.get("/add?item=pear")
    assert client.get("/cart").text == "['apple', 'pear']"


def test_mutable_value_read_but_not_changed_sends_no_cookie(store: Any) -> None:
    def view(request: Request) -> str:
        if request.path == "/set":
            session["cart"] = ["apple"]
        return repr(session["cart"])

    client = session_client(view, store=store)
    client.get("/set")
    response = client.get("/read")
    assert response.text == "['apple']"
    assert set_cookies(response) == []


def test_refresh_interval_renews_a_read_only_session(store: Any, clock: Clock) -> None:
    client = session_client(
        routed(set=counter, read=reader), store=store, max_age=1000, refresh_interval=100
    )
    client.get("/set")
    clock.advance(50)
    assert set_cookies(client.get("/read")) == []
    clock.advance(60)
    assert len(set_cookies(client.get("/read"))) == 1
    clock.advance(10)
    assert set_cookies(client.get("/read")) == []


def test_default_refresh_interval_is_a_tenth_of_max_age(store: Any, clock: Clock) -> None:
    client = session_client(routed(set=counter, read=reader), store=store, max_age=1000)
    client.get("/set")
    clock.advance(99)
    assert set_cookies(client.get("/read")) == []
    clock.advance(2)
    assert len(set_cookies(client.get("/read"))) == 1


def test_renewal_keeps_an_active_session_alive_past_max_age(store: Any, clock: Clock) -> None:
    client = session_client(routed(set=counter, read=reader), store=store, max_age=100)
    client.get("/set")
    for _ in range(5):
        clock.advance(60)
        assert client.get("/read").text == "1"


# -- expiry -------------------------------------------------------------------


def test_idle_session_expires_after_max_age(store: Any, clock: Clock) -> None:
    client = session_client(routed(set=counter, read=reader), store=store, max_age=100)
    client.get("/set")
    clock.advance(101)
    assert client.get("/read").text == "None"


def test_active_session_expires_at_absolute_max_age(store: Any, clock: Clock) -> None:
    client = session_client(counter, store=store, max_age=100, absolute_max_age=250)
    assert client.get("/").text == "1"
    for expected in ["2", "3", "4"]:
        clock.advance(60)
        assert client.get("/").text == expected
    clock.advance(80)  # 260 s after creation
    assert client.get("/").text == "1"


def test_cookie_max_age_is_cut_short_by_absolute_expiry(store: Any, clock: Clock) -> None:
    client = session_client(counter, store=store, max_age=100, absolute_max_age=250)
    for _ in range(3):
        client.get("/")
        clock.advance(60)
    # 180 s after creation: 70 s of the 250 are left, less than max_age.
    assert "Max-Age=70" in set_cookies(client.get("/"))[0]


def test_browser_session_cookie_has_no_max_age(store: Any) -> None:
    (header,) = set_cookies(session_client(counter, store=store, max_age=None).get("/"))
    assert "Max-Age" not in header
    assert "Expires" not in header


# -- clear, regenerate, invalidate --------------------------------------------


@pytest.mark.parametrize("https", [False, True])
def test_clear_deletes_the_cookie_with_the_attributes_it_was_set_with(
    store: Any, https: bool
) -> None:
    client = session_client(
        routed(set=counter, clear=lambda r: session.clear()),
        store=store,
        path="/",
        domain="example.com",
        samesite="Strict",
    )
    base = ("https" if https else "http") + "://www.example.com/"
    (set_header,) = set_cookies(client.get("/set", base_url=base))
    (delete_header,) = set_cookies(client.get("/clear", base_url=base))
    attrs = {part.split("=")[0] for part in set_header.split("; ")[1:]} - {"Max-Age", "Expires"}
    for attribute in attrs:
        assert attribute in delete_header
    assert "Max-Age=0" in delete_header
    assert "Domain=example.com" in delete_header
    assert "SameSite=Strict" in delete_header
    assert ("Secure" in delete_header.split("; ")) is https
    assert client.get_cookie("session", domain="example.com") is None


def test_clear_then_set_starts_a_new_session(store: Any) -> None:
    def login(request: Request) -> str:
        session.clear()
        session["user"] = "alice"
        return "ok"

    client = session_client(routed(set=counter, login=login), store=store)
    before = cookie_value(client.get("/set"))
    after = cookie_value(client.get("/login"))
    assert after != before
    # A server-side session behind the old cookie is gone; a cookie session cannot
    # be revoked, which is why the README sends you to a server store for logout.
    replay = Client(client.application, use_cookies=False)
    check = replay.get("/set", headers={"Cookie": f"session={before}"})
    assert check.text == ("1" if isinstance(store, ServerSessionStore) else "2")


def test_regenerate_keeps_data_under_a_fresh_cookie(store: Any) -> None:
    client = session_client(
        routed(set=counter, regen=lambda r: session.regenerate(), read=reader), store=store
    )
    first = cookie_value(client.get("/set"))
    second = cookie_value(client.get("/regen"))
    if isinstance(store, ServerSessionStore):
        assert second != first  # a new id; the old one is worthless
        replay = Client(client.application, use_cookies=False)
        assert replay.get("/read", headers={"Cookie": f"session={first}"}).text == "None"
    assert client.get("/read").text == "1"


def test_invalidate_empties_the_session_and_deletes_the_cookie(store: Any) -> None:
    def logout(request: Request) -> str:
        session.invalidate()
        return str(len(session))

    client = session_client(routed(set=counter, logout=logout, read=reader), store=store)
    client.get("/set")
    response = client.get("/logout")
    assert response.text == "0"
    assert "Max-Age=0" in set_cookies(response)[0]
    assert client.get("/read").text == "None"


def test_emptying_a_session_by_deleting_keys_deletes_the_cookie(store: Any) -> None:
    def drop(request: Request) -> str:
        del session["n"]
        return "ok"

    client = session_client(routed(set=counter, drop=drop), store=store)
    client.get("/set")
    assert "Max-Age=0" in set_cookies(client.get("/drop"))[0]


def test_a_session_that_stays_empty_sets_no_cookie(store: Any) -> None:
    def view(request: Request) -> str:
        session["x"] = 1
        del session["x"]
        return "ok"

    assert set_cookies(session_client(view, store=store).get("/")) == []


# -- streaming, context, threads ------------------------------------------------


def test_session_works_inside_a_streamed_body(store: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"count="
        yield str(session["n"]).encode()

    client = Client(SessionMiddleware(app, secret_key=SECRET, store=store))
    assert client.get("/").text == "count=1"
    assert client.get("/").text == "count=2"


def test_proxy_is_unbound_after_close(store: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield str(session.get("n")).encode()

    wrapped = SessionMiddleware(app, secret_key=SECRET, store=store)
    response = Client(wrapped).get("/")
    assert response.text == "None"
    response.close()
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        session.get("n")


def test_lint_middleware_finds_no_wsgi_violation(store: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    linted = LintMiddleware(SessionMiddleware(LintMiddleware(app), secret_key=SECRET, store=store))
    response = Client(linted).get("/")
    assert response.text == "ok"
    assert len(set_cookies(response)) == 1


def test_environ_key_and_get_session_are_the_same_session(store: Any) -> None:
    def view(request: Request) -> str:
        same = request.environ["wsgisession.session"] is get_session(request.environ)
        return str(same and get_session() is request.environ["wsgisession.session"])

    assert session_client(view, store=store).get("/").text == "True"


def test_concurrent_requests_never_see_each_others_session(store: Any) -> None:
    barrier = threading.Barrier(8)

    def view(request: Request) -> str:
        session["me"] = request.args["me"]
        barrier.wait(timeout=10)  # every thread has set its value before any reads
        return str(session["me"])

    app = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    results: dict[str, str] = {}

    def run(me: str) -> None:
        results[me] = Client(app).get(f"/?me={me}").text

    threads = [threading.Thread(target=run, args=(str(i),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {str(i): str(i) for i in range(8)}


def test_http_exception_escaping_a_plain_app_is_rendered_with_the_session_saved(
    store: Any,
) -> None:
    from werkzeug.exceptions import NotFound

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session["seen"] = True
        raise NotFound()

    response = Client(SessionMiddleware(app, secret_key=SECRET, store=store)).get("/")
    assert response.status_code == 404
    assert len(set_cookies(response)) == 1


def test_an_app_error_propagates_and_unbinds(store: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session["x"] = 1
        raise KeyError("boom")

    with pytest.raises(KeyError):
        Client(SessionMiddleware(app, secret_key=SECRET, store=store)).get("/")
    with pytest.raises(RuntimeError):
        session.get("x")


# -- configuration --------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", b""])
def test_missing_secret_key_fails_at_startup_saying_how_to_make_one(key: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"secrets\.token_urlsafe"):
        SessionMiddleware(text_app(reader), secret_key=key)


def test_short_secret_key_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    SessionMiddleware(text_app(reader), secret_key="short")
    assert "use at least 32 random bytes" in caplog.text


def test_the_readme_placeholder_key_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # The README's example key is long enough, but it is a phrase anyone can read.
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    placeholder = re.search(r'secret_key\s*=\s*"([^"]+)"', readme)
    assert placeholder
    SessionMiddleware(text_app(reader), secret_key=placeholder[1])
    assert "looks written by hand" in caplog.text
    caplog.clear()
    SessionMiddleware(text_app(reader), secret_key=secrets.token_urlsafe(32))
    assert caplog.text == ""


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"cookie_name": "bad name"}, id="space-in-name"),
        pytest.param({"cookie_name": "a;b"}, id="semicolon-in-name"),
        pytest.param({"cookie_name": "a=b"}, id="equals-in-name"),
        pytest.param({"cookie_name": "a\x01"}, id="control-char-in-name"),
        pytest.param({"cookie_name": "__Host-s", "domain": "example.com"}, id="host-with-domain"),
        pytest.param({"cookie_name": "__Host-s", "path": "/app"}, id="host-with-path"),
        pytest.param({"samesite": "None", "secure": False}, id="samesite-none-insecure"),
        pytest.param({"samesite": "Sometimes"}, id="unknown-samesite"),
        pytest.param({"max_age": 0}, id="zero-max-age"),
        pytest.param({"max_age": -5}, id="negative-max-age"),
        pytest.param({"absolute_max_age": "1d"}, id="string-absolute-max-age"),
        pytest.param({"store": "redis://localhost"}, id="store-is-a-string"),
    ],
)
def test_bad_options_fail_at_startup(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SessionMiddleware(text_app(reader), secret_key=SECRET, **options)


def test_host_prefixed_cookie_is_always_secure(store: Any) -> None:
    client = session_client(counter, store=store, cookie_name="__Host-session")
    (header,) = set_cookies(client.get("/", base_url="https://localhost/"))
    assert header.startswith("__Host-session=")
    assert "Secure" in header.split("; ")
    assert "Path=/" in header.split("; ")
    assert "Domain" not in header


def test_two_middlewares_with_different_cookie_names_keep_separate_sessions(
    store: Any,
) -> None:
    def view(request: Request) -> str:
        session["where"] = "inner"
        return "ok"

    inner = SessionMiddleware(text_app(view), secret_key=SECRET, cookie_name="a", store=store)
    outer_client = Client(SessionMiddleware(inner, secret_key=SECRET, cookie_name="b"))
    response = outer_client.get("/")
    names = sorted(h.split("=", 1)[0] for h in set_cookies(response))
    assert names == ["a"]


def test_app_returning_a_list_with_untouched_or_read_session_answers_normally(
    store: Any,
) -> None:
    # A plain WSGI app that returns a list takes the middleware's short path (no
    # ClosingIterator): untouched and read-only sessions must both finish there.
    def plain(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/set":
            environ["wsgisession.session"]["n"] = 1
        elif path == "/read":
            environ["wsgisession.session"].get("n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = Client(SessionMiddleware(plain, secret_key=SECRET, store=store))
    assert set_cookies(client.get("/set")) != []
    for path in ("/other", "/read"):
        response = client.get(path)
        assert response.status_code == 200
        assert set_cookies(response) == []


def test_a_load_that_meets_an_outage_leaves_the_session_unloaded_until_it_works() -> None:
    from wsgisession.errors import StoreUnavailable

    from .fakes import DictStore

    store = DictStore()
    middleware = SessionMiddleware(lambda e, s: [b""], secret_key=SECRET, store=store)
    first = middleware.open_session(EnvironBuilder().get_environ())
    first["user"] = "ada"
    cookie = dict(middleware.save_session(first))["Set-Cookie"].split(";")[0]
    environ = EnvironBuilder(headers={"Cookie": cookie}).get_environ()
    session = middleware.open_session(environ)
    working = store.load

    def down(key: str) -> dict[str, bytes] | None:
        raise StoreUnavailable("the test store is down")

    store.load = down  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        session.get("user")
    assert not session.loaded, "nothing half-loaded: no data, no record"
    assert middleware.save_session(session) == [], "an unloaded session saves nothing"
    store.load = working  # type: ignore[method-assign]
    assert session.get("user") == "ada", "the next access loads it"


def test_a_subclass_that_opens_sessions_its_own_way_is_used_for_every_request() -> None:
    # __call__ opens the session inline (the untouched request is hot), unless a
    # subclass has an open_session() of its own.
    opened: list[str] = []

    class Tracing(SessionMiddleware):
        def open_session(self, environ: Any) -> Any:
            opened.append(environ["PATH_INFO"])
            return super().open_session(environ)

    def view(request: Request) -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = Client(Tracing(text_app(view), secret_key=SECRET))
    assert [client.get(path).text for path in ("/a", "/b")] == ["1", "2"]
    assert opened == ["/a", "/b"]


def test_a_request_leaves_no_garbage_for_the_cycle_collector(
    server_store: ServerSessionStore,
) -> None:
    # The environ holds the session and the session held its environ: every request
    # left a cycle that only the garbage collector freed, whose passes cost a
    # gunicorn worker about a tenth of a session read.
    import gc

    # A plain WSGI app: werkzeug's Request keeps itself in the environ, a cycle of its own.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        current = environ["wsgisession.session"]
        current["visits"] = current.get("visits", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(current["visits"]).encode()]

    client = Client(SessionMiddleware(app, secret_key=SECRET, store=server_store))
    client.get("/")  # a first visit creates the session
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert client.get("/").text == "2"
        gc.collect()
        assert [
            type(thing).__name__ for thing in gc.garbage if type(thing).__name__ == "Session"
        ] == []
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


def test_code_outside_the_middleware_reads_the_session_after_the_response() -> None:
    # An outer middleware (an access log, say) may read the session the app used, or
    # load the one it never touched, after the response.
    seen: list[Any] = []

    def inner(request: Request) -> str:
        if request.path == "/login":
            session["user"] = "ada"
        elif request.path == "/used":
            return str(session["user"])
        return "untouched"

    app = SessionMiddleware(text_app(inner), secret_key=SECRET)

    def outer(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        seen.append(get_session(environ).get("user"))
        return body

    client = Client(outer)
    client.get("/login")
    assert client.get("/used").text == "ada"
    assert client.get("/other").text == "untouched"
    assert seen == ["ada", "ada", "ada"]
