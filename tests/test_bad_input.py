"""Bad cookies get a fresh, empty session and a warning: never a 500, nothing lost."""

from __future__ import annotations

import base64
import json
import logging
import zlib
from typing import Any

import pytest
from werkzeug.http import parse_cookie
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request, Response

from wsgisession import SessionMiddleware, get_signed_cookie, session, set_signed_cookie
from wsgisession.errors import SessionTooLarge
from wsgisession.signing import Keyring

from .conftest import SECRET, session_client, text_app

PURPOSE = "wsgisession.session:session"


def view(request: Request) -> Any:
    if request.path == "/set":
        session["user"] = "alice"
    return f"{dict(session)!r} theme={request.cookies.get('theme')}"


def app(**options: Any) -> SessionMiddleware:
    return SessionMiddleware(text_app(view), secret_key=SECRET, **options)


def good_cookie(**options: Any) -> str:
    response = Client(app(**options)).get("/set")
    return parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])["session"]


def send(cookie_header: str, **options: Any) -> TestResponse:
    client = Client(app(**options), use_cookies=False)
    return client.get("/", headers={"Cookie": cookie_header})


def sign(payload: bytes, key: str = SECRET, purpose: str = PURPOSE) -> str:
    return Keyring(key).signer(purpose).sign(payload).decode("ascii")


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def tamper(value: str, index: int) -> str:
    chars = list(value)
    chars[index] = "A" if chars[index] != "A" else "B"
    return "".join(chars)


def bad_values() -> list[Any]:
    good = good_cookie()
    payload, timestamp, signature = good.split(".")
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        pytest.param(tamper(good, 3), id="tampered-payload"),
        pytest.param(f"{payload}.{tamper(timestamp, 1)}.{signature}", id="tampered-timestamp"),
        pytest.param(f"{payload}.{timestamp}.{tamper(signature, 5)}", id="tampered-signature"),
        pytest.param(good[: len(good) // 2], id="truncated"),
        pytest.param(good[:-1], id="one-char-short"),
        pytest.param(f"{payload}.{timestamp}", id="no-signature"),
        pytest.param(
            sign(b64(b'[1,{"user":"mallory"}]'), key="another-key-" + "x" * 32), id="wrong-key"
        ),
        pytest.param(
            sign(b64(b'[1,{"user":"mallory"}]'), purpose="wsgisession.cookie:session"),
            id="signed-for-another-purpose",
        ),
        pytest.param(sign(b"not*base64!"), id="non-base64"),
        pytest.param(sign(b64(b"{not json")), id="bad-json"),
        pytest.param(sign(b64(b'{"user":"x"}')), id="json-but-not-a-session"),
        pytest.param(sign(b"." + b64(zlib.compress(deep))), id="json-nested-100000-deep"),
        pytest.param(sign(b64(b"\xff\xfe\x00garbage")), id="non-utf8-payload"),
        pytest.param(sign(b"." + b64(b"not zlib")), id="bad-compression"),
        pytest.param(sign(b"." + b64(zlib.compress(b" " * (2 << 20)))), id="zip-bomb"),
        pytest.param("%ff%fe\udcff", id="non-utf8-value"),
    ]


@pytest.mark.parametrize("value", bad_values())
def test_bad_session_cookie_gives_a_fresh_session_and_a_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = send(f"theme=dark; session={value}")
    assert response.status_code == 200
    assert response.text == "{} theme=dark"  # other cookies unaffected
    assert "session" in caplog.text
    # Left alone on a request that writes nothing: during a rolling key rotation it
    # may be another worker's perfectly good cookie.
    assert "Set-Cookie" not in response.headers


def test_bad_session_cookie_is_replaced_by_a_request_that_writes() -> None:
    def view(request: Request) -> Response:
        session["n"] = 1
        return Response("ok")

    client = Client(SessionMiddleware(Request.application(view), secret_key=SECRET))
    client.set_cookie("session", "tampered.value.sig")
    response = client.get("/")
    (header,) = response.headers.getlist("Set-Cookie")
    assert header.startswith("session=")
    assert "tampered" not in header
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.value != "tampered.value.sig"


@pytest.mark.parametrize("header", ["session=; theme=dark", "session=   ; theme=dark"])
def test_empty_session_cookie_is_no_session(header: str) -> None:
    response = send(header)
    assert response.status_code == 200
    assert response.text == "{} theme=dark"


def test_raw_non_utf8_cookie_header_is_no_session(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(app(), use_cookies=False)
    environ_overrides = {"HTTP_COOKIE": "session=\xff\xfe; theme=dark"}
    response = client.get("/", environ_overrides=environ_overrides)
    assert response.status_code == 200
    assert response.text.startswith("{}")


def test_huge_cookie_header_with_hundreds_of_cookies(caplog: pytest.LogCaptureFixture) -> None:
    good = good_cookie()
    junk = "; ".join(f"c{i}={'x' * 30}" for i in range(450))
    header = f"{junk}; session={good}; theme=dark"
    assert len(header) > 16_000
    response = send(header)
    assert response.status_code == 200
    assert response.text == "{'user': 'alice'} theme=dark"


def test_duplicate_session_cookies_give_a_fresh_session_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = good_cookie()
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = send(f"session={good}; session={good}; theme=dark")
    assert response.text == "{} theme=dark"
    assert "2 cookies named 'session'" in caplog.text


def test_cookie_from_the_future_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    payload = b64(b'[1,{"user":"mallory"}]')
    signer = Keyring(SECRET).signer(PURPOSE)
    import time

    value = signer.sign(payload, int(time.time()) + 3600).decode("ascii")
    assert send(f"session={value}").text.startswith("{}")


# -- too large ------------------------------------------------------------------


def test_session_too_large_raises_and_keeps_the_previous_cookie() -> None:
    import os

    def grow(request: Request) -> str:
        if request.path == "/set":
            session["user"] = "alice"
        elif request.path == "/grow":
            # Random data does not compress, so this cannot fit in 4 KB.
            session["blob"] = os.urandom(4000)
        return repr(sorted(session))

    client = session_client(grow)
    client.get("/set")
    with pytest.raises(SessionTooLarge) as info:
        client.get("/grow")
    error = info.value
    assert error.size > error.limit == 4093
    assert error.biggest_keys[0][0] == "blob"
    assert "blob" in str(error)
    # No Set-Cookie went out, so the browser still has the good session.
    assert client.get("/read").text == "['user']"


def test_a_large_but_compressible_session_fits() -> None:
    def big(request: Request) -> str:
        if request.path == "/set":
            session["text"] = "wsgisession " * 1000
        return str(len(session.get("text", "")))

    client = session_client(big)
    response = client.get("/set")
    assert len(response.headers["Set-Cookie"]) < 4093
    assert client.get("/read").text == "12000"


# -- key rotation -----------------------------------------------------------------


def test_cookie_signed_with_a_fallback_key_is_reissued_under_the_current_key() -> None:
    old_key = "the-old-key-" + "o" * 32
    old_app = SessionMiddleware(text_app(view), secret_key=old_key)
    response = Client(old_app).get("/set")
    value = parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])["session"]

    rotated = Client(
        SessionMiddleware(text_app(view), secret_key=SECRET, fallback_secret_keys=[old_key]),
        use_cookies=False,
    )
    response = rotated.get("/", headers={"Cookie": f"session={value}"})
    assert response.text.startswith("{'user': 'alice'}")
    reissued = parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])["session"]
    # The new cookie verifies under the current key alone.
    only_new = Client(app(), use_cookies=False)
    assert only_new.get("/", headers={"Cookie": f"session={reissued}"}).text.startswith(
        "{'user': 'alice'}"
    )


def test_fallback_keys_never_sign() -> None:
    old_key = "the-old-key-" + "o" * 32
    client = Client(
        SessionMiddleware(text_app(view), secret_key=SECRET, fallback_secret_keys=[old_key])
    )
    value = parse_cookie(client.get("/set").headers["Set-Cookie"].split(";", 1)[0])["session"]
    only_new = Client(app(), use_cookies=False)
    assert only_new.get("/", headers={"Cookie": f"session={value}"}).text.startswith("{'user'")


# -- signed single cookies are not session cookies ----------------------------------


def test_a_signed_cookie_pasted_into_the_session_cookie_is_refused() -> None:
    headers: list[tuple[str, str]] = []
    set_signed_cookie(headers, "session", {"user": "mallory"}, secret_key=SECRET)
    value = parse_cookie(headers[0][1].split(";", 1)[0])["session"]
    assert send(f"session={value}").text.startswith("{}")
    assert get_signed_cookie({"HTTP_COOKIE": f"session={value}"}, "session", secret_key=SECRET) == {
        "user": "mallory"
    }


def test_session_cookie_is_not_accepted_as_a_signed_cookie() -> None:
    value = good_cookie()
    environ = {"HTTP_COOKIE": f"session={value}"}
    assert get_signed_cookie(environ, "session", secret_key=SECRET, default="no") == "no"


def test_json_payload_is_compact() -> None:
    value = good_cookie()
    payload = value.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    _created, data = json.loads(decoded)
    assert data == {"user": "alice"}
    assert b" " not in decoded
