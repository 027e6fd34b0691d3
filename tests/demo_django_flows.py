"""The Django demo's flows through Django's own test client, in a process of its own.

Run by ``tests/test_demo.py`` in a subprocess: the demo configures Django with its
own settings (``demo.django_app.settings``), which a process can do only once, and
the rest of the suite configures Django its way. ``WSGISESSION_DEMO_VAR`` is where
``migrate`` puts the database.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from demo.django_app import create_app


@pytest.fixture(scope="module", autouse=True)
def site() -> Any:
    """Set Django up, migrate and seed the users, as ``make demo-django`` does."""
    return create_app()


@pytest.fixture
def client() -> Any:
    from django.test import Client

    return Client(enforce_csrf_checks=True)


def token(client: Any, path: str = "/") -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).text)
    assert match, "every page with a form carries Django's CSRF token"
    return match.group(1)


def post(client: Any, path: str, **data: str) -> Any:
    return client.post(path, {"csrfmiddlewaretoken": token(client), **data})


def test_request_session_counts_visits_with_the_shared_layout(client: Any) -> None:
    first = client.get("/")
    assert "visited this page 1 time " in first.text
    assert '<link rel="stylesheet" href="/static/demo.css">' in first.text
    assert first["Cache-Control"] == "no-store"
    assert "visited this page 2 times" in client.get("/").text
    assert client.session["visits"] == 2


def test_the_seeded_users_are_real_django_users() -> None:
    from django.contrib.auth.models import User

    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert (alice.is_staff, alice.is_superuser, bob.is_staff) == (True, True, False)
    assert alice.check_password("wonderland")


def test_login_with_django_auth_and_messages(client: Any) -> None:
    assert "<h1>Hello, stranger!</h1>" in client.get("/").text
    answer = post(client, "/login", username="bob", password="builder")
    assert answer.status_code == 303
    page = client.get("/").text
    assert '<p class="flash flash-success" role="status">Welcome back, Bob.</p>' in page
    assert "Logged in as <b>Bob</b>" in page
    assert "<h1>Hello, Bob!</h1>" in page, "no profile name: the user's name"
    post(client, "/profile", name="Robert", email="bob@example.com")
    assert "<h1>Hello, Robert!</h1>" in client.get("/").text, "the profile name wins"
    assert client.session.get_expire_at_browser_close(), "not remembered"


def test_remember_me_keeps_the_session_past_the_browser(client: Any) -> None:
    post(client, "/login", username="bob", password="builder", remember="1")
    assert not client.session.get_expire_at_browser_close()


def test_form_errors_by_the_fields_with_the_input_kept(client: Any) -> None:
    answer = post(client, "/profile", name="Ada", email="nope")
    assert answer.status_code == 400
    assert 'id="email-error">Enter an e-mail address, such as alice@example.com.<' in answer.text
    assert 'value="nope"' in answer.text
    blank = post(client, "/cart", item="  ")
    assert (blank.status_code, 'id="item-error"' in blank.text) == (400, True)


def test_the_admin_refuses_bob_with_the_sites_403_and_lets_alice_in(client: Any) -> None:
    visitor = client.get("/admin/", follow=True)
    assert visitor.redirect_chain[-1][0] == "/login?next=%2Fadmin%2F"
    post(client, "/login", username="bob", password="builder")
    refused = client.get("/admin/")
    assert refused.status_code == 403
    assert "This page needs the admin role." in refused.text
    post(client, "/logout")
    post(client, "/login", username="alice", password="wonderland")
    assert "Site administration" in client.get("/admin/").text


def test_a_stale_form_after_logout_gets_a_friendly_page(client: Any) -> None:
    post(client, "/login", username="alice", password="wonderland")
    stale = token(client, "/cart")
    post(client, "/logout")
    answer = client.post("/cart", {"csrfmiddlewaretoken": stale, "item": "pear"})
    assert answer.status_code == 403
    assert "This form was out of date" in answer.text


def test_a_wrong_method_is_a_page_not_an_empty_body(client: Any) -> None:
    answer = client.get("/logout")
    assert answer.status_code == 405
    assert '<p class="error-code">405</p>' in answer.text
    assert answer["Allow"] == "POST"
