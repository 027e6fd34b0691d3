"""Session as a mapping, detached from any middleware (as in unit tests of views)."""

from __future__ import annotations

import pytest

from wsgisession import Session


def test_detached_session_is_a_plain_mutable_mapping() -> None:
    s = Session(data={"a": 1})
    s["b"] = [2]
    s.update(c=3)
    del s["a"]
    assert dict(s) == {"b": [2], "c": 3}
    assert len(s) == 2
    assert "b" in s
    assert s.get("missing", "default") == "default"
    assert s.pop("c") == 3
    assert s.setdefault("d", 4) == 4


def test_detached_session_tracks_accessed_and_modified() -> None:
    s = Session(data={"a": 1})
    assert s.accessed
    assert not s.modified
    s["a"] = 2
    assert s.modified


def test_keys_must_be_strings() -> None:
    with pytest.raises(TypeError, match="session keys must be str"):
        Session()[1] = "x"  # type: ignore[index]


def test_clear_and_regenerate_count_as_modifications() -> None:
    s = Session(data={"a": 1})
    s.clear()
    assert s.modified
    assert dict(s) == {}
    t = Session(data={"a": 1})
    t.regenerate()
    assert t.modified
    assert dict(t) == {"a": 1}


def test_new_is_true_for_a_session_with_no_client_state() -> None:
    assert Session().new


def test_repr_shows_the_data() -> None:
    assert repr(Session(data={"a": 1})) == "<Session {'a': 1}>"
