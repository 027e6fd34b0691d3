"""The peers, each serving the same three workloads: Beaker, Flask, Flask-Session, Django.

Every builder raises ``ImportError`` when its library is missing: the run reports the
peer as skipped (``pip install -e '.[bench]'`` installs them all).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import SECRET, SESSION, Client, RedisTarget, Suite, plain_app

#: Django's URLconf (``ROOT_URLCONF`` is this module); filled in by :func:`_django`.
urlpatterns: list[Any] = []

# -- Beaker ----------------------------------------------------------------------


def _beaker(name: str, notes: str, compare: str, **options: Any) -> Suite:
    from beaker.middleware import SessionMiddleware as BeakerSessions

    def seed(environ: dict[str, Any]) -> None:
        session = environ["beaker.session"]
        session.update(SESSION)
        session.save()

    def untouched(environ: dict[str, Any]) -> None:
        pass

    def read(environ: dict[str, Any]) -> None:
        environ["beaker.session"]["user_id"]

    def write(environ: dict[str, Any]) -> None:
        session = environ["beaker.session"]
        session["counter"] += 1
        session.save()

    options = {"key": "session", "secret": SECRET, "timeout": 1209600, **options}
    clients = {}
    for mode, view in (("untouched", untouched), ("read", read), ("write", write)):
        seeder = Client(BeakerSessions(plain_app(seed), **options), "/", "session")
        seeder.check()
        app = BeakerSessions(plain_app(view), **options)
        clients[mode] = Client(app, "/", "session", seeder.cookie)
        clients[mode].check()
    return Suite(name, "wsgi", clients, notes, compare=compare)


def beaker_cookie(redis: RedisTarget | None, tmp: Path) -> Suite:
    from beaker.crypto import get_crypto_module

    get_crypto_module("cryptography")  # ImportError without its AES backend
    return _beaker(
        "Beaker cookie (encrypted)",
        "type=cookie, AES via cryptography, JSON",
        "wsgisession cookie (encrypted)",
        type="cookie",
        encrypt_key=SECRET,
        validate_key=SECRET,
        crypto_type="cryptography",
        data_serializer="json",
    )


def beaker_memory(redis: RedisTarget | None, tmp: Path) -> Suite:
    return _beaker("Beaker memory", "type=memory", "wsgisession LRUStore", type="memory")


def beaker_redis(redis: RedisTarget | None, tmp: Path) -> Suite:
    if redis is None:
        raise ImportError("no Redis")
    made = _beaker(
        "Beaker Redis", "type=ext:redis", "wsgisession RedisStore", type="ext:redis", url=redis.url
    )
    made.redis = True
    return made


# -- Flask and Flask-Session -----------------------------------------------------


def _flask_app(configure: Callable[[Any], None]) -> Any:
    import flask

    app = flask.Flask("bench")
    app.secret_key = SECRET
    configure(app)

    @app.route("/seed")
    def seed() -> str:
        flask.session.update(SESSION)
        return "ok"

    @app.route("/untouched")
    def untouched() -> str:
        return "ok"

    @app.route("/read")
    def read() -> str:
        flask.session["user_id"]
        return "ok"

    @app.route("/write")
    def write() -> str:
        flask.session["counter"] += 1
        return "ok"

    return app


def _flask_clients(app: Any) -> dict[str, Client]:
    clients = {}
    for mode in ("untouched", "read", "write"):
        seeder = Client(app, "/seed", "session")
        seeder.check()
        clients[mode] = Client(app, f"/{mode}", "session", seeder.cookie)
        clients[mode].check()
    return clients


def flask_bare() -> Client:
    """Flask with its session layer removed: what the Flask peers are measured above."""
    from flask.sessions import SessionInterface

    class NoSessions(SessionInterface):
        def open_session(self, app: Any, request: Any) -> Any:
            return self.make_null_session(app)

        def save_session(self, app: Any, session: Any, response: Any) -> None:
            return None

    def configure(app: Any) -> None:
        app.session_interface = NoSessions()

    return Client(_flask_app(configure), "/untouched", "session")


def flask_cookie(redis: RedisTarget | None, tmp: Path) -> Suite:
    app = _flask_app(lambda app: None)
    clients = _flask_clients(app)
    return Suite(
        "Flask cookie session", "flask", clients, "itsdangerous, JSON", "wsgisession cookie"
    )


def flask_session_redis(redis: RedisTarget | None, tmp: Path) -> Suite:
    import flask_session
    import redis as redis_py

    if redis is None:
        raise ImportError("no Redis")
    client = redis_py.Redis.from_url(redis.url)

    def configure(app: Any) -> None:
        app.config.update(
            SESSION_TYPE="redis",
            SESSION_REDIS=client,
            SESSION_KEY_PREFIX=redis.prefix + "flask:",
        )
        flask_session.Session(app)

    made = Suite(
        "Flask-Session Redis",
        "flask",
        _flask_clients(_flask_app(configure)),
        f"Flask-Session {getattr(flask_session, '__version__', '')}, defaults",
        "wsgisession RedisStore",
    )
    made.redis = True
    made.closers.append(client.close)
    return made


# -- Django ----------------------------------------------------------------------


def _django(middleware: list[str], engine: str) -> Any:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponse
    from django.urls import path

    if not settings.configured:
        databases, apps = {}, []
        if common.postgres is not None:
            # The db engine on the same PostgreSQL as PostgresStore, in the run's schema.
            apps = ["django.contrib.sessions"]
            databases = {"default": _django_database(common.postgres)}
        settings.configure(
            DEBUG=False,
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=apps,
            DATABASES=databases,
            USE_TZ=True,
            LOGGING_CONFIG=None,
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        )
        django.setup()
        if databases:
            from django.core.management import call_command

            call_command("migrate", "sessions", verbosity=0)

        def seed(request: Any) -> Any:
            request.session.update(SESSION)
            return HttpResponse("ok")

        def untouched(request: Any) -> Any:
            return HttpResponse("ok")

        def read(request: Any) -> Any:
            request.session["user_id"]
            return HttpResponse("ok")

        def write(request: Any) -> Any:
            request.session["counter"] += 1
            return HttpResponse("ok")

        for view in (seed, untouched, read, write):
            urlpatterns.append(path(view.__name__, view))
    # The middleware reads these settings when the handler is built.
    settings.MIDDLEWARE = middleware
    settings.SESSION_ENGINE = engine
    return WSGIHandler()


def _django_database(target: common.PostgresTarget) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(target.url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.get("dbname", "postgres"),
        "USER": params.get("user", ""),
        "PASSWORD": params.get("password", ""),
        "HOST": params.get("host", ""),
        "PORT": params.get("port", ""),
        "CONN_MAX_AGE": None,  # one persistent connection, as PostgresStore's pool
        "OPTIONS": {"options": f"-c search_path={target.schema}"},
    }


def django_bare() -> Client:
    return Client(_django([], "django.contrib.sessions.backends.signed_cookies"), "/untouched", "")


def _django_suite(name: str, engine: str, notes: str, compare: str) -> Suite:
    app = _django(["django.contrib.sessions.middleware.SessionMiddleware"], engine)
    clients = {}
    for mode in ("untouched", "read", "write"):
        seeder = Client(app, "/seed", "sessionid")
        seeder.check()
        clients[mode] = Client(app, f"/{mode}", "sessionid", seeder.cookie)
        clients[mode].check()
    return Suite(name, "django", clients, notes, compare=compare)


def django_signed(redis: RedisTarget | None, tmp: Path) -> Suite:
    engine = "django.contrib.sessions.backends.signed_cookies"
    return _django_suite("Django signed_cookies", engine, "JSON, zlib, HMAC", "wsgisession cookie")


def django_cache(redis: RedisTarget | None, tmp: Path) -> Suite:
    engine = "django.contrib.sessions.backends.cache"
    return _django_suite("Django cache", engine, "LocMemCache", "wsgisession LRUStore")


def django_db(redis: RedisTarget | None, tmp: Path) -> Suite:
    if common.postgres is None:
        raise ImportError("no PostgreSQL (install psycopg and run a server, or --postgres-url)")
    from django.conf import settings

    if settings.configured and not settings.DATABASES:
        raise ImportError("Django was configured before PostgreSQL was known")
    engine = "django.contrib.sessions.backends.db"
    return _django_suite(
        "Django db (PostgreSQL)", engine, "django_session table", "wsgisession PostgresStore"
    )


SUITES: list[Callable[[RedisTarget | None, Path], Suite]] = [
    beaker_cookie,
    beaker_memory,
    beaker_redis,
    flask_cookie,
    flask_session_redis,
    django_signed,
    django_cache,
    django_db,
]

#: The baselines the suites name: each peer is measured above its own framework.
BASELINES: dict[str, Callable[[], Client]] = {"flask": flask_bare, "django": django_bare}
