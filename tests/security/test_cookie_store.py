"""Hostile cookies against CookieStore, signed and encrypted, through the test Client.

Each attack ends in a fresh, empty session (and a warning in the log when a cookie
was refused): never a 500, never the attacker's or another user's data. The basic
bad-input cases (tampered, truncated, wrong key, bad JSON …) are in
``tests/test_bad_input.py``; these are the ones an attacker who knows the format
would try next. Several forge *validly* signed or encrypted cookies with the test
key, to show the payload checks hold even if the signature were not there.
"""

from __future__ import annotations

import ast
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from werkzeug.http import parse_cookie
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

import wsgisession
from wsgisession import CookieStore, SessionMiddleware, session

from ..conftest import SECRET, Clock, text_app
from .forge import V1, V2, b64, encrypted_cookie, signed_cookie, unb64

FORMATS = ["signed", "encrypted"]
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def view(request: Request) -> str:
    if request.path == "/set":
        session["user"] = request.args.get("user", "alice")
    return repr(dict(session))


def middleware(fmt: str, **options: Any) -> SessionMiddleware:
    options.setdefault("secret_key", SECRET)
    store = CookieStore(encrypt=fmt == "encrypted")
    return SessionMiddleware(text_app(view), store=store, **options)


def valid_cookie(fmt: str, user: str = "alice", **options: Any) -> str:
    """A genuine session cookie for *user*, as the middleware issues it."""
    name = options.get("cookie_name", "session")
    response = Client(middleware(fmt, **options)).get(
        f"/set?user={user}", base_url="https://localhost/"
    )
    return parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])[name]


def forge(fmt: str, payload: bytes, **kwargs: Any) -> str:
    return (encrypted_cookie if fmt == "encrypted" else signed_cookie)(payload, **kwargs)


def send(fmt: str, cookie_header: str, path: str = "/", **options: Any) -> TestResponse:
    """A request with this exact ``Cookie`` header (UTF-8, as a browser sends it)."""
    client = Client(middleware(fmt, **options), use_cookies=False)
    raw = cookie_header.encode("utf-8").decode("latin-1")  # WSGI's "bytes as latin-1"
    return client.get(path, base_url="https://localhost/", environ_overrides={"HTTP_COOKIE": raw})


def assert_refused(response: TestResponse, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == 200
    assert response.text == "{}"
    assert "ignored an invalid session cookie" in caplog.text


@pytest.fixture(autouse=True)
def _capture_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wsgisession")


# -- payloads that are not sessions, validly signed or sealed ---------------------


NOT_SESSIONS = [
    pytest.param(b"[1,2,3]", id="json-array"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'[1,{"user":"mallory"},3,4]', id="four-items"),
    pytest.param(b'[1,{"user":"mallory"},"3"]', id="lifetime-not-int"),
    pytest.param(b'[1,{"user":"mallory"},-1]', id="lifetime-negative"),
    pytest.param(b"42", id="json-int"),
    pytest.param(b'"alice"', id="json-string"),
    pytest.param(b"null", id="json-null"),
    pytest.param(b"true", id="json-true"),
    pytest.param(b'{"user":"mallory"}', id="json-object"),
    pytest.param(b"[1,[]]", id="data-is-a-list"),
    pytest.param(b"[1,null]", id="data-is-null"),
    pytest.param(b'["1",{"user":"mallory"}]', id="created-is-a-string"),
    pytest.param(b'[true,{"user":"mallory"}]', id="created-is-a-bool"),
    pytest.param(b'[1.5,{"user":"mallory"}]', id="created-is-a-float"),
]


@pytest.mark.parametrize("payload", NOT_SESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_valid_cookie_whose_payload_is_not_a_session_gives_a_fresh_session(
    fmt: str, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert_refused(send(fmt, f"session={forge(fmt, payload)}"), caplog)


class Plant:
    """Unpickling this creates a file: proof that the pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "zlib"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_validly_signed_pickle_is_never_executed(
    fmt: str, compress: bool, protocol: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    armed = tmp_path / "proof-the-payload-works"
    pickle.loads(pickle.dumps(Plant(armed))).close()  # noqa: S301 - our own, to arm the test
    assert armed.exists()

    planted = tmp_path / "planted"
    payload = pickle.dumps([1, {"user": Plant(planted)}], protocol=protocol)
    response = send(fmt, f"session={forge(fmt, payload, compress=compress)}")
    assert_refused(response, caplog)
    assert not planted.exists()


def test_no_library_module_imports_a_code_executing_deserializer() -> None:
    banned = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "jsonpickle", "yaml"}
    package = Path(wsgisession.__file__).parent
    found = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [f"{source.name}: {n}" for n in names if n.split(".")[0] in banned]
    assert found == []


# -- base64 malleability ------------------------------------------------------------


def same_bytes_variants(text: str) -> list[str]:
    """Other spellings of *text* that a lenient base64 decoder reads as the same bytes."""
    variants = [text + "=", text + "==", text + "==="]
    for char in B64_ALPHABET:
        other = text[:-1] + char
        if other != text and unb64(other) == unb64(text):
            variants.append(other)
    return variants


def test_base64_variants_of_a_valid_signature_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload, timestamp, signature = valid_cookie("signed").split(".")
    variants = same_bytes_variants(signature)
    assert len(variants) == 6  # 43 characters for 32 bytes: 2 spare bits, 3 flips
    for variant in variants:
        caplog.clear()
        assert_refused(send("signed", f"session={payload}.{timestamp}.{variant}"), caplog)


def test_base64_variants_of_a_valid_encrypted_cookie_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Pick a session whose cookie length leaves spare bits in its last character.
    value = next(
        v for v in (valid_cookie("encrypted", "a" * n) for n in range(3)) if len(v) % 4 != 0
    )
    variants = same_bytes_variants(value)
    assert len(variants) > 3
    for variant in variants:
        caplog.clear()
        assert_refused(send("encrypted", f"session={variant}"), caplog)


# -- timestamps ----------------------------------------------------------------------

MAX_AGE = 1000


@pytest.mark.parametrize(
    ("issued", "created"),
    [
        pytest.param(-MAX_AGE - 1, -MAX_AGE - 1, id="idle-longer-than-max-age"),
        pytest.param(-2 * MAX_AGE, 0, id="issued-long-ago-created-now"),
        pytest.param(301, 0, id="issued-beyond-the-clock-skew"),
        pytest.param(0, 3600, id="created-in-the-future"),
        pytest.param(0, 10**30, id="created-overflows"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_forged_times_give_a_fresh_session(
    fmt: str, issued: int, created: int, clock: Clock
) -> None:
    now = int(clock.now)
    payload = b'[%d,{"user":"mallory"}]' % (now + created)
    response = send(fmt, f"session={forge(fmt, payload, timestamp=now + issued)}", max_age=MAX_AGE)
    assert response.status_code == 200
    assert response.text == "{}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_timestamp_within_the_clock_skew_is_accepted(fmt: str, clock: Clock) -> None:
    now = int(clock.now)
    value = forge(fmt, b'[%d,{"user":"alice"}]' % now, timestamp=now + 299)
    assert send(fmt, f"session={value}").text == "{'user': 'alice'}"


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param(0, id="zero"),
        pytest.param(2**40, id="year-36812"),
        pytest.param(2**64 - 1, id="max-uint64"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_absurd_timestamp_gives_a_fresh_session(
    fmt: str, timestamp: int, caplog: pytest.LogCaptureFixture
) -> None:
    value = forge(fmt, b'[1,{"user":"mallory"}]', timestamp=timestamp)
    assert_refused(send(fmt, f"session={value}"), caplog)


def test_a_signed_timestamp_of_hundreds_of_bits_gives_a_fresh_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = signed_cookie(b'[1,{"user":"mallory"}]', timestamp=2**800)
    assert_refused(send("signed", f"session={value}"), caplog)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_creation_time_of_thousands_of_digits_gives_a_fresh_session(
    fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Python refuses to parse an int over 4300 digits: that must not be a 500.
    payload = b"[1" + b"0" * 5000 + b',{"user":"mallory"}]'
    assert_refused(send(fmt, f"session={forge(fmt, payload, compress=True)}"), caplog)


# -- cookie names and where the cookie comes from ---------------------------------------

HOST = "__Host-session"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("={name}={value}", id="empty-name-then-the-name"),
        pytest.param("\u2000{name}={value}", id="en-quad-prefix"),
        pytest.param("\u00a0{name}={value}", id="nbsp-prefix"),
        pytest.param("\u3000{name}={value}", id="ideographic-space-prefix"),
        pytest.param("\ufeff{name}={value}", id="bom-prefix"),
        pytest.param("\u0085{name}={value}", id="next-line-prefix"),
        pytest.param("\x0b{name}={value}", id="vertical-tab-prefix"),
        pytest.param("\x1c{name}={value}", id="file-separator-prefix"),
        pytest.param("{lower}={value}", id="other-case"),
        pytest.param("session={value}", id="unprefixed-name"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cookie_tossed_under_a_look_alike_name_is_not_the_host_cookie(
    fmt: str, header: str
) -> None:
    # The attacker's own valid session, planted (from a sibling subdomain or over
    # plain HTTP) under a name the browser does not protect as __Host-.
    value = valid_cookie(fmt, "mallory", cookie_name=HOST)
    cookie = header.format(name=HOST, lower=HOST.lower(), value=value)
    response = send(fmt, f"{cookie}; theme=dark", cookie_name=HOST)
    assert response.status_code == 200
    assert response.text == "{}"
    # The control: under its real name the same cookie is read.
    assert send(fmt, f"{HOST}={value}", cookie_name=HOST).text == "{'user': 'mallory'}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_session_cookie_in_the_query_string_or_form_is_ignored(fmt: str) -> None:
    value = valid_cookie(fmt, "mallory")
    client = Client(middleware(fmt), use_cookies=False)
    assert client.get(f"/?session={value}").text == "{}"
    assert client.post("/", data={"session": value}).text == "{}"
    assert client.get("/", headers={"X-Session": value}).text == "{}"


# -- encrypted cookies: tampering, other purposes, confidentiality ----------------------


def flip(value: str, index: int) -> str:
    """*value* with one bit flipped in byte *index* of its decoded bytes (canonical)."""
    blob = bytearray(unb64(value))
    blob[index] ^= 0x01
    return b64(bytes(blob))


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="version"),
        pytest.param(1, id="salt-first"),
        pytest.param(16, id="salt-last"),
        pytest.param(17, id="ciphertext-flags"),
        pytest.param(19, id="ciphertext-timestamp"),
        pytest.param(-17, id="ciphertext-last"),
        pytest.param(-16, id="tag-first"),
        pytest.param(-1, id="tag-last"),
    ],
)
def test_a_flipped_bit_anywhere_in_an_encrypted_cookie_is_refused(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    assert_refused(send("encrypted", f"session={flip(valid_cookie('encrypted'), index)}"), caplog)


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="version"),
        pytest.param(1, id="nonce-first"),
        pytest.param(12, id="nonce-last"),
        pytest.param(13, id="ciphertext-flags"),
        pytest.param(-17, id="ciphertext-last"),
        pytest.param(-1, id="tag-last"),
    ],
)
def test_a_flipped_bit_anywhere_in_a_format_1_cookie_is_refused(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    value = encrypted_cookie(b'[1,{"user":"mallory"}]', version=V1)
    assert send("encrypted", f"session={value}").text == "{'user': 'mallory'}"  # the control
    caplog.clear()
    assert_refused(send("encrypted", f"session={flip(value, index)}"), caplog)


def test_truncated_extended_and_spliced_encrypted_cookies_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob = (unb64(valid_cookie("encrypted", user)) for user in ("alice", "bob"))
    old = unb64(encrypted_cookie(b'[1,{"user":"alice"}]', version=V1))
    for blob in [
        alice[:-1],  # tag cut short
        alice + b"\x00",  # a byte appended
        alice[:17],  # header only
        alice[:1] + bob[1:17] + alice[17:],  # bob's salt (so key) on alice's ciphertext
        alice[:-16] + bob[-16:],  # bob's tag
        b"\x03" + alice[1:],  # an unknown version
        V1 + alice[1:],  # a format 2 cookie relabelled as format 1
        V2 + old[1:],  # a format 1 cookie relabelled as format 2
        V2 + old[1:13] + bytes(4) + old[13:],  # … with its nonce padded to a salt
    ]:
        caplog.clear()
        assert_refused(send("encrypted", f"session={b64(blob)}"), caplog)


def test_an_encrypted_cookie_for_another_cookie_name_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = valid_cookie("encrypted", "mallory", cookie_name="admin_session")
    assert_refused(send("encrypted", f"session={value}"), caplog)


def test_an_encrypted_cookie_under_another_key_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    value = valid_cookie("encrypted", "mallory", secret_key="another-key-" + "k" * 32)
    assert_refused(send("encrypted", f"session={value}"), caplog)


def test_a_value_sealed_for_another_purpose_with_this_key_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = encrypted_cookie(b'[1,{"user":"mallory"}]', purpose="wsgisession.cookie:session")
    assert_refused(send("encrypted", f"session={value}"), caplog)


@pytest.mark.parametrize(("made_as", "read_as"), [("signed", "encrypted"), ("encrypted", "signed")])
def test_a_cookie_of_the_other_format_gives_a_fresh_session(
    made_as: str, read_as: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert_refused(send(read_as, f"session={valid_cookie(made_as)}"), caplog)


def test_the_client_cannot_read_an_encrypted_session() -> None:
    secrets = ["alice-liddell", "hunter2-token", "4111111111111111"]

    def keep(request: Request) -> str:
        session.update(user=secrets[0], token=secrets[1], card=secrets[2], n=12345)
        return "ok"

    store = CookieStore(encrypt=True, compress=True)
    response = Client(SessionMiddleware(text_app(keep), secret_key=SECRET, store=store)).get("/")
    value = parse_cookie(response.headers["Set-Cookie"].split(";", 1)[0])["session"]
    # Look in the value and in every base64 decoding of it (at each alignment).
    views = [value.encode()] + [unb64(value[i:]) for i in range(4) if (len(value) - i) % 4 != 1]
    for secret in [*secrets, "user", "token", "12345"]:
        for seen in views:
            assert secret.encode() not in seen
