"""Django's session tests, run over wsgisession's engine (see ../run.py)."""
