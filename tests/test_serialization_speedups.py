"""With orjson installed, sessions serialize exactly as without it.

The speedups extra must be invisible: the same value gives the same bytes (so a
cookie or a stored record does not change when a worker has orjson and another
has not) and the same text reads back as the same values, with the same types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from wsgisession import serialization


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serialization, "_orjson", None)


def _stdlib(function: Callable[[Any], Any], argument: Any) -> Any:
    """*function(argument)* with orjson out of the way: the standard library's answer."""
    saved, serialization._orjson = serialization._orjson, None
    try:
        return function(argument)
    finally:
        serialization._orjson = saved


def _stdlib_dumps(value: Any) -> str:
    return str(_stdlib(serialization.dumps, value))


def _stdlib_loads(text: bytes) -> Any:
    return _stdlib(serialization.loads, text)


def _typed(value: Any) -> Any:
    """*value* with every type spelled out, so 1 and 1.0 (or nan and nan) compare right."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_typed(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(_typed(v)) for v in value))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def test_orjson_is_installed_for_these_tests() -> None:
    # The dev extra installs it; without it every test here would test nothing.
    assert serialization._orjson is orjson


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x7F)),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=25,
)
anything = st.recursive(
    plain
    | st.floats()
    | st.binary()
    | st.datetimes()
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.sampled_from([Markup("<em>x</em>"), "\x7f", "\ud800", " t"]),
    lambda children: (
        st.lists(children)
        | st.tuples(children, children)
        | st.dictionaries(st.sampled_from([" t", " o", "a", " "]), children, max_size=1)
        | st.dictionaries(st.text(max_size=3), children, max_size=4)
        | st.frozensets(st.integers())
    ),
    max_leaves=25,
)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
@example({"big": 2**64, "neg": -(2**63) - 1, "u64": 2**64 - 1})
@example({"del": "\x7f", "nul": "\x00", "zoe": "Zoë", "emoji": "\U0001f600"})
@example({" t": [1, 2]})
@example([1.0, -0.0, 1e16, 1.5e-7, float("inf"), float("nan")])
@example({"lone": "\udc00"})
@example({"m": Markup("<b>")})
def test_the_same_value_gives_the_same_bytes(value: Any) -> None:
    assert serialization.dumps(value) == _stdlib_dumps(value)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
@example({"big": 2**64, "neg": -(2**63) - 1, "u64": 2**64 - 1, "n": [2**70]})
def test_what_dumps_writes_reads_back_the_same_either_way(value: Any) -> None:
    text = serialization.dumps(value).encode()
    assert _typed(serialization.loads(text)) == _typed(_stdlib_loads(text))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"[123456789012345678901234567890]", id="int-beyond-64-bits"),
        pytest.param(b"[-9223372036854775809]", id="int-below-i64"),
        pytest.param(b"[18446744073709551615]", id="u64-max"),
        pytest.param(b"[0.0001234567890123456]", id="float-with-a-long-digit-run"),
        pytest.param(b"[NaN,Infinity,-Infinity]", id="nan-and-infinities"),
        pytest.param(b"[1e400]", id="float-overflow"),
        pytest.param(b'["\\ud800"]', id="lone-surrogate"),
        pytest.param(b'{"a":1,"a":2}', id="duplicate-key"),
        pytest.param(b'["\\u00eb\\ud83d\\ude00"]', id="escaped-non-ascii"),
        pytest.param('["Zoë"]'.encode(), id="raw-utf-8"),
        pytest.param(b"[1.5e-7,-0.0,1E+2]", id="floats"),
        pytest.param(b'["0000000000000000000000000", 12345678901234567890123]', id="spaced"),
        pytest.param(b'{"a":"x12345678901234567890123","b":-12345678901234567890}', id="after-str"),
        pytest.param(b"12345678901234567890123", id="alone"),
        pytest.param(b'{"k":\n123456789012345678901234}', id="after-newline"),
    ],
)
def test_hostile_texts_read_as_the_standard_library_reads_them(text: bytes) -> None:
    assert _typed(serialization.loads(text)) == _typed(_stdlib_loads(text))


def test_malformed_bytes_are_still_a_value_error() -> None:
    for text in (b"[1,", b"{", b"\xff\xfe", b"", b"[1]x"):
        with pytest.raises(ValueError):  # noqa: PT011 - the contract is the type
            serialization.loads(text)


def test_deep_nesting_is_still_a_recursion_error() -> None:
    with pytest.raises(RecursionError):
        serialization.loads(b"[" * 100_000 + b"]" * 100_000)


def test_a_session_with_tags_round_trips_with_orjson_installed() -> None:
    value = {"when": datetime(2026, 1, 1), "cart": ("a", 1), "n": 2**80, "name": "Zoë"}
    assert serialization.loads(serialization.dumps(value).encode()) == value


@pytest.mark.usefixtures("without_orjson")
def test_without_orjson_the_standard_library_does_everything() -> None:
    value = {"user": 1, "roles": ["a"], "when": datetime(2026, 1, 1)}
    assert serialization._orjson is None
    assert serialization.loads(serialization.dumps(value).encode()) == value


session_dicts = st.dictionaries(st.text(max_size=4), anything, max_size=6)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(session_dicts, st.text(max_size=4), anything)
@example({"n": 1.5}, "m", 1)
@example({"t": "v2", "d": 2}, "d", (1, 2))
@example({"a": [1]}, " o", 1)
def test_writing_only_the_changed_values_checked_gives_the_same_bytes(
    loaded: dict[str, Any], key: str, value: Any
) -> None:
    # The client backend's write path: a session loaded from its cookie payload,
    # one key changed, written again checking only that key when loads_known said
    # the rest needs no check.
    text = serialization.dumps(loaded).encode()
    data, known = serialization.loads_known(text)
    assert _typed(data) == _typed(serialization.loads(text))
    # The next request reads the remembered payload again the same way.
    assert _typed(serialization.loads_again(text, known)) == _typed(data)
    if not known:
        return
    data[key] = value
    fast = serialization.dumps_known(data, [key])
    if fast is not None:
        assert fast == _stdlib_dumps(data)
    # The cookie payload, [created, data] or [created, data, lifetime], in one call:
    # the bytes the standard library's text of data gives, formatted around it.
    for created, lifetime in ((1_800_000_000, None), (0, 86400)):
        payload = [created, data] if lifetime is None else [created, data, lifetime]
        listed = serialization.dumps_known_list(payload, data, [key])
        assert (listed is None) is (fast is None)
        if listed is not None:
            body = _stdlib_dumps(data).encode()
            if lifetime is None:
                assert listed == b"[%d,%s]" % (created, body)
            else:
                assert listed == b"[%d,%s,%d]" % (created, body, lifetime)


def test_a_payload_with_a_float_takes_the_full_path() -> None:
    # orjson writes 1e+16 as 1e16: a session holding a float is never rewritten
    # by the fast path, which keeps the values it did not check as orjson read them.
    text = serialization.dumps({"price": 1e16, "n": 2}).encode()
    data, known = serialization.loads_known(text)
    assert not known
    assert serialization.loads_again(text, known) == {"price": 1e16, "n": 2}
    data["n"] = 3
    assert serialization.dumps(data) == '{"price":1e+16,"n":3}'
    assert serialization.loads_known(b'{" t":[1]}') == ((1,), False)
