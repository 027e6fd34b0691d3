"""What a view reads from the request: typed parameters, typed bodies, the request scope.

- :mod:`.params`: :func:`~wsgisession.param`, :func:`~wsgisession.optional_param`,
  :func:`~wsgisession.params`, :func:`~wsgisession.at_json`,
  :class:`~wsgisession.RequestScope`;
- :mod:`.body`: :func:`~wsgisession.body`, :func:`~wsgisession.validate_body`,
  :func:`~wsgisession.rules`.

The private modules beside them (converters, rules, model building, form reading,
pydantic/msgspec delegation) are what both share. Import the public names from
:mod:`wsgisession`.
"""
