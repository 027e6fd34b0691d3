"""Django's own ``SessionTestsMixin``, unchanged, over ``wsgisession.contrib.django.engine``.

Django runs the mixin once per engine of its own (``DatabaseSessionTests``,
``CookieSessionTests`` …); this is the same suite for our engine, on the store that
``WSGISESSION`` names for this run.
"""

from django.test import SimpleTestCase
from sessions_tests.tests import SessionTestsMixin  # type: ignore[import-not-found]

from wsgisession.contrib.django.engine import SessionStore


class WsgisessionEngineTests(SessionTestsMixin, SimpleTestCase):  # type: ignore[misc]
    """Every test of Django's session API, on our engine."""

    backend = SessionStore
