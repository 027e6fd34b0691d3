"""The ``wsgisession`` command: a development server and tools for sessions.

::

    wsgisession serve myapp:app --store sqlite:///sessions.sqlite3 --reload
    wsgisession secret
    wsgisession inspect COOKIE --secret-key KEY [--store URL]
    wsgisession check --store redis://cache.internal:6379/0
    wsgisession gc --store sqlite:////var/lib/myapp/sessions.sqlite3
    wsgisession migrate --store postgresql://app@db.internal/app
    wsgisession migrate --encrypt --store redis://cache.internal:6379/0 --secret-key KEY
    wsgisession migration-status myapp.wsgi:app

``serve`` is werkzeug's development server, for your own machine only: it serves
one request at a time per thread, has no protection against slow clients and is
not tuned. In production run gunicorn behind a reverse proxy (nginx, a load
balancer); ``serve`` prints the command.

Settings come as in :func:`~wsgisession.from_config`: ``--config`` names a TOML
file, ``WSGISESSION_*`` environment variables override it, and the options given
here override both. ``serve`` exports its options as ``WSGISESSION_*`` variables
before importing the app, so they also reach an app that calls ``from_config()``
itself and the process werkzeug's reloader starts; an app wrapped already in a
middleware that does not use them is refused, rather than served without them.

Every error is one line on stderr. The exit status is 0 on success, 1 for an
error (a bad setting, a store that does not work, an invalid cookie, a busy port),
2 for a usage error (an unknown option, a missing argument, a value of the wrong
form) and 130 when interrupted (Ctrl-C; ``serve``, which runs until then, exits 0).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.metadata
import inspect as _inspect
import os
import secrets
import shlex
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from werkzeug.serving import run_simple

from ..config import from_config, middleware_options, store_from_url
from ..errors import SessionError
from ..middleware import SessionMiddleware
from ..signing import Keyring
from ..stores.base import ServerSessionStore
from ..stores.cookie import CookieStore
from ..stores.postgres import PostgresStore
from ..stores.redis import RedisStore
from ..stores.sqlite import SQLiteStore
from ..testing import find_middleware
from ._common import CommandError, _must_exist, _settings
from ._cookie_report import _inspect_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["main"]

_PROG = "wsgisession"


def _load_app(spec: str) -> WSGIApplication:
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    factory = attr.endswith("()")  # module:create_app(), as gunicorn accepts
    name = attr.removesuffix("()")
    if not module_name or not name.isidentifier():
        raise CommandError(
            f"{spec!r} is not MODULE:APP (for example myapp.wsgi:app or myapp:create_app())"
        )
    if os.getcwd() not in sys.path:  # as gunicorn does: the app is usually right here
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CommandError(
                f"no module named {exc.name!r}: run from the directory that holds it,"
                " or check the spelling of MODULE:APP"
            ) from None
        raise CommandError(f"importing {module_name!r} failed: {_where(exc)}") from None
    except Exception as exc:  # the user's module is broken: say where, in one line
        raise CommandError(f"importing {module_name!r} failed: {_where(exc)}") from None
    app = getattr(module, name, None)
    if app is None or not callable(app):
        raise CommandError(f"module {module_name!r} has no WSGI application named {name!r}")
    if factory:
        try:
            app = app()
        except Exception as exc:
            raise CommandError(f"{spec} failed: {_where(exc)}") from None
        if not callable(app):
            raise CommandError(f"{spec} returned {app!r}, not a WSGI application")
    return app  # type: ignore[no-any-return]


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{place}"


def _session_middleware_in(app: Any) -> SessionMiddleware | None:
    """The SessionMiddleware *app* already is or wraps (through ProxyFix, Flask …)."""
    try:
        return find_middleware(app)
    except LookupError:
        return None


def _check_port(host: str, port: int) -> None:
    # werkzeug binds only after the banner is out; a busy port must fail first.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as werkzeug chooses
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {_why(exc, host)}") from None


def _why(exc: OSError, host: str) -> str:
    """Why a bind failed, from its errno, and which option fixes it."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {host!r} ({reason}): check --host"
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use (another server holds it): stop it, or pick another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"this machine has no address {host} ({reason}): use --host 127.0.0.1 (this"
            " machine only), 0.0.0.0 (every interface) or one of its own addresses"
        )
    if exc.errno == errno.EACCES:
        return f"{reason}: ports below 1024 need root; pick another with --port"
    return f"{reason}: check --host and --port"


def _ignored(args: argparse.Namespace, found: SessionMiddleware, options: dict[str, Any]) -> str:
    """The options that *found*, the app's own middleware, does not use ('' if none).

    The middleware the app built keeps its own settings: serve can only pass the
    options on as WSGISESSION_* variables, which from_config() and init_app() read
    and a SessionMiddleware(...) built in code does not. Rebuilding it here would
    leave the app's references to it (device tracking, event callbacks, store
    wrappers) on the old one, so an option it does not use is refused instead.
    """
    ignored = [f"--config {args.config}"] if args.config else []
    if args.store is not None and repr(found.store) != repr(options["store"]):
        ignored.append(f"--store {args.store}")
    if args.secret_key is not None and found.keyring.keys[0] != args.secret_key.encode():
        ignored.append("--secret-key")
    return ", ".join(ignored)


def _serve(args: argparse.Namespace) -> int:
    # Every value is checked before anything else: the port, the app, the banner.
    if args.secret_key == "":
        raise CommandError("--secret-key is empty: `wsgisession secret` prints a new key")
    options = middleware_options(args.config, environ=_settings(args, ("secret_key", "store")))
    if args.config and args.no_wrap:
        raise CommandError(
            f"--config {args.config} is read only for an app serve wraps, and --no-wrap"
            " serves it as it is: drop one of the two"
        )
    for name in ("secret_key", "store"):
        if getattr(args, name) is not None:
            os.environ[f"WSGISESSION_{name.upper()}"] = getattr(args, name)
    random_key = None
    if not args.no_wrap and not args.config and not os.environ.get("WSGISESSION_SECRET_KEY"):
        # Exported, so the reloader's process signs with the same key.
        random_key = os.environ["WSGISESSION_SECRET_KEY"] = secrets.token_urlsafe(32)
    first = not os.environ.get("WERKZEUG_RUN_MAIN")  # not again in the reloader's child
    if first:
        _check_port(args.host, args.port)
    app = _load_app(args.app)
    found = _session_middleware_in(app)
    if found is not None and (ignored := _ignored(args, found, options)):
        raise CommandError(
            f"{args.app} is wrapped in SessionMiddleware already, with sessions in"
            f" {found.store!r}, so {ignored} would be ignored: build that middleware with"
            " wsgisession.from_config(app) (it reads the WSGISESSION_* variables serve"
            " sets from --store and --secret-key; from_config(app, FILE) reads a file),"
            " or give it the settings in your code and drop the options"
        )
    if found is not None or args.no_wrap:
        store = repr(found.store) if found is not None else "none (not wrapped)"
        wrap_hint = ""
    else:
        found = from_config(app, args.config)
        app, store = found, repr(found.store)
        wrap_hint = (
            f"\n  gunicorn serves {args.app} as it is: wrap it there first,"
            " e.g. app = wsgisession.from_config(app)"
        )
    note = ""
    if (
        random_key is not None
        and found is not None
        and found.keyring.keys[0] == random_key.encode()
    ):
        note = "No secret key given: using a random one, so sessions end with this server.\n"
    if first:
        print(
            f"{note}Serving {args.app} on http://{args.host}:{args.port}/ with sessions in"
            f" {store}.\nThis is a development server: do not use it in production. Run"
            f" gunicorn behind a reverse proxy instead:\n  gunicorn --workers 4 --bind"
            f" 127.0.0.1:8000 {shlex.quote(args.app)}{wrap_hint}",
            flush=True,
        )
    run_simple(args.host, args.port, app, use_reloader=args.reload, threaded=True)
    return 0


# -- secret ----------------------------------------------------------------------


def _secret(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(32))
    return 0


# -- gc --------------------------------------------------------------------------


def _store_url(args: argparse.Namespace, example: str) -> str:
    url: str | None = args.store or os.environ.get("WSGISESSION_STORE")
    if not url:
        raise CommandError(f"no store: pass --store URL ({example}) or set WSGISESSION_STORE")
    return url


def _gc(args: argparse.Namespace) -> int:
    store = store_from_url(_store_url(args, "sqlite:///relative/path or sqlite:////absolute/path"))
    _must_exist(store)
    purge = getattr(store, "gc", None)
    if not callable(purge):
        if isinstance(store, RedisStore):
            print(f"{store!r}: Redis expires sessions by itself (TTL); nothing to purge")
            return 0
        raise CommandError(
            f"{store!r} has no stored sessions to purge: gc is for SQLite and PostgreSQL stores"
        )
    try:
        batched = "limit" in _inspect.signature(purge).parameters
        total, started = 0, time.monotonic()
        while True:
            removed = int(purge(limit=args.batch_size) if batched else purge())
            total += removed
            print(f"purged {total} expired sessions so far…", file=sys.stderr, flush=True)
            if not batched or removed < args.batch_size:
                break
    finally:
        if isinstance(store, ServerSessionStore):
            store.close()
    elapsed = time.monotonic() - started
    print(f"purged {total} expired session{'s' * (total != 1)} from {store!r} in {elapsed:.1f} s")
    return 0


# -- check -----------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    environ = dict(_settings(args, ("store",)))
    if args.config:
        options = middleware_options(args.config, environ=environ)
        store = options.get("store")
    else:
        url = environ.get("WSGISESSION_STORE")
        if not url:
            raise CommandError(
                "no store: pass --store URL or --config FILE, or set WSGISESSION_STORE"
            )
        store = store_from_url(url)
    if not isinstance(store, ServerSessionStore):
        print(f"{store or CookieStore()!r} keeps sessions in the cookie: nothing to check")
        return 0
    try:
        # A check reports; it creates nothing: no SQLite file, no PostgreSQL table.
        if isinstance(store, SQLiteStore):
            _must_exist(store)
            store.check_file()
        else:
            if isinstance(store, PostgresStore):
                store.create_table = False
            store.ping()
    finally:
        store.close()
    print(f"{store!r} works")
    return 0


# -- migrate ---------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    if args.secret_key is not None and not args.encrypt:
        raise CommandError("--secret-key is only for migrate --encrypt")
    store = store_from_url(_store_url(args, "postgresql://user@host/db"))
    if args.encrypt:
        return _encrypt(args, store)
    migrate = getattr(store, "migrate", None)
    if not callable(migrate):
        print(f"{store!r} needs no migration: it creates what it needs by itself")
        return 0
    try:
        migrate()
    finally:
        if isinstance(store, ServerSessionStore):
            store.close()
    print(f"{store!r} is ready")
    return 0


def _encrypt(args: argparse.Namespace, store: Any) -> int:
    if not isinstance(store, SQLiteStore | RedisStore | PostgresStore):
        raise CommandError(
            f"{store!r} cannot be encrypted in place: --encrypt is for SQLite, Redis and"
            " PostgreSQL stores (memory:// is not at rest; cookies: cookie://?encrypt=true)"
        )
    keys = ("WSGISESSION_SECRET_KEY", "WSGISESSION_FALLBACK_SECRET_KEYS")
    environ = {k: v for k, v in _settings(args, ("secret_key",)).items() if k in keys}
    options = middleware_options(None, environ=environ)
    if not options.get("secret_key"):
        raise CommandError(
            "no secret key: pass --secret-key KEY or set WSGISESSION_SECRET_KEY, the app's"
            " own (its fallback keys from WSGISESSION_FALLBACK_SECRET_KEYS)"
        )
    keyring = Keyring(options["secret_key"], options.get("fallback_secret_keys", ()))
    _must_exist(store)
    started = time.monotonic()
    try:
        if isinstance(store, PostgresStore):
            store.migrate()
        report = store.encrypt_records(keyring.keys)
    finally:
        store.close()
    elapsed = time.monotonic() - started
    print(
        f"sealed {report.sealed} of {report.records} session{'s' * (report.records != 1)}"
        f" in {store!r} under the current key in {elapsed:.1f} s (the others already were)"
    )
    if report.refused:
        raise CommandError(
            f"{report.refused} stored session{'s' * (report.refused != 1)} did not open with"
            " the keys given and were left as they are: if that is most of them, the key is"
            " not the app's (pass its current key and its fallback keys); otherwise they"
            " were altered, and the app refuses them too"
        )
    return 0


# -- migration-status ------------------------------------------------------------


def _migration_status(args: argparse.Namespace) -> int:
    app = _load_app(args.app)
    middleware = _session_middleware_in(app)
    if middleware is None and type(app).__module__.startswith("django."):
        # Django's WSGI handler: its session middleware is made from the settings.
        from ..contrib.django import session_middleware

        middleware = session_middleware()
    if middleware is None:
        raise CommandError(f"{args.app} has no SessionMiddleware (init_app, wrap, from_config)")
    migration = middleware.migration
    if migration is None:
        print(f"{args.app} carries no sessions over: it has no migrate_from reader")
        return 0
    status = migration.status()
    print(f"reading: {status.source} ({migration.reader.cookie.name!r} cookies)")
    if status.remaining is not None:
        print(f"old sessions not carried over yet: {status.remaining}")
    if status.until is not None:
        print(f"old cookies honoured until: {status.until.isoformat()}")
    print(
        "done: the reader can be removed"
        if status.done
        else "not done: keep the reader (each process logs what it carries over)"
    )
    return 0


# -- the parser ------------------------------------------------------------------


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def _version() -> str:
    """``wsgisession 1.0.0rc1 (sessionlayer)``: the version of the distribution installed.

    Looked up by the import package, since the distribution's name is not the import
    name (``wsgisession`` on the package index is another project's).
    """
    provided_by = importlib.metadata.packages_distributions().get(_PROG, [])
    for name in dict.fromkeys(["sessionlayer", *provided_by]):
        try:
            return f"{_PROG} {importlib.metadata.version(name)} ({name})"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"{_PROG}: version unknown (no installed distribution provides it)"


class _Version(argparse.Action):
    """``--version``: looks the version up only when asked."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(_version())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """An argument parser that keeps its options and commands, for _dashed_values()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Each option string, and whether it takes a value.
        self.options: dict[str, bool] = {}
        #: The subcommands, by name.
        self.commands: dict[str, _Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*names, **kwargs)
        for name in action.option_strings:
            self.options[name] = action.nargs is None
        return action

    def error(self, message: str) -> NoReturn:
        """A usage error: one line, as every other error, and exit status 2."""
        self.exit(2, f"{_PROG}: error: {message} (see {self.prog} --help)\n")


def _parser() -> _Parser:
    parser = _Parser(
        prog=_PROG, description="Sessions for WSGI apps: a development server and tools."
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version installed and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = commands.choices

    def settings(sub: argparse.ArgumentParser, store_help: str) -> None:
        sub.add_argument(
            "--secret-key", metavar="KEY", help="the app's secret key (or WSGISESSION_SECRET_KEY)"
        )
        sub.add_argument("--store", metavar="URL", help=store_help)
        sub.add_argument(
            "--config", metavar="FILE", help="a TOML file of settings, as for from_config()"
        )

    serve = commands.add_parser(
        "serve",
        help="run the development server (not for production)",
        description="Serve MODULE:APP with werkzeug's development server, wrapped in"
        " SessionMiddleware unless it already is. For development only: in production"
        " run gunicorn behind a reverse proxy.",
    )
    serve.add_argument("app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp.wsgi:app")
    settings(serve, "where sessions live (a store URL; default: the cookie)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=5000, help="port to listen on (5000)")
    serve.add_argument("--reload", action="store_true", help="restart when the code changes")
    serve.add_argument(
        "--no-wrap", action="store_true", help="serve the app as it is, without SessionMiddleware"
    )
    serve.set_defaults(run=_serve)

    secret = commands.add_parser(
        "secret",
        help="print a new random secret key",
        description="Print a new secret key: 32 random bytes, URL-safe base64.",
    )
    secret.set_defaults(run=_secret)

    inspect = commands.add_parser(
        "inspect",
        help="verify and decode a session cookie",
        description="Verify and decode a session cookie (signed, encrypted, or a"
        " server-side id looked up in --store): print its data, age and expiry, or"
        " exactly why it is invalid (exit status 1).",
    )
    inspect.add_argument("cookie", metavar="COOKIE", help="the cookie's value (or NAME=VALUE)")
    settings(
        inspect,
        "the app's store: a server store's URL, or cookie://?encrypt=true (default: cookie://)",
    )
    inspect.add_argument("--cookie-name", help="the app's cookie_name (default: session)")
    inspect.set_defaults(run=_inspect_cookie)

    gc = commands.add_parser(
        "gc",
        help="purge expired sessions from a SQLite or PostgreSQL store",
        description="Purge expired sessions from the store (SQLite, PostgreSQL: Redis and"
        " the cookie expire by themselves), in short transactions, showing progress on"
        " stderr.",
    )
    gc.add_argument("--store", metavar="URL", help="the store URL (or WSGISESSION_STORE)")
    gc.add_argument(
        "--batch-size", type=_positive, default=1000, help="sessions per transaction (1000)"
    )
    gc.set_defaults(run=_gc)

    check = commands.add_parser(
        "check",
        help="check that the session store works",
        description="Connect to the store now and check it can be written (SQLite: the"
        " file and its directory; Redis, PostgreSQL: that the server answers), as the"
        " middleware does at start-up; exit status 1 with the reason if not.",
    )
    check.add_argument("--store", metavar="URL", help="the store URL (or WSGISESSION_STORE)")
    check.add_argument(
        "--config", metavar="FILE", help="a TOML file of settings, as for from_config()"
    )
    check.set_defaults(run=_check)

    migrate = commands.add_parser(
        "migrate",
        help="create a PostgreSQL store's table and index; --encrypt: seal stored sessions",
        description="Create the schema, table and expiry index a PostgreSQL store needs,"
        " if missing (the store also does it on first use, given the rights). With"
        " --encrypt, seal every session stored in a SQLite, Redis or PostgreSQL store in"
        " place, under the app's secret key, while the app keeps serving.",
    )
    migrate.add_argument("--store", metavar="URL", help="the store URL (or WSGISESSION_STORE)")
    migrate.add_argument(
        "--encrypt",
        action="store_true",
        help="seal each stored value under the secret key (for encrypt=true stores)",
    )
    migrate.add_argument(
        "--secret-key",
        metavar="KEY",
        help="with --encrypt: the app's secret key (or WSGISESSION_SECRET_KEY)",
    )
    migrate.set_defaults(run=_migrate)

    status = commands.add_parser(
        "migration-status",
        help="how the carrying over of the replaced system's sessions is going",
        description="Load the app, and say how many old sessions its migrate_from reader"
        " has left to carry over and until when old cookies are honoured: whether the"
        " reader can be removed.",
    )
    status.add_argument("app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp.wsgi:app")
    status.set_defaults(run=_migration_status)
    return parser


def _dashed_values(parser: _Parser, argv: Sequence[str]) -> list[str]:
    """``argv`` with values that start with ``-`` made unambiguous for argparse.

    A session id, a signed cookie and a key from ``wsgisession secret`` are URL-safe
    base64, which starts with ``-`` one time in 64; argparse takes such a word for an
    unknown option. A word that is none of the command's options becomes
    ``--option=word`` after an option that takes a value, else a positional after
    ``--``.
    """
    args = list(argv)
    start = next((i for i, word in enumerate(args) if not word.startswith("-")), None)
    if start is None or args[start] not in parser.commands:
        return args
    known = parser.commands[args[start]].options

    def option(word: str) -> str | None:
        if not word.startswith("-") or word in ("-", "--"):
            return None
        name = word.split("=", 1)[0]
        if name in known:
            return name
        matches = [o for o in known if name.startswith("--") and o.startswith(name)]
        return matches[0] if len(matches) == 1 else None

    def dashed(word: str) -> bool:
        return word.startswith("-") and word not in ("-", "--") and option(word) is None

    rewritten: list[str] = []
    positional: list[str] = []
    i = start + 1
    while i < len(args) and args[i] != "--":
        word, name = args[i], option(args[i])
        takes_value = name is not None and known[name] and "=" not in word
        if takes_value and i + 1 < len(args) and dashed(args[i + 1]):
            rewritten.append(f"{word}={args[i + 1]}")
            i += 1
        elif dashed(word):
            positional.append(word)
        else:
            rewritten.append(word)
        i += 1
    head = [*args[: start + 1], *rewritten]
    if not positional:
        return [*head, *args[i:]]
    return [*head, "--", *positional, *args[i + 1 :]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wsgisession`` command; returns the exit status.

    :param argv: The arguments, without the program name; default ``sys.argv[1:]``.
    """
    parser = _parser()
    args = parser.parse_args(_dashed_values(parser, sys.argv[1:] if argv is None else argv))
    try:
        return int(args.run(args))
    except (CommandError, SessionError, OSError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
