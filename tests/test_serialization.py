"""Session values survive the round trip through tagged JSON, and nothing else gets in."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from wsgisession import serialization

VALUES = [
    pytest.param({"a": 1, "b": [1, 2.5, None, True, "x"]}, id="plain-json"),
    pytest.param((1, "two", (3, 4)), id="nested-tuple"),
    pytest.param({1, 2, 3}, id="set"),
    pytest.param(frozenset({"a", "b"}), id="frozenset"),
    pytest.param(b"\x00\xffbytes", id="bytes"),
    pytest.param(datetime(2026, 11, 23, 8, 30, 1, 5), id="naive-datetime"),
    pytest.param(datetime(2026, 11, 23, 8, 30, tzinfo=timezone(timedelta(hours=5))), id="aware-dt"),
    pytest.param(date(2026, 1, 31), id="date"),
    pytest.param(UUID("12345678-1234-5678-1234-567812345678"), id="uuid"),
    pytest.param(Decimal("19.990"), id="decimal-keeps-exponent"),
    pytest.param({1: "int key", (2, 3): "tuple key"}, id="non-str-keys"),
    pytest.param({" t": [1, 2]}, id="dict-that-looks-like-a-tag"),
    pytest.param({" o": {" t": 1}}, id="dict-that-looks-like-the-escape"),
    pytest.param([{"cart": [("sku", 2)], "when": datetime(2020, 1, 1, tzinfo=UTC)}], id="mixed"),
    pytest.param("</script>\u2028\U0001f600", id="unicode-string"),
    pytest.param({"m": [Markup("<em>saved</em>"), ("x", Markup("&amp;"))]}, id="markup"),
    pytest.param({" h": "<em>not markup</em>"}, id="dict-that-looks-like-markup"),
]


@pytest.mark.parametrize("value", VALUES)
def test_supported_values_round_trip_with_their_types(value: Any) -> None:
    restored = serialization.loads(serialization.dumps(value))
    assert restored == value
    assert type(restored) is type(value)


def test_markup_comes_back_as_markup_so_templates_do_not_escape_it() -> None:
    restored = serialization.loads(serialization.dumps([Markup("<em>saved</em>"), "<em>"]))
    assert type(restored[0]) is Markup
    assert type(restored[1]) is str
    assert Markup("{}").format(restored[0]) == "<em>saved</em>"
    assert Markup("{}").format(restored[1]) == "&lt;em&gt;"


def test_any_object_with_html_is_stored_as_its_markup() -> None:
    class Link:
        def __html__(self) -> str:
            return '<a href="/">home</a>'

    assert serialization.loads(serialization.dumps(Link())) == Markup('<a href="/">home</a>')


def test_a_markup_tag_holding_a_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed 'h' tag"):
        serialization.loads('{" h":[1]}')


def test_output_is_compact_ascii_json() -> None:
    text = serialization.dumps({"name": "Zoë", "n": [1, 2]})
    assert text == '{"name":"Zo\\u00eb","n":[1,2]}'
    assert json.loads(text) == {"name": "Zoë", "n": [1, 2]}


def test_an_equal_set_always_serializes_the_same() -> None:
    # Change detection compares serialized bytes: set order must not look like a change.
    assert serialization.dumps({"b", "a", "c"}) == serialization.dumps({"c", "b", "a"})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # 0 and 8 share a slot in a small set's table: which comes first in iteration
        # depends on insertion order, and "a" makes the elements unsortable.
        pytest.param([0, 8, "a"], [8, 0, "a"], id="mixed-types"),
        pytest.param([0.0, 8.0, None], [8.0, 0.0, None], id="floats-and-none"),
    ],
)
def test_a_set_that_does_not_sort_still_serializes_the_same(
    first: list[Any], second: list[Any]
) -> None:
    assert serialization.dumps(set(first)) == serialization.dumps(set(second))


def test_a_set_of_decimals_with_nan_serializes() -> None:
    # Decimal NaN raises on comparison (InvalidOperation), so it cannot be sorted.
    value = {Decimal("NaN"), Decimal("1.5")}
    restored = serialization.loads(serialization.dumps(value))
    assert sorted(map(str, restored)) == ["1.5", "NaN"]


def test_unknown_type_names_the_type_and_where_it_is() -> None:
    class Cart:
        pass

    with pytest.raises(TypeError, match=r"Cart at session\['user'\]\['cart'\]\[1\]"):
        serialization.dumps({"cart": [1, Cart()]}, where="session['user']")


def test_value_that_contains_itself_is_a_clear_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        serialization.dumps(loop)


def test_pickle_data_is_never_unpickled() -> None:
    payload = pickle.dumps({"a": 1})
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is the type, not a message
        serialization.loads(payload)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{" u":"not-a-uuid"}', id="bad-uuid"),
        pytest.param('{" $":"NaNx1"}', id="bad-decimal"),
        pytest.param('{" d":42}', id="datetime-not-a-string"),
        pytest.param('{" b":"***"}', id="bad-base64"),
        pytest.param('{" m":[[1]]}', id="bad-map"),
        pytest.param('{" o":[]}', id="bad-escape"),
    ],
)
def test_malformed_tag_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is the type, not a message
        serialization.loads(text)


def test_deeply_nested_json_raises_recursion_error_not_a_crash() -> None:
    with pytest.raises(RecursionError):
        serialization.loads("[" * 100_000 + "]" * 100_000)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.dates()
    | st.uuids()
    | st.decimals(allow_nan=False),
    lambda children: (
        st.lists(children)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children)
        | st.frozensets(st.integers())
    ),
    max_leaves=20,
)


@settings(suppress_health_check=[HealthCheck.too_slow])  # generation is slow on a busy machine
@given(json_values)
def test_any_supported_value_round_trips(value: Any) -> None:
    assert serialization.loads(serialization.dumps(value)) == value


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(timedelta(microseconds=1), id="one-microsecond"),
        pytest.param(-timedelta(microseconds=500_000), id="minus-half-a-second"),
        pytest.param(timedelta(seconds=5, microseconds=1), id="seconds-and-microseconds"),
    ],
)
def test_a_utc_offset_of_less_than_a_second_keeps_its_microseconds(offset: timedelta) -> None:
    # datetime.fromisoformat reads "+00:00:00.000001" as a zero offset (found by
    # tests/security/test_properties.py); the serializer must not lose it.
    value = datetime(2000, 1, 1, tzinfo=timezone(offset))
    back = serialization.loads(serialization.dumps(value))
    assert back == value
    assert back.utcoffset() == offset
