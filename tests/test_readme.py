"""Every Python snippet in README.md and docs/ runs as written; some also do what they say.

A block preceded by ``<!-- no-test: reason -->`` is not run (a fragment, or code for
a library being replaced); that list is kept short, each with its reason.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

import wsgisession.testing
from tests.conftest import SECRET, text_app
from wsgisession import ServerSessionStore, SessionMiddleware, SQLiteStore, from_config, session

ROOT = Path(__file__).parent.parent
#: The pages whose snippets are checked: the README and every page of the docs.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {page: page.read_text() for page in PAGES}
README = TEXT[ROOT / "README.md"]

_BLOCK = re.compile(
    r"(?:<!-- (?P<skip>no-test[^>]*) -->\n)?"
    r"(?P<indent>[ ]*)```(?P<language>\w+)\n(?P<body>.*?)^(?P=indent)```",
    re.DOTALL | re.MULTILINE,
)


def snippets(language: str) -> list[tuple[Path, int, str, str | None]]:
    """Every *language* block of every page: (page, line, code, no-test reason or None)."""
    found = []
    for page, text in TEXT.items():
        for match in _BLOCK.finditer(text):
            if match["language"] != language:
                continue
            indent = len(match["indent"])
            body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
            line = text.count("\n", 0, match.start("body")) + 1
            found.append((page, line, body, match["skip"]))
    return found


def code_block(language: str, containing: str) -> str:
    """The one *language* block, on any page, that contains *containing*."""
    (block,) = [code for _, _, code, _ in snippets(language) if containing in code]
    return block


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
    # The example's /var/lib/myapp need not exist here: the start-up check is off.
    mw = from_config(text_app(visits), path, environ={"WSGISESSION_CHECK_STORE": "false"})
    assert isinstance(mw.store, SQLiteStore)
    assert mw.store.path == "/var/lib/myapp/sessions.sqlite3"
    assert mw.cookie.name == "__Host-session"
    assert mw.limits is not None
    assert mw.limits.max_form_parts == 5000


def test_every_django_compat_exception_is_named_with_its_reason() -> None:
    import tomllib

    path = Path(__file__).parent / "compat" / "django" / "exceptions.toml"
    with path.open("rb") as file:
        exceptions = tomllib.load(file)["exception"]
    django_page = TEXT[ROOT / "docs" / "django.md"]
    table = django_page[django_page.index("## Differences from Django") :]
    for entry in exceptions:
        assert f"| `{entry['test']}` |" in table, entry["test"]
        assert entry["reason"] in table, entry["test"]


def test_the_devices_example_lists_revokes_and_guards_the_password_page(
    tmp_path: Path, monkeypatch: Any, clock: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    namespace: dict[str, Any] = {}
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


def test_the_session_cap_example_ends_the_oldest_and_says_why(
    tmp_path: Path, monkeypatch: Any, clock: Any
) -> None:
    from wsgisession import track_devices

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    namespace: dict[str, Any] = {}
    exec(code_block("python", "track_devices(capped, max_per_user=3)"), namespace)  # noqa: S102
    capped = namespace["capped"]
    browsers = [Client(capped) for _ in range(4)]
    for browser in browsers:
        assert browser.get("/login?user=ann").text == "logged in"
        clock.advance(1)
    first = browsers[0].get("/").text
    assert first == "anonymous\nYou were logged out: you logged in on another device."
    assert browsers[0].get("/").text == "anonymous"
    assert [b.get("/").text for b in browsers[1:]] == ["ann"] * 3
    # The same app with when_full="refuse": a fifth login is refused with a 409.
    track_devices(capped, max_per_user=3, when_full="refuse")
    refused = Client(capped).get("/login?user=ann")
    assert refused.status_code == 409
    assert "log out on one of them" in refused.text
    capped.store.close()


def test_the_limits_example_raises_the_form_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsgisession import RequestLimits, optional_param

    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    namespace: dict[str, Any] = {}
    exec(code_block("python", "limits = RequestLimits("), namespace)  # noqa: S102
    assert isinstance(namespace["limits"], RequestLimits)
    # The example's limits, around an app that reads the form.
    app = SessionMiddleware(
        text_app(lambda request: str(optional_param("f0"))),
        secret_key=SECRET,
        limits=namespace["limits"],
    )
    client = Client(app)
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


def test_the_flask_remember_me_example_gives_a_permanent_session_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    namespace: dict[str, Any] = {"__name__": "flask_remember_me_example"}
    exec(code_block("python", "flask.session.permanent = "), namespace)  # noqa: S102
    app = namespace["app"]
    client = app.test_client()
    remembered = client.post("/login", data={"user": "alice", "remember": "on"})
    assert f"Max-Age={31 * 86400}" in remembered.headers["Set-Cookie"]
    browser = app.test_client().post("/login", data={"user": "alice"})
    assert "Max-Age" not in browser.headers["Set-Cookie"]


# docs/testing.md's first example is a test of its own (it runs with the other
# snippets below): broken in either way that matters, it must fail.
TESTING_EXAMPLE = "with session_transaction(client) as saved:"


@contextmanager
def _saves_nothing(client: Client, **options: Any) -> Iterator[dict[str, Any]]:
    yield {}


def test_the_testing_example_fails_if_session_transaction_saves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wsgisession.testing, "session_transaction", _saves_nothing)
    with pytest.raises(AssertionError):
        exec(code_block("python", TESTING_EXAMPLE), {})  # noqa: S102


def test_the_testing_example_fails_if_its_variable_shadows_session() -> None:
    # The mistake the example once made: `as session` replaced the proxy the app reads,
    # so the app saw the transaction's session whatever the client sent.
    shadowed = (
        code_block("python", TESTING_EXAMPLE)
        .replace(" as saved:", " as session:")
        .replace("saved[", "session[")
    )
    with pytest.raises(AssertionError):
        exec(shadowed, {})  # noqa: S102


def test_the_pytest_plugin_example_passes(wsgisession_client: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(code_block("python", "def test_visits(wsgisession_client)"), namespace)  # noqa: S102
    namespace["test_visits"](wsgisession_client)


PYTHON = snippets("python")


@pytest.mark.parametrize(
    ("page", "line", "code"),
    [
        pytest.param(page, line, code, id=f"{page.relative_to(ROOT)}:{line}")
        for page, line, code, skip in PYTHON
        if skip is None
    ],
)
def test_every_python_snippet_runs_as_written(
    page: Path, line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run where a user would: an empty working directory, a deployment's secret key
    # in the environment. Every other name comes from the snippet's own imports.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    # A module of its own, as an imported file is (dataclasses look it up).
    module = types.ModuleType(f"snippet_{page.stem.replace('-', '_')}_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102
    for value in namespace.values():
        if isinstance(value, SessionMiddleware) and isinstance(value.store, ServerSessionStore):
            value.store.close()


def test_few_snippets_are_left_out_and_each_says_why() -> None:
    skipped = [(page.name, line, skip) for page, line, _, skip in PYTHON if skip is not None]
    assert len(skipped) <= 5, skipped
    for entry in skipped:
        assert entry[2].startswith("no-test: "), entry
        assert len(entry[2]) > len("no-test: ") + 10, entry  # a reason, not a word
    assert len(PYTHON) >= 30  # the extraction found the docs' snippets at all
