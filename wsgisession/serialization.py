"""Tagged JSON: the one format session values are stored in.

Session data leaves the process (in a cookie, in Redis, in SQLite), so it must be
serialized. wsgisession never uses pickle: unpickling data an attacker can influence
runs their code (Beaker's CVE-2013-7489). Plain JSON is safe but loses types, so the
types a session commonly holds are *tagged*: a one-key object whose key starts with a
space, the way Flask's ``TaggedJSONSerializer`` does it.

======================  ==============================
Python value            JSON
======================  ==============================
``tuple``               ``{" t": [...]}``
``set``                 ``{" s": [...]}``
``frozenset``           ``{" f": [...]}``
``bytes``               ``{" b": "<base64>"}``
``datetime``            ``{" d": "<ISO 8601>"}``
``date``                ``{" D": "<ISO 8601>"}``
``UUID``                ``{" u": "<hex>"}``
``Decimal``             ``{" $": "<str>"}``
``Markup`` [#]_         ``{" h": "<html>"}``
dict with non-str keys  ``{" m": [[key, value], ...]}``
dict that looks tagged  ``{" o": [key, value]}``
======================  ==============================

.. [#] Any object with an ``__html__`` method (markupsafe's ``Markup``, what Jinja and
   Flask use for HTML that must not be escaped again) is stored as its HTML and read
   back as a ``markupsafe.Markup``, so ``flash(Markup("<em>saved</em>"))`` still
   renders as HTML. markupsafe is imported only if installed (it comes with
   werkzeug); without it the value comes back as a plain ``str``.

Everything else JSON can hold (``str``, ``int``, ``float``, ``bool``, ``None``,
``list``, ``dict``) is written as itself, compactly. Any other type raises
:class:`TypeError` naming the type and where in the value it was found.

With `orjson <https://github.com/ijl/orjson>`_ installed (``pip install
"sessionlayer[speedups]"``), it encodes and decodes what it handles exactly as the
standard library does, three to ten times faster: values made of ``dict``,
``list``, ``str``, ``int``, ``bool`` and ``None`` that encode to ASCII, and, when
reading, untagged JSON with no number 19 digits long. Everything else takes the
standard library's path. ``tests/test_serialization_speedups.py`` checks the two
agree, byte for byte when writing.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the speedups extra is optional
    _orjson = None

try:
    from markupsafe import Markup as _Markup
except ImportError:  # pragma: no cover - markupsafe comes with werkzeug
    _Markup = str  # type: ignore[assignment,misc]

__all__ = ["dumps", "loads"]

_SCALARS = frozenset({str, int, float, bool, type(None)})

# The byte DEL, as an int: `b"\x7f" in data` first tries the needle as an int and
# formats a TypeError it then discards (1.8 k instructions, eight times the
# search); an int needle, or bytes.find(), goes straight to the search.
_DEL = 0x7F

# No check_circular: a value that contains itself already fails in _needs_tags or
# in the C encoder with RecursionError, which dumps() reports as a ValueError; the
# check's bookkeeping would cost every save about a sixth of the encoding.
_encode = json.JSONEncoder(
    separators=(",", ":"),
    default=lambda o: _default(o),
    check_circular=False,
).encode
_decode_plain = json.JSONDecoder().decode
_decode_tagged = json.JSONDecoder(object_hook=lambda d: _untag(d)).decode


def dumps(value: Any, *, where: str = "the value") -> str:
    """Serialize *value* to compact tagged JSON (an ASCII ``str``).

    The same value gives the same text, with or without orjson.

    :param value: The value to serialize.
    :param where: What *value* is (``"session['cart']"``), used only to say where an
        unsupported value was found.
    :raises TypeError: *value* holds something that is not a supported type.
    :raises ValueError: *value* contains itself.
    """
    try:
        if _orjson is not None and _plain(value):
            try:
                text: bytes = _orjson.dumps(value)
            except _orjson.JSONEncodeError:
                pass  # an integer beyond 64 bits, a lone surrogate, nesting over 254
            else:
                # The standard library escapes the rest as \uXXXX: DEL too.
                if text.isascii() and _DEL not in text:
                    return text.decode("ascii")
        return _encode(_tag(value) if _needs_tags(value) else value)
    except RecursionError as exc:
        raise ValueError(
            f"cannot serialize {where}: it is nested too deeply or contains itself"
        ) from exc
    except (TypeError, ValueError) as exc:
        found = _find_unsupported(value, where)
        if found is None:
            raise
        path, obj = found
        raise TypeError(
            f"cannot serialize {type(obj).__module__}.{type(obj).__qualname__} at {path}:"
            " session values must be str, int, float, bool, None, list, dict, tuple,"
            " set, frozenset, bytes, datetime, date, UUID, Decimal or Markup"
        ) from exc


def loads(text: str | bytes) -> Any:
    """Deserialize tagged JSON made by :func:`dumps`.

    :raises ValueError: *text* is not valid JSON, or a tag holds a malformed value.
    :raises RecursionError: *text* is nested too deeply to be real session data.
    """
    if isinstance(text, bytes):
        return loads_known(text)[0]
    # A tag can only appear as '{" ' in compact JSON (inside a string a quote is
    # always escaped), so most payloads take the all-C path with no object hook.
    if '{" ' in text:
        return _decode_tagged(text)
    return _decode_plain(text)


# orjson reads an integer beyond 64 bits as a float, silently. Such a number has
# at least 19 digits in a row: every digit maps to "0", and a run of 19 found by
# bytes.find (a regex search cost ten times more) that could start a number sends
# the text to the standard library. A run inside a string only costs the fast path.
# (The exponent letters and the decimal point become "." for loads_known's float check.)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789eE", b"000000000..")
_NINETEEN = b"0" * 19


def _long_number(text: bytes, mapped: bytes) -> bool:
    """Whether *text* (*mapped*: its digits as ``0``) may hold a number of 19+ digits."""
    start = mapped.find(_NINETEEN)
    while start != -1:
        if start == 0 or text[start - 1] in b"-,:[ \t\r\n":
            return True
        # Inside a string, so is the rest of the run: look on from the next quote.
        quote = text.find(b'"', start)
        if quote == -1:
            return True
        start = mapped.find(_NINETEEN, quote)
    return False


def loads_known(text: bytes) -> tuple[Any, bool]:
    """:func:`loads`, and whether :func:`dumps_known` may rely on the result.

    ``True``: orjson read *text*, which was untagged JSON with no float, so every
    value in the result is a ``dict``, ``list``, ``str``, ``int``, ``bool`` or
    ``None``, and orjson reads *text* again exactly so (:func:`loads_again`).
    """
    if text.find(b'{" ') != -1:  # see loads(); find(), as for _DEL
        return _decode_tagged(text.decode("utf-8")), False
    if _orjson is not None:
        mapped = text.translate(_DIGITS_AS_ZERO)
        if not _long_number(text, mapped):
            try:
                value = _orjson.loads(text)
            except _orjson.JSONDecodeError:
                pass  # NaN, a lone surrogate, deep nesting: the standard library decides
            else:
                # A JSON float always has a digit just before its ".", "e" or "E";
                # orjson spells some differently, so dumps_known leaves them alone.
                # (A string such as "v1.2" looks like one too: that only costs the
                # full check on a write.)
                return value, mapped.find(b"0.") == -1
    return _decode_plain(text.decode("utf-8")), False


def loads_again(text: bytes, known: bool) -> Any:
    """Read *text* again, as :func:`loads_known` did when it answered *known*."""
    if known and _orjson is not None:
        return _orjson.loads(text)
    return loads(text)


def copy_known(value: Any) -> Any:
    """A deep copy of a value :func:`loads_known` read when it answered ``True``.

    Such a value holds only ``dict``, ``list``, ``str``, ``int``, ``bool`` and
    ``None``, which orjson writes and reads back exactly: one round trip in C, the
    value a fresh :func:`loads_again` of its text would give.
    """
    return _orjson.loads(_orjson.dumps(value))


def dumps_known(data: dict[str, Any], changed: Iterable[str]) -> str | None:
    """:func:`dumps` of *data*, checking only the values under *changed*, or ``None``.

    The other values must be as :func:`loads_known` read them when it answered
    ``True`` (or as this function wrote them). ``None``: this fast path does not
    apply (a changed value is not plain); call :func:`dumps`.
    """
    text = dumps_known_list(data, data, changed)
    return None if text is None else text.decode("ascii")


def dumps_known_list(value: Any, data: dict[str, Any], changed: Iterable[str]) -> bytes | None:
    """:func:`dumps` of *value*, encoded, checking only *data*'s values under *changed*.

    *value* is *data* itself or a ``list`` of *data* and ``int`` values (a cookie
    payload, ``[created, data]``): encoding it in one call gives the bytes that
    ``b"[%d,%s]" % (created, dumps(data).encode())`` gives, without the copies.
    As :func:`dumps_known` otherwise; ``None``: call :func:`dumps`.
    """
    if _orjson is None:
        return None
    if len(data) == 1 and next(iter(data))[:1] == " ":
        return None
    for key in changed:
        item = data.get(key)
        if type(key) is not str or (type(item) not in _PLAIN_LEAVES and not _plain(item)):
            return None
    try:
        text: bytes = _orjson.dumps(value)
    except _orjson.JSONEncodeError:
        return None
    if text.isascii() and _DEL not in text:
        return text
    return None


_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether orjson writes *value* byte for byte as the standard library does.

    Exact types only: a ``str`` subclass may be ``Markup``, and orjson writes
    tuples, UUIDs, dataclasses and enums natively where they must be tagged or
    refused. No floats (orjson spells ``1e+16`` as ``1e16``), only ``str`` keys and
    no tag-like one-key dict. Non-ASCII text is caught after encoding.
    """
    t = type(value)
    if t is dict:
        if len(value) == 1:
            k = next(iter(value))
            if type(k) is str and k[:1] == " ":
                return False
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _PLAIN_LEAVES and not _plain(v)):
                return False
        return True
    if t is list:
        for v in value:  # noqa: SIM110 - any() with a generator is what this avoids
            if type(v) not in _PLAIN_LEAVES and not _plain(v):
                return False
        return True
    return t in _PLAIN_LEAVES


def _needs_tags(value: Any) -> bool:
    """Whether *value* holds something the JSON encoder would silently change.

    Types the encoder rejects (``set``, ``datetime`` …) reach :func:`_default` by
    themselves; only tuples, non-``str`` keys and tag-like keys need a rewrite.
    """
    # Runs on every save over the whole session, so scalars (most values) are
    # checked inline rather than through a call and a generator each.
    t = type(value)
    if t is dict:
        if len(value) == 1:
            k = next(iter(value))
            if type(k) is not str or k[:1] == " ":
                return True
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and _needs_tags(v)):
                return True
        return False
    if t is list:
        for v in value:  # noqa: SIM110 - any() with a generator is what this avoids
            if type(v) not in _SCALARS and _needs_tags(v):
                return True
        return False
    if t in _SCALARS:
        return False
    # Markup is a str the encoder would write as a plain string: tag it.
    return t is tuple or isinstance(value, (list, dict, tuple)) or hasattr(value, "__html__")


def _tag(value: Any) -> Any:
    t = type(value)
    if t in _SCALARS:
        return value
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            if len(value) == 1:
                k, v = next(iter(value.items()))
                if k[:1] == " ":
                    return {" o": [k, _tag(v)]}
            return {k: _tag(v) for k, v in value.items()}
        return {" m": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {" t": [_tag(v) for v in value]}
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if hasattr(value, "__html__"):
        return {" h": str(value.__html__())}
    return value  # leaves the encoder handles itself or hands to _default


# Types whose values sort in a total order among themselves (not float or Decimal:
# NaN; not datetime: naive and aware ones do not compare).
_TOTALLY_ORDERED = frozenset({str, int, bytes, UUID, date})


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    # Sorting keeps the output the same in every process and for every insertion
    # order (set order depends on both), so an unchanged set never looks like a
    # change. Sets of other or mixed types are ordered by their JSON.
    first = next(iter(items), None)
    if type(first) in _TOTALLY_ORDERED and all(type(v) is type(first) for v in items):
        return [_tag(v) for v in sorted(items)]
    return sorted((_tag(v) for v in items), key=_encode)


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return {" d": o.isoformat()}
    if isinstance(o, date):
        return {" D": o.isoformat()}
    if isinstance(o, UUID):
        return {" u": o.hex}
    if isinstance(o, Decimal):
        return {" $": str(o)}
    if isinstance(o, (bytes, bytearray)):
        return {" b": b64encode(o).decode("ascii")}
    if isinstance(o, set):
        return {" s": _sorted(o)}
    if isinstance(o, frozenset):
        return {" f": _sorted(o)}
    raise TypeError(f"Object of type {type(o).__name__} is not supported")


_SUBSECOND_OFFSET = re.compile(r"([+-])00:00:00\.(\d{6})\Z")


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    # CPython (3.11, 3.12) reads an offset under one second ("+00:00:00.000001", as
    # isoformat() writes it) as zero: read its microseconds ourselves.
    match = _SUBSECOND_OFFSET.search(text)
    if match and value.tzinfo is not None and not value.utcoffset():
        offset = timedelta(microseconds=int(match[2]))
        value = value.replace(tzinfo=timezone(-offset if match[1] == "-" else offset))
    return value


_TAGS: dict[str, Callable[[Any], Any]] = {
    " t": tuple,
    " s": set,
    " f": frozenset,
    " b": lambda v: b64decode(v, validate=True),
    " d": _datetime,
    " D": date.fromisoformat,
    " u": UUID,
    " $": Decimal,
    " h": lambda v: _Markup(_html(v)),
    " m": lambda v: {k: item for k, item in v},
    " o": lambda v: {str(v[0]): v[1]},
}


def _html(v: Any) -> str:
    if type(v) is not str:
        raise TypeError("the HTML of a Markup tag must be a string")
    return v


def _untag(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        k, v = next(iter(d.items()))
        fn = _TAGS.get(k)
        if fn is not None:
            try:
                return fn(v)
            except (TypeError, ArithmeticError, IndexError) as exc:
                raise ValueError(f"malformed {k.strip()!r} tag") from exc
    return d


def _find_unsupported(value: Any, path: str) -> tuple[str, Any] | None:
    """Locate the first value :func:`dumps` cannot handle, for the error message."""
    if (
        type(value) in _SCALARS
        or isinstance(value, (datetime, date, UUID, Decimal, bytes, bytearray))
        or hasattr(value, "__html__")
    ):
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = _find_unsupported(k, f"{path} (a key)") or _find_unsupported(v, f"{path}[{k!r}]")
            if sub:
                return sub
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            sub = _find_unsupported(v, f"{path}[{i}]")
            if sub:
                return sub
        return None
    return path, value
