"""Django settings of the demo.

``WSGISESSION_DEMO_SESSIONS=django`` runs the site on Django's own sessions, the
``db`` engine, as before the switch to wsgisession; ``WSGISESSION_DEMO_MIGRATE_FROM=django``
runs it on wsgisession, carrying each browser's session of that engine over
(``WSGISESSION["migrate_from"]``), logins included (docs/demo.md).
"""

from __future__ import annotations

from demo.common import (
    COOKIE_NAME,
    SESSION_MAX_AGE,
    STATIC,
    TEMPLATES,
    secret_key,
    switch_stage,
    var_dir,
)

VAR = var_dir()
#: Where the site stands in the switch to wsgisession: "own", "migrating" or "wsgisession".
SWITCH_STAGE = switch_stage("django")
#: The session engine the site ran on before the switch.
OWN_SESSION_ENGINE = "django.contrib.sessions.backends.db"

DEBUG = False
SECRET_KEY = secret_key()
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "demo.django_app.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "wsgisession.contrib.django.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "demo.django_app.views.CsrfViewMiddleware",  # Django's check; API tokens pass
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "demo.django_app.views.ErrorPages",
    "demo.django_app.views.LoggedOutElsewhere",
]
SESSION_ENGINE = "wsgisession.contrib.django.engine"
if SWITCH_STAGE != "wsgisession":
    # Django's sessions live in its django_session table, which the migration reads.
    INSTALLED_APPS.append("django.contrib.sessions")
if SWITCH_STAGE == "own":
    MIDDLEWARE[0] = "django.contrib.sessions.middleware.SessionMiddleware"
    SESSION_ENGINE = OWN_SESSION_ENGINE
elif SWITCH_STAGE == "migrating":
    WSGISESSION = {"migrate_from": OWN_SESSION_ENGINE}
SESSION_COOKIE_NAME = COOKIE_NAME
# As in the other variants: 14 days unused for a visitor and a "remember me" login.
SESSION_COOKIE_AGE = SESSION_MAX_AGE
CSRF_FAILURE_VIEW = "demo.django_app.views.csrf_failure"
# The CSRF secret lives in the session, so a logout ends every form shown before it.
CSRF_USE_SESSIONS = True
# The header the other variants read (X-CSRF-Token), so one fetch() serves all three.
CSRF_HEADER_NAME = "HTTP_X_CSRF_TOKEN"
# Log times (and Django's access log) in UTC, as gunicorn and the other variants do:
# Django would otherwise set the process's time zone to America/Chicago.
TIME_ZONE = "UTC"
LOGIN_URL = "/login"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [TEMPLATES],
        "OPTIONS": {
            "environment": "demo.django_app.views.environment",
            "context_processors": ["demo.django_app.views.layout_context"],
        },
    },
    {  # the admin's templates
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    },
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR / "wsgisession-demo-django.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
STATICFILES_DIRS = [STATIC]
USE_TZ = True
