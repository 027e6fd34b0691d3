"""Framework integrations: :mod:`wsgisession.contrib.flask` and :mod:`wsgisession.contrib.django`.

The only modules of wsgisession that import a framework; each needs that framework
installed.
"""
