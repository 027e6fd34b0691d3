"""A small bounded memo for the answers of pure functions on request headers.

A browser sends the same ``Cookie`` header, and so the same session cookie, until a
response changes it, so most requests can skip work already done for an earlier
one: parsing the header, verifying the cookie's signature (HMAC, base64, zlib, or
AES-GCM). Only answers that are a pure function of the input and of keys that
never change for the owner are kept, so a remembered answer is the answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["MEMO_SIZE", "Memo"]

#: How many answers each memo keeps.
MEMO_SIZE = 256

_V = TypeVar("_V")


class Memo(Generic[_V]):
    """The answers for the last :data:`MEMO_SIZE` inputs (the oldest goes first).

    Callers put only answers that succeeded: a session cookie that verified or that
    the middleware issued itself, never a forged one, which is checked in full each
    time. Safe to share between threads: each step is one call into the
    ``OrderedDict``'s C code.
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = MEMO_SIZE) -> None:
        # OrderedDict: dropping the oldest is O(1); next(iter()) on a plain dict
        # walks past every slot deleted since its last resize.
        self._entries: OrderedDict[Hashable, _V] = OrderedDict()
        self._size = size

    def get(self, key: Hashable) -> _V | None:
        """The answer remembered for *key*, if any."""
        return self._entries.get(key)

    def answer(self, key: str, compute: Callable[[str], _V]) -> _V:
        """The answer for *key*: remembered, or ``compute(key)``, remembered now.

        An exception from *compute* (a forged value) propagates; nothing is kept.
        """
        answer = self._entries.get(key)
        if answer is None:
            answer = compute(key)
            self.put(key, answer)
        return answer

    def put(self, key: Hashable, answer: _V) -> None:
        """Remember *answer* for *key*."""
        entries = self._entries
        entries[key] = answer
        if len(entries) > self._size:
            try:  # noqa: SIM105 - contextlib.suppress costs a microsecond per call
                entries.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                pass

    def __len__(self) -> int:
        return len(self._entries)
