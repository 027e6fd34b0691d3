"""The README's examples of server-side stores run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from werkzeug.test import Client
from werkzeug.wrappers import Request

from tests.conftest import SECRET, text_app
from wsgisession import ServerSessionStore, SessionMiddleware, SQLiteStore, from_config, session

README = (Path(__file__).parent.parent / "README.md").read_text()


def code_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return str(block)


def visits(request: Request) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return str(session["visits"])


def test_the_custom_store_example_keeps_sessions_and_honours_create() -> None:
    namespace: dict[str, Any] = {}
    exec(code_block("python", "class DictStore"), namespace)  # noqa: S102
    store = namespace["DictStore"]()
    assert isinstance(store, ServerSessionStore)
    client = Client(SessionMiddleware(text_app(visits), secret_key=SECRET, store=store))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert store.save("gone", {"a": b"1"}, (), 60, create=False) is False


def test_the_toml_example_configures_a_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "sessions.toml"
    path.write_text(code_block("toml", "[wsgisession]").replace('"…"', f'"{SECRET}"'))
    mw = from_config(text_app(visits), path, environ={})
    assert isinstance(mw.store, SQLiteStore)
    assert mw.store.path == "/var/lib/myapp/sessions.sqlite3"
    assert mw.cookie.name == "__Host-session"


def test_every_django_compat_exception_is_named_with_its_reason() -> None:
    import tomllib

    path = Path(__file__).parent / "compat" / "django" / "exceptions.toml"
    with path.open("rb") as file:
        exceptions = tomllib.load(file)["exception"]
    table = README[README.index("#### Differences from Django") :]
    for entry in exceptions:
        assert f"| `{entry['test']}` |" in table, entry["test"]
        assert entry["reason"] in table, entry["test"]


def test_the_devices_example_lists_revokes_and_guards_the_password_page(
    tmp_path: Path, monkeypatch: Any, clock: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"SECRET_KEY": SECRET}
    exec(code_block("python", "track_devices(sessions)"), namespace)  # noqa: S102
    sessions = namespace["sessions"]
    laptop, phone = Client(sessions), Client(sessions)
    laptop.get("/login?user=ann&remember=1")
    phone.get("/login?user=ann")
    listed = laptop.get("/devices").text.splitlines()
    assert len(listed) == 2
    assert sum(line.endswith("(this browser)") for line in listed) == 1
    other = next(line for line in listed if not line.endswith("(this browser)"))
    assert laptop.get(f"/revoke?handle={other.split()[0]}").text == "True"
    assert phone.get("/").status_code == 401
    clock.advance(601)
    assert laptop.get("/account/password").status_code == 401  # login no longer fresh
    laptop.get("/login?user=ann")
    phone.get("/login?user=ann")
    assert laptop.get("/account/password").text == "1 other session(s) ended"
    assert phone.get("/").status_code == 401
    sessions.store.close()


def test_the_limits_example_raises_the_form_limits() -> None:
    from wsgisession import optional_param

    namespace: dict[str, Any] = {
        "app": text_app(lambda request: str(optional_param("f0"))),
        "SECRET_KEY": SECRET,
    }
    exec(code_block("python", "limits = RequestLimits("), namespace)  # noqa: S102
    client = Client(namespace["app"])
    fields = "&".join(f"f{i}=x" for i in range(3000))
    form = {"data": fields, "content_type": "application/x-www-form-urlencoded"}
    assert client.post("/", **form).text == "x"
    assert (
        client.post("/", data="&".join([fields] * 2), content_type=form["content_type"]).status_code
        == 413
    )


def test_the_remember_me_example_sets_the_cookie_lifetime() -> None:
    namespace: dict[str, Any] = {}
    exec(code_block("python", "def log_in"), namespace)  # noqa: S102
    client = Client(namespace["app"])
    remembered = client.post("/", data={"user": "ada", "remember": "on"})
    assert f"Max-Age={30 * 86400}" in remembered.headers["Set-Cookie"]
    forgotten = Client(namespace["app"]).post("/", data={"user": "ada"})
    assert "Max-Age" not in forgotten.headers["Set-Cookie"]


def test_the_flask_remember_me_example_gives_a_permanent_session_or_not() -> None:
    import flask

    from wsgisession.contrib.flask import init_app

    app = flask.Flask(__name__)
    app.secret_key = SECRET
    init_app(app)
    namespace: dict[str, Any] = {
        "app": app,
        "flask": flask,
        "check_password": lambda form: form["user"],
    }
    exec(code_block("python", "flask.session.permanent = "), namespace)  # noqa: S102
    client = app.test_client()
    remembered = client.post("/login", data={"user": "alice", "remember": "on"})
    assert f"Max-Age={31 * 86400}" in remembered.headers["Set-Cookie"]
    browser = app.test_client().post("/login", data={"user": "alice"})
    assert "Max-Age" not in browser.headers["Set-Cookie"]
