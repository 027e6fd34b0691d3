"""Settings of the compatibility run: Django's own test settings, with our sessions.

Django's ``runtests.py`` reads these (``--settings``) and then installs its own
``MIDDLEWARE``, naming ``django.contrib.sessions.middleware.SessionMiddleware``, as
do many tests in ``override_settings`` or by import. That name is pointed at
``wsgisession.contrib.django.SessionMiddleware`` here, so every one of them runs ours
(the system check that ours subclasses Django's runs apart, in run.py, without it).
"""

import os

import django.contrib.sessions.middleware as django_sessions
from test_sqlite import *  # type: ignore[import-not-found]  # noqa: F403

from wsgisession.contrib.django import SessionMiddleware

django_sessions.SessionMiddleware = SessionMiddleware  # type: ignore[misc]

SESSION_ENGINE = "wsgisession.contrib.django.engine"
WSGISESSION = {
    "store": os.environ["WSGISESSION_COMPAT_STORE"],
    "secret_key": "wsgisession-django-compat-" + "s" * 40,
}
TEST_RUNNER = "wsgisession_compat.runner.Runner"
