"""msgspec Structs for test_body (imported only when msgspec is installed).

msgspec resolves string annotations in the module's globals, so the Structs cannot
be local to a test in a module with ``from __future__ import annotations``.
"""

from __future__ import annotations

import msgspec


class Line(msgspec.Struct):
    qty: int


class Cart(msgspec.Struct):
    lines: list[Line]
    coupon: str | None = None


class Query(msgspec.Struct):
    page: int
    tags: list[str] = msgspec.field(default_factory=list)
