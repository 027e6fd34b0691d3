"""Who may do what: login state, guards and CSRF protection.

- :mod:`.login`: :func:`~wsgisession.login`, :func:`~wsgisession.logout`,
  :func:`~wsgisession.current_user`;
- :mod:`.guards`: :class:`~wsgisession.Guard`, :class:`~wsgisession.Auth`,
  :class:`~wsgisession.AuthRedirect`, :func:`~wsgisession.login_required`,
  :func:`~wsgisession.guarded`;
- :mod:`.csrf`: :class:`~wsgisession.CsrfMiddleware`, :func:`~wsgisession.csrf_token`.

Import the public names from :mod:`wsgisession`.
"""
