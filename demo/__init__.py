"""The wsgisession demo site (``make demo``)."""
