"""One settings table: every argument of SessionMiddleware is a setting everywhere.

Each keyword argument of :class:`~wsgisession.SessionMiddleware` is accepted, with
the same name and the same check, by :func:`~wsgisession.from_config` (a dict, a
TOML file, ``WSGISESSION_*`` variables), the command line's ``--config``, Flask's
``init_app`` and Django's ``WSGISESSION``. A new argument without a sample here
fails the first test; one that a surface does not read fails the others.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.wrappers import Response

from wsgisession import RequestLimits, SessionMiddleware, SQLiteStore, from_config
from wsgisession.contrib.flask import init_app
from wsgisession.errors import ConfigurationError
from wsgisession.migration import OldCookie

from .conftest import SECRET
from .djangoapp import django_app


def outage_page(refusal: Exception, environ: dict[str, Any]) -> Response:
    """An error_page for the samples."""
    return Response("down", status=503)


class LegacyReader:
    """A migration reader for the samples: reads nothing."""

    cookie = OldCookie("legacy_sid")
    client_side = False

    def read(self, value: str) -> dict[str, Any] | None:
        return None

    def remaining(self) -> int | None:
        return 0


legacy_reader = LegacyReader()
UNTIL = datetime(2027, 1, 31, tzinfo=UTC)


#: A value for each argument but ``app`` and ``store``: as Python or TOML gives it,
#: as an environment variable spells it, and what the middleware must receive.
SAMPLES: dict[str, tuple[Any, str, Any]] = {
    "secret_key": ("s" * 40, "s" * 40, "s" * 40),
    "fallback_secret_keys": (["o" * 40], "o" * 40, ["o" * 40]),
    "cookie_name": ("sid", "sid", "sid"),
    "max_age": (600, "600", 600),
    "absolute_max_age": (86400, "86400", 86400),
    "refresh_interval": (60, "60", 60),
    "path": ("/app", "/app", "/app"),
    "domain": ("example.com", "example.com", "example.com"),
    "secure": (True, "true", True),
    "httponly": (False, "false", False),
    "samesite": ("Strict", "Strict", "Strict"),
    "partitioned": (True, "true", True),
    "no_store": (False, "false", False),
    "rotation_grace": (30, "30", 30),
    "limits": (
        {"max_form_parts": 5000},
        '{"max_form_parts": 5000}',
        RequestLimits(max_form_parts=5000),
    ),
    "error_page": (f"{__name__}:outage_page", f"{__name__}:outage_page", outage_page),
    "check_store": (False, "false", False),
    "migrate_from": (f"{__name__}:legacy_reader", f"{__name__}:legacy_reader", legacy_reader),
    "migrate_until": (UNTIL.isoformat(), UNTIL.isoformat(), UNTIL),
    "header": ("X-Auth-Token", "X-Auth-Token", "X-Auth-Token"),
}
STORE = "memory://"


def test_every_middleware_argument_has_a_sample() -> None:
    arguments = set(inspect.signature(SessionMiddleware).parameters) - {"app", "store"}
    assert arguments == set(SAMPLES)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every SessionMiddleware built meanwhile."""
    calls: list[dict[str, Any]] = []
    original = SessionMiddleware.__init__

    def spy(self: SessionMiddleware, app: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        original(self, app, **kwargs)

    monkeypatch.setattr(SessionMiddleware, "__init__", spy)
    return calls


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b""]


def toml_value(value: Any) -> str:
    """*value* as TOML (what the samples hold: str, bool, int, lists and tables)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def toml_file(tmp_path: Path, settings: dict[str, Any]) -> Path:
    path = tmp_path / "sessions.toml"
    lines = ["[wsgisession]"] + [
        f"{name} = {toml_value(value)}" for name, value in settings.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def base(name: str) -> dict[str, Any]:
    if name == "migrate_until":  # an end date is for a migration
        return {"secret_key": SECRET, "migrate_from": f"{__name__}:legacy_reader"}
    return {} if name == "secret_key" else {"secret_key": SECRET}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_from_config_takes_every_argument_from_a_dict(
    name: str, built: list[dict[str, Any]]
) -> None:
    native, _, expected = SAMPLES[name]
    from_config(app, {**base(name), "store": STORE, name: native}, environ={})
    assert built[-1][name] == expected


@pytest.mark.parametrize("name", list(SAMPLES))
def test_from_config_takes_every_argument_from_a_toml_file(
    name: str, built: list[dict[str, Any]], tmp_path: Path
) -> None:
    native, _, expected = SAMPLES[name]
    from_config(app, toml_file(tmp_path, {**base(name), "store": STORE, name: native}), environ={})
    assert built[-1][name] == expected


@pytest.mark.parametrize("name", list(SAMPLES))
def test_from_config_takes_every_argument_from_the_environment(
    name: str, built: list[dict[str, Any]]
) -> None:
    _, spelled, expected = SAMPLES[name]
    environ = {"WSGISESSION_STORE": STORE, f"WSGISESSION_{name.upper()}": spelled}
    from_config(app, base(name), environ=environ)
    assert built[-1][name] == expected


@pytest.mark.parametrize("name", list(SAMPLES))
def test_flask_init_app_takes_every_argument(name: str, built: list[dict[str, Any]]) -> None:
    native, _, expected = SAMPLES[name]
    flask_app = flask.Flask(__name__)
    flask_app.secret_key = SECRET
    extra = {key: value for key, value in base(name).items() if key != "secret_key"}
    sessions = init_app(flask_app, store=STORE, **extra, **{name: native})
    assert sessions.session_middleware() is not None
    assert built[-1][name] == expected


@pytest.mark.parametrize("name", list(SAMPLES))
def test_django_wsgisession_takes_every_argument(name: str, built: list[dict[str, Any]]) -> None:
    native, _, expected = SAMPLES[name]
    django_app(
        [],
        ["wsgisession.contrib.django.SessionMiddleware"],
        WSGISESSION={**base(name), "store": STORE, name: native},
    )
    assert built[-1][name] == expected


def test_the_command_line_takes_every_argument_from_its_config_file(tmp_path: Path) -> None:
    settings = {name: native for name, (native, _, _) in SAMPLES.items()}
    SQLiteStore(tmp_path / "s.sqlite3").ping()  # `check` creates no database
    path = toml_file(tmp_path, {**settings, "store": f"sqlite:///{tmp_path / 's.sqlite3'}"})
    done = subprocess.run(
        [sys.executable, "-m", "wsgisession", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "works" in done.stdout


def build_with(surface: str, settings: dict[str, Any]) -> None:
    if surface == "dict":
        from_config(app, settings, environ={})
    elif surface == "flask":
        # Flask's middleware is built at the first request (Flask's settings may
        # change until then): build it now.
        init_app(flask.Flask(__name__), **settings).session_middleware()
    else:
        django_app([], ["wsgisession.contrib.django.SessionMiddleware"], WSGISESSION=settings)


@pytest.mark.parametrize("surface", ["dict", "flask", "django"])
def test_a_bad_value_gets_the_same_error_everywhere(surface: str) -> None:
    settings = {"secret_key": SECRET, "store": STORE, "limits": {"max_form_partz": 1}}
    with pytest.raises(ConfigurationError) as failed:
        build_with(surface, settings)
    assert "unknown limit 'max_form_partz': did you mean 'max_form_parts'?" in str(failed.value)


@pytest.mark.parametrize("surface", ["dict", "toml", "env", "flask", "django"])
def test_every_surface_turns_the_cookie_off_for_header_sessions(
    surface: str, built: list[dict[str, Any]], tmp_path: Path
) -> None:
    # TOML has no null: cookie_name = false (or "none") turns the cookie off.
    off = {"cookie_name": False, "header": "X-Auth-Token"}
    if surface == "dict":
        from_config(app, {"secret_key": SECRET, "store": STORE, **off}, environ={})
    elif surface == "toml":
        from_config(
            app, toml_file(tmp_path, {"secret_key": SECRET, "store": STORE, **off}), environ={}
        )
    elif surface == "env":
        environ = {"WSGISESSION_COOKIE_NAME": "none", "WSGISESSION_HEADER": "X-Auth-Token"}
        from_config(app, {"secret_key": SECRET, "store": STORE}, environ=environ)
    elif surface == "flask":
        flask_app = flask.Flask(__name__)
        flask_app.secret_key = SECRET
        init_app(flask_app, store=STORE, cookie_name=None, header="X-Auth-Token")
        flask_app.extensions["wsgisession"].session_middleware()
    else:
        django_app(
            [],
            ["wsgisession.contrib.django.SessionMiddleware"],
            WSGISESSION={"store": STORE, "cookie_name": None, "header": "X-Auth-Token"},
        )
    assert built[-1]["cookie_name"] is None
    assert built[-1]["header"] == "X-Auth-Token"


@pytest.mark.parametrize("surface", ["dict", "flask", "django"])
def test_a_cookie_off_without_a_header_gets_the_same_error_everywhere(surface: str) -> None:
    settings = {"secret_key": SECRET, "store": STORE, "cookie_name": None}
    with pytest.raises(ConfigurationError) as failed:
        build_with(surface, settings)
    assert "sessions need a header to travel in: add header='X-Auth-Token'" in str(failed.value)


@pytest.mark.parametrize("surface", ["dict", "flask", "django"])
def test_a_bad_session_header_gets_the_same_error_everywhere(surface: str) -> None:
    settings = {"secret_key": SECRET, "store": STORE, "header": "Cookie"}
    with pytest.raises(ConfigurationError) as failed:
        build_with(surface, settings)
    assert "header='Cookie' names a header HTTP gives a meaning of its own" in str(failed.value)
