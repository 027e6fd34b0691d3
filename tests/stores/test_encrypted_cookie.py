"""CookieStore(encrypt=True): the documented format, key rotation, compression, size.

The whole session suite also runs against the encrypted store (``STORES`` in
``tests/conftest.py``); hostile input is in ``tests/security/``.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import pytest
from werkzeug.http import parse_cookie
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

import wsgisession.stores
from wsgisession import CookieStore, SessionMiddleware, session
from wsgisession.errors import ConfigurationError, SessionTooLarge

from ..conftest import SECRET, Clock, session_client, text_app
from ..security.forge import V1, decrypt_cookie, encrypted_cookie, unb64

OLD_KEY = "the-old-key-" + "o" * 32


def cookie_value(response: TestResponse, name: str = "session") -> str:
    (header,) = response.headers.getlist("Set-Cookie")
    return parse_cookie(header.split(";", 1)[0])[name]


def view(request: Request) -> str:
    if request.path == "/set":
        session["user"] = "alice"
    return repr(dict(session))


def encrypted_app(**options: Any) -> SessionMiddleware:
    options.setdefault("secret_key", SECRET)
    return SessionMiddleware(text_app(view), store=CookieStore(encrypt=True), **options)


def test_cookie_follows_the_documented_format(clock: Clock) -> None:
    value = cookie_value(Client(encrypted_app()).get("/set"))
    blob = unb64(value)
    flags, timestamp, payload = decrypt_cookie(value)
    assert blob[:1] == b"\x02"  # format 2: a key per cookie
    assert len(blob) == 1 + 16 + 1 + 8 + len(payload) + 16  # version salt flags time … tag
    assert flags == 0
    assert timestamp == int(clock.now)
    assert json.loads(payload) == [int(clock.now), {"user": "alice"}]


def test_each_cookie_gets_a_fresh_salt_so_a_key_of_its_own(clock: Clock) -> None:
    # Same session, same second: only the random salt (hence the key) can make them differ.
    first = cookie_value(Client(encrypted_app()).get("/set"))
    second = cookie_value(Client(encrypted_app()).get("/set"))
    salt = slice(1, 17)
    raw = [base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)) for v in (first, second)]
    assert raw[0][salt] != raw[1][salt]
    assert raw[0][17:] != raw[1][17:]
    assert decrypt_cookie(first) == decrypt_cookie(second)


def test_a_format_1_cookie_is_still_read_and_reissued_in_format_2(clock: Clock) -> None:
    now = int(clock.now)
    old = encrypted_cookie(b'[%d,{"user":"alice"}]' % now, version=V1)
    client = Client(encrypted_app(), use_cookies=False)
    response = client.get("/", headers={"Cookie": f"session={old}"})
    assert response.text == "{'user': 'alice'}"
    reissued = cookie_value(response)
    assert unb64(reissued)[:1] == b"\x02"
    assert decrypt_cookie(reissued)[2] == b'[%d,{"user":"alice"}]' % now
    # The format 2 cookie is read as it is: not re-issued again.
    again = client.get("/", headers={"Cookie": f"session={reissued}"})
    assert again.text == "{'user': 'alice'}"
    assert again.headers.getlist("Set-Cookie") == []


def test_a_format_1_cookie_under_a_fallback_key_is_read() -> None:
    old = encrypted_cookie(b'[1,{"user":"alice"}]', version=V1, key=OLD_KEY)
    rotated = Client(encrypted_app(fallback_secret_keys=[OLD_KEY]), use_cookies=False)
    response = rotated.get("/", headers={"Cookie": f"session={old}"})
    assert response.text == "{'user': 'alice'}"
    assert decrypt_cookie(cookie_value(response))[2] == b'[1,{"user":"alice"}]'


def test_a_fallback_key_decrypts_and_the_cookie_is_reissued_under_the_current_key() -> None:
    old = cookie_value(Client(encrypted_app(secret_key=OLD_KEY)).get("/set"))
    rotated = Client(encrypted_app(fallback_secret_keys=[OLD_KEY]), use_cookies=False)
    response = rotated.get("/", headers={"Cookie": f"session={old}"})
    assert response.text == "{'user': 'alice'}"
    reissued = cookie_value(response)
    only_new = Client(encrypted_app(), use_cookies=False)
    assert only_new.get("/", headers={"Cookie": f"session={reissued}"}).text == (
        "{'user': 'alice'}"
    )


def test_fallback_keys_never_encrypt() -> None:
    client = Client(encrypted_app(fallback_secret_keys=[OLD_KEY]))
    value = cookie_value(client.get("/set"))
    old_only = Client(encrypted_app(secret_key=OLD_KEY), use_cookies=False)
    assert old_only.get("/", headers={"Cookie": f"session={value}"}).text == "{}"
    assert decrypt_cookie(value)[2].endswith(b'{"user":"alice"}]')


def test_missing_cryptography_is_a_configuration_error_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    # Forget the store's encryption module, so constructing the store imports it anew.
    monkeypatch.delitem(sys.modules, "wsgisession.stores._encrypted", raising=False)
    monkeypatch.delattr(wsgisession.stores, "_encrypted", raising=False)
    with pytest.raises(ConfigurationError, match=r'pip install "sessionlayer\[crypto\]"'):
        CookieStore(encrypt=True)
    CookieStore()  # the signed store needs nothing more


def compressible(request: Request) -> str:
    if request.path == "/set":
        session["text"] = "wsgisession " * 200
    return str(len(session.get("text", "")))


@pytest.mark.parametrize(
    ("compress", "flags"),
    [pytest.param(None, 0, id="default-uncompressed"), pytest.param(True, 1, id="opted-in")],
)
def test_encrypted_cookies_are_compressed_only_when_asked(compress: Any, flags: int) -> None:
    client = session_client(compressible, store=CookieStore(encrypt=True, compress=compress))
    value = cookie_value(client.get("/set"))
    assert decrypt_cookie(value)[0] == flags
    assert client.get("/read").text == "2400"


def test_compress_false_turns_compression_off_for_signed_cookies() -> None:
    on = cookie_value(session_client(compressible).get("/set"))
    off = cookie_value(session_client(compressible, store=CookieStore(compress=False)).get("/set"))
    assert on.startswith(".")  # the signed format's mark of a compressed payload
    assert not off.startswith(".")
    assert len(off) > 2400


def sized(request: Request) -> str:
    session["s"] = "x" * int(request.args["n"])
    return "ok"


def largest_fitting(client: Client, low: int, high: int) -> int:
    """The longest string that still saves, by bisection (high is known too big)."""
    while high - low > 1:
        mid = (low + high) // 2
        try:
            client.get(f"/?n={mid}")
            low = mid
        except SessionTooLarge:
            high = mid
    return low


def test_the_size_guard_applies_to_the_encrypted_cookie() -> None:
    client = session_client(sized, store=CookieStore(encrypt=True))
    n = largest_fitting(client, 0, 4093)
    fresh = session_client(sized, store=CookieStore(encrypt=True))
    header = fresh.get(f"/?n={n}").headers["Set-Cookie"]
    assert 4093 - 4 <= len(header) <= 4093  # base64 grows in steps of 4 characters
    with pytest.raises(SessionTooLarge) as info:
        fresh.get(f"/?n={n + 1}")
    assert info.value.size > 4093


def test_a_session_that_fits_compressed_and_signed_can_be_too_large_encrypted() -> None:
    def big(request: Request) -> str:
        session["text"] = "wsgisession " * 400
        return "ok"

    assert session_client(big).get("/").status_code == 200
    with pytest.raises(SessionTooLarge):
        session_client(big, store=CookieStore(encrypt=True)).get("/")


def test_the_encrypted_payload_is_random_looking_not_base64_of_json() -> None:
    value = cookie_value(Client(encrypted_app()).get("/set"))
    assert "." not in value  # never mistaken for a signed cookie
    assert base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))[:1] == b"\x02"


def test_repr_shows_the_options() -> None:
    assert repr(CookieStore(encrypt=True)) == (
        "CookieStore(compress_min_size=512, encrypt=True, compress=None)"
    )
