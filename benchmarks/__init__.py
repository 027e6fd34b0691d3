"""Benchmarks of wsgisession against its peers: run ``make bench``."""
