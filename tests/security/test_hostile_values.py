"""Hostile values in bodies and parameters: a 400 that says why, never a 500 or a
huge answer (issue 16, items 4, 5, 6 and 12)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.test import Client

from wsgisession import RequestLimits, RequestScope, body, param, rules

from ..conftest import text_app


def client_for(model: type[Any], limits: RequestLimits | None = None) -> Client:
    return Client(RequestScope(text_app(lambda request: repr(body(model))), limits=limits))


def errors_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text
    return response.json["errors"]  # type: ignore[no-any-return]


def post_json(client: Client, raw: str) -> Any:
    return client.post(
        "/", data=raw, content_type="application/json", headers={"Accept": "application/json"}
    )


# -- item 4: an integer too big for a float ---------------------------------------


def test_a_json_integer_too_big_for_a_float_field_is_a_field_error() -> None:
    @dataclass
    class Price:
        amount: float

    response = post_json(client_for(Price), '{"amount": 1' + "0" * 400 + "}")
    assert errors_of(response) == [
        {"field": "amount", "message": "must be a number within the range of a float"}
    ]
    assert post_json(client_for(Price), '{"amount": 12}').text.endswith("Price(amount=12.0)")


# -- item 5: naive against aware datetimes --------------------------------------


@dataclass
class AfterNaive:
    at: datetime = field(metadata=rules(ge=datetime(2020, 1, 1)))


@dataclass
class AfterAware:
    at: datetime = field(metadata=rules(ge=datetime.fromisoformat("2020-01-01T00:00:00+00:00")))


def test_an_aware_datetime_against_a_naive_bound_is_a_400_saying_why() -> None:
    response = post_json(client_for(AfterNaive), '{"at": "2024-05-01T10:00:00+02:00"}')
    assert errors_of(response) == [
        {"field": "at", "message": "must be a date and time without a time zone"}
    ]
    ok = post_json(client_for(AfterNaive), '{"at": "2024-05-01T10:00:00"}')
    assert ok.status_code == 200


def test_a_naive_datetime_against_an_aware_bound_is_a_400_saying_why() -> None:
    response = client_for(AfterAware).post(
        "/", data={"at": "2024-05-01T10:00:00"}, headers={"Accept": "application/json"}
    )
    assert errors_of(response) == [
        {"field": "at", "message": "must be a date and time with a time zone (such as +00:00)"}
    ]


# -- item 6: long lists are refused before their items are converted -----------


@dataclass
class Ids:
    ids: list[int] = field(metadata=rules(max_length=10))


def test_a_list_over_max_length_is_one_error_found_before_converting_items() -> None:
    raw = json.dumps({"ids": ["x"] * 90_000})  # under the 500 KB limit of a JSON body
    response = post_json(client_for(Ids), raw)
    assert errors_of(response) == [{"field": "ids", "message": "must have at most 10 items"}]
    assert len(response.data) < 200


def test_no_more_than_100_errors_are_listed() -> None:
    @dataclass
    class Many:
        ids: list[int]

    response = post_json(client_for(Many), json.dumps({"ids": ["x"] * 90_000}))
    errors = errors_of(response)
    assert len(errors) == 101
    assert errors[0] == {"field": "ids[0]", "message": "must be an integer"}
    assert errors[-1] == {
        "field": None,
        "message": "too many errors: only the first 100 are listed",
    }
    assert len(response.data) < 10_000


# -- item 12: decimals with absurd exponents ---------------------------------------


@pytest.mark.parametrize("amount", ["9e999999999", "1e-999999999", "0e999999999", "1" * 1001])
def test_a_decimal_parameter_of_absurd_size_is_a_400(amount: str) -> None:
    client = Client(RequestScope(text_app(lambda request: f"{param('amount', Decimal):.2f}")))
    response = client.get("/", query_string={"amount": amount})
    assert response.status_code == 400
    assert client.get("/?amount=12.5").text == "12.50"


def test_a_decimal_field_of_absurd_size_is_a_field_error() -> None:
    @dataclass
    class Payment:
        amount: Decimal

    client = client_for(Payment)
    for raw in ('"9e999999999"', '"1E-999999999"', "1" + "0" * 1001):
        response = post_json(client, f'{{"amount": {raw}}}')
        assert errors_of(response) == [
            {"field": "amount", "message": "must have at most 1000 digits"}
        ]
    ok = post_json(client, '{"amount": "19.99"}')
    assert ok.text.endswith("Payment(amount=Decimal('19.99'))")


def test_the_decimal_digit_limit_is_a_setting() -> None:
    limits = RequestLimits(max_decimal_digits=5)
    client = Client(
        RequestScope(text_app(lambda request: str(param("amount", Decimal))), limits=limits)
    )
    assert client.get("/?amount=123.45").text == "123.45"
    assert client.get("/?amount=1234.56").status_code == 400
    assert client.get("/?amount=1e5").status_code == 400
