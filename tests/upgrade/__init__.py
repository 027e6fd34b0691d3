"""Upgrade fixtures: what each release wrote, read by every later one."""
