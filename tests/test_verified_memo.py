"""A cookie verified once is not verified again, and that changes nothing else.

Each middleware remembers the last :data:`~wsgisession._memo.MEMO_SIZE` session
cookie values that verified. Expiry, revocation and the store lookup still happen
on every request; forged values are never remembered.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from wsgisession import CookieStore, LRUStore, SessionMiddleware, session
from wsgisession._memo import MEMO_SIZE

from .conftest import SECRET, Clock, text_app


def view(request: Request) -> str:
    if request.path == "/login":
        session["user"] = request.args.get("user", "alice")
        return "in"
    if request.path == "/logout":
        session.invalidate()
        return "out"
    return str(session.get("user"))


def _verifier(app: SessionMiddleware) -> Any:
    """What verifies this middleware's cookies: the codec, or the server backend."""
    backend: Any = app._backend
    return backend.codec if hasattr(backend, "codec") else backend


def _remembered(app: SessionMiddleware) -> Any:
    """What this middleware remembers of the cookie values it issued or verified.

    A cookie store's backend keeps them with what they hold (the codec only what
    it verified); a server backend keeps the id cookies it issued or verified.
    """
    backend: Any = app._backend
    return backend._seen if hasattr(backend, "codec") else backend._memo


def _count_verifications(app: SessionMiddleware, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    verifier = _verifier(app)
    calls: list[str] = []
    verify = verifier._verify

    def counted(value: str) -> Any:
        calls.append(value)
        return verify(value)

    monkeypatch.setattr(verifier, "_verify", counted)
    return calls


STORES = [
    pytest.param(lambda: CookieStore(), id="cookie"),
    pytest.param(lambda: CookieStore(encrypt=True), id="encrypted"),
    pytest.param(lambda: LRUStore(), id="lru"),
]


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest) -> SessionMiddleware:
    return SessionMiddleware(text_app(view), secret_key=SECRET, store=request.param(), max_age=60)


def test_a_cookie_the_middleware_issued_is_never_verified_again(
    app: SessionMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified = _count_verifications(app, monkeypatch)
    client = Client(app)
    client.get("/login")
    for _ in range(3):
        assert client.get("/").text == "alice"
    assert verified == []


def test_a_cookie_from_another_worker_is_verified_once(
    app: SessionMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same keys and store in another process: its memo starts empty.
    worker = SessionMiddleware(app.app, secret_key=SECRET, store=app.store, max_age=60)
    client = Client(app)
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    verified = _count_verifications(worker, monkeypatch)
    other = Client(worker)
    for _ in range(3):
        other.set_cookie("session", cookie.value)
        assert other.get("/").text == "alice"
    assert verified == [cookie.value]


def test_a_remembered_cookie_still_expires(app: SessionMiddleware, clock: Clock) -> None:
    client = Client(app)
    client.get("/login")
    assert client.get("/").text == "alice"
    clock.advance(61)
    assert client.get("/").text == "None"


def test_a_forged_cookie_is_never_remembered(
    app: SessionMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(app)
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    forged = cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB")
    verified = _count_verifications(app, monkeypatch)
    for _ in range(3):
        client.set_cookie("session", forged)
        assert client.get("/").text == "None"
    assert verified == [forged] * 3
    assert len(_remembered(app)) == 1  # the cookie /login issued


def test_memory_is_bounded(app: SessionMiddleware) -> None:
    for n in range(MEMO_SIZE + 20):
        client = Client(app)
        client.get(f"/login?user=u{n}")
        assert client.get("/").text == f"u{n}"
    assert len(_remembered(app)) == MEMO_SIZE


def test_a_remembered_id_cookie_still_finds_its_session_gone_after_logout() -> None:
    app = SessionMiddleware(text_app(view), secret_key=SECRET, store=LRUStore())
    client = Client(app)
    client.get("/login")
    stolen = client.get_cookie("session")
    assert stolen is not None
    assert client.get("/").text == "alice"
    client.get("/logout")
    client.set_cookie("session", stolen.value)
    assert client.get("/").text == "None"


def test_each_middleware_remembers_for_its_own_keys() -> None:
    first = SessionMiddleware(text_app(view), secret_key=SECRET)
    other = SessionMiddleware(text_app(view), secret_key="another key " * 3)
    client = Client(first)
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert client.get("/").text == "alice"
    stranger = Client(other)
    stranger.set_cookie("session", cookie.value)
    assert stranger.get("/").text == "None"


@pytest.mark.parametrize(
    "store", [CookieStore(), CookieStore(encrypt=True)], ids=["cookie", "encrypted"]
)
def test_each_request_gets_its_own_copy_of_a_remembered_cookies_data(store: CookieStore) -> None:
    def cart_view(request: Request) -> str:
        if request.path == "/fill":
            session["cart"] = ["apple"]
        elif request.path == "/add":
            session["cart"].append("pear")  # in place, on the decoded value
        return ",".join(session.get("cart", []))

    shop = SessionMiddleware(text_app(cart_view), secret_key=SECRET, store=store)
    client = Client(shop)
    client.get("/fill")
    old = client.get_cookie("session")
    assert old is not None
    assert client.get("/").text == "apple"
    assert client.get("/add").text == "apple,pear"
    client.set_cookie("session", old.value)  # the earlier cookie, remembered
    assert client.get("/").text == "apple"
    assert client.get("/").text == "apple"


CHANGES: dict[str, Any] = {
    # Every way a view can reach a value and change it in place.
    "append": lambda s: s["cart"].append("pear"),
    "get": lambda s: s.get("cart").append("pear"),
    "setdefault": lambda s: s.setdefault("cart", []).append("pear"),
    "values": lambda s: next(v for v in s.values() if isinstance(v, list)).append("pear"),
    "items": lambda s: dict(s.items())["cart"].append("pear"),
    "dict": lambda s: dict(s)["cart"].append("pear"),
    "nested": lambda s: s["prefs"]["tags"].append("pear"),
    "nested-dict": lambda s: s["prefs"].update(theme="light"),
    "pop": lambda s: s.pop("cart").append("pear") or s.__setitem__("cart", ["x"]),
    "compare": lambda s: s == {} or s["cart"].append("pear"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize(
    "store", [CookieStore(), CookieStore(encrypt=True)], ids=["cookie", "encrypted"]
)
def test_requests_that_share_a_remembered_cookies_data_never_see_each_others_changes(
    store: CookieStore, change: str
) -> None:
    # A cookie that keeps coming back (a client that only reads) is decoded once and
    # its data shared: a value a request changes in place is that request's copy.
    def view(request: Request) -> str:
        if request.path == "/fill":
            session["cart"] = ["apple"]
            session["prefs"] = {"theme": "dark", "tags": ["a"]}
        elif request.path == "/change":
            CHANGES[change](session)
            # Its response sets a new cookie; this client keeps sending the old one.
        return repr(sorted(session.items()))

    shop = SessionMiddleware(text_app(view), secret_key=SECRET, store=store)
    client = Client(shop)
    filled = client.get("/fill").text
    cookie = client.get_cookie("session")
    assert cookie is not None
    for _ in range(4):  # decoded, then decoded and kept, then shared
        client.set_cookie("session", cookie.value)
        assert client.get("/").text == filled
    for _ in range(2):
        client.set_cookie("session", cookie.value)
        assert client.get("/change").text != filled
        client.set_cookie("session", cookie.value)
        assert client.get("/").text == filled


def test_a_shared_value_is_copied_once_per_request_and_saved_when_changed() -> None:
    seen: list[Any] = []

    def view(request: Request) -> str:
        if request.path == "/fill":
            session["cart"] = ["apple"]
        else:
            cart = session["cart"]
            assert session["cart"] is cart  # the same copy, for the whole request
            seen.append(cart)
            if request.path == "/add":
                cart.append("pear")
        return ",".join(session["cart"])

    client = Client(SessionMiddleware(text_app(view), secret_key=SECRET))
    client.get("/fill")
    for _ in range(3):
        assert client.get("/").text == "apple"
    assert all(a is not b for a, b in itertools.pairwise(seen))  # one copy per request
    assert client.get("/add").text == "apple,pear"
    assert client.get("/").text == "apple,pear"  # the in-place change was saved


@pytest.mark.parametrize("hooks", [False, True], ids=["plain", "with-hooks"])
@pytest.mark.parametrize(
    "store", [CookieStore(), CookieStore(encrypt=True)], ids=["cookie", "encrypted"]
)
def test_each_write_reads_back_exactly_what_the_last_one_saved(
    store: CookieStore, hooks: bool
) -> None:
    # A cookie the middleware issued is remembered with its data, shared by the
    # request that sends it back: a chain of writes, each changing values in place,
    # must read exactly what the previous response saved, and nothing a request did
    # to its values after its headers (a streamed body) reaches the next one.
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        step = environ["PATH_INFO"].strip("/")
        if step == "fill":
            session["cart"] = ["apple"]
            session["prefs"] = {"theme": "dark", "tags": ["a"]}
            session["n"] = 0
        elif step == "add":
            session["cart"].append(f"item{session['n']}")
            session["n"] += 1
        elif step == "nested":
            session["prefs"]["tags"].append("b")
            session["n"] += 1
        elif step == "pop":
            session["cart"].pop()
            session["n"] += 1
        seen = repr(sorted(session.items()))
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Any:
            yield seen.encode()
            # After the headers: lost for a cookie session, and never seen again.
            session["cart"].append("late")
            session["prefs"]["tags"].append("late")
            session["prefs"]["theme"] = "late"

        return body()

    middleware = SessionMiddleware(app, secret_key=SECRET, store=store)
    if hooks:
        middleware.on_event(lambda event: None)  # device tracking and events: no sharing
    client = Client(middleware)
    expected: dict[str, Any] = {}
    for step in ["fill", "add", "add", "nested", "pop", "read", "add", "nested", "read"]:
        if step == "fill":
            expected = {"cart": ["apple"], "prefs": {"theme": "dark", "tags": ["a"]}, "n": 0}
        elif step == "add":
            expected["cart"].append(f"item{expected['n']}")
            expected["n"] += 1
        elif step == "nested":
            expected["prefs"]["tags"].append("b")
            expected["n"] += 1
        elif step == "pop":
            expected["cart"].pop()
            expected["n"] += 1
        assert client.get(f"/{step}").text == repr(sorted(expected.items())), step


def test_read_cookie_still_returns_the_data_of_a_remembered_cookie() -> None:
    app = SessionMiddleware(text_app(view), secret_key=SECRET)
    client = Client(app)
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    first = app.read_cookie(cookie.value)
    again = app.read_cookie(cookie.value)
    assert first.data == again.data == {"user": "alice"}
    assert first.data is not again.data


@pytest.mark.parametrize(
    "store", [CookieStore(), CookieStore(encrypt=True)], ids=["cookie", "encrypted"]
)
@pytest.mark.parametrize("own_max_age", [None, 600], ids=["default-lifetime", "own-lifetime"])
def test_a_cookie_just_issued_reads_back_exactly_as_a_fresh_worker_reads_it(
    store: CookieStore, own_max_age: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The middleware knows what it just wrote, so the next request skips the
    # payload's checks; what it reads must be what a worker that never saw the
    # cookie decodes from it: the data (tagged and plain values), the creation
    # time, the signed timestamp and the session's own lifetime.
    def writer(request: Request) -> str:
        if request.path == "/write":
            session["plain"] = {"n": 2**64 - 1, "items": ["a", None, True]}
            session["tagged"] = ((1, 2), b"\x00bytes", 0.1)
            if own_max_age is not None:
                session.max_age = own_max_age
        return repr(sorted(session.items()))

    app = SessionMiddleware(text_app(writer), secret_key=SECRET, store=store, max_age=60)
    client = Client(app)
    written = client.get("/write").text
    cookie = client.get_cookie("session")
    assert cookie is not None
    verified = _count_verifications(app, monkeypatch)
    assert client.get("/").text == written
    assert verified == []  # read back from what the middleware remembered

    fresh = SessionMiddleware(text_app(writer), secret_key=SECRET, store=store, max_age=60)
    assert app.read_cookie(cookie.value) == fresh.read_cookie(cookie.value)
    assert fresh.read_cookie(cookie.value).lifetime == own_max_age
