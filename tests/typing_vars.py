"""Checked by mypy in test_vars.py: what mypy infers for typed variables and params.

Not a test module (never imported by pytest); every line is a claim about types.
"""

from __future__ import annotations

from decimal import Decimal
from typing import assert_type

from werkzeug.datastructures import FileStorage

from wsgisession import RequestVar, SessionVar, optional_param, param, params


class SVar:
    username = SessionVar(str)
    is_admin = SessionVar(bool, default=False)
    cart = SessionVar(list[int])


class RVar:
    title = RequestVar(str)


def check() -> None:
    assert_type(SVar.username, SessionVar[str])
    assert_type(SVar.username.get(), str)
    assert_type(SVar.username.get(None), str | None)
    assert_type(SVar.is_admin.get(), bool)
    assert_type(SVar.cart.get(), list[int])
    assert_type(SVar.username.remove(), str | None)
    assert_type(SVar.username.is_defined, bool)
    assert_type(SVar().username, SessionVar[str])
    assert_type(RVar.title.get(), str)

    assert_type(param("q"), str)
    assert_type(param("page", int), int)
    assert_type(param("price", Decimal), Decimal)
    assert_type(param("avatar", FileStorage), FileStorage)
    assert_type(optional_param("page", int), int | None)
    assert_type(optional_param("q"), str | None)
    assert_type(params("id", int), list[int])
    assert_type(params("tag"), list[str])
