# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv (with the interpreter in $PYTHON) on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: demo demo-flask demo-django test test-fast lint typecheck pytest compat-flask compat-django compat-versions compat-wheel docs bench bench-scale bench-profile clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	@# Before 1.0 the distribution was called wsgisession (a name taken on the index).
	$(BIN)/python -m pip uninstall --quiet --yes wsgisession 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[dev,redis,crypto,postgres]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo,redis]'
	touch $@

# The demo targets check $(PORT) first: on a busy port gunicorn only says
# "Connection in use" for a while, then exits, and never mentions PORT=.
define DEMO_PORT_CHECK
import errno, socket, sys


def bind(port):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def free_after(port):
    for candidate in range(port + 1, min(port + 100, 65535) + 1):
        try:
            bind(candidate)
        except OSError:
            continue
        return candidate
    return None


text, target = sys.argv[1:]
if not text.isdigit() or not 1 <= int(text) <= 65535:
    sys.exit(f"PORT must be a port number from 1 to 65535, not {text!r}; run make {target} PORT=8000")
port = int(text)
try:
    bind(port)
except OSError as exc:
    other = free_after(port) or "another port"
    if exc.errno == errno.EADDRINUSE:
        sys.exit(f"port {port} is in use; run make {target} PORT={other}")
    sys.exit(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); run make {target} PORT={other}")
endef
export DEMO_PORT_CHECK

## make demo: serve the demo site under gunicorn on http://127.0.0.1:$(PORT)
demo: $(VENV)/.demo-installed
	@$(BIN)/python -c "$$DEMO_PORT_CHECK" '$(PORT)' $@
	$(BIN)/gunicorn --config demo/gunicorn.conf.py --bind 127.0.0.1:$(PORT) demo.wsgi:app

## make demo-flask: the same site on Flask (wsgisession.contrib.flask), same gunicorn conf
demo-flask: $(VENV)/.demo-installed
	@$(BIN)/python -c "$$DEMO_PORT_CHECK" '$(PORT)' $@
	$(BIN)/gunicorn --config demo/gunicorn.conf.py --bind 127.0.0.1:$(PORT) demo.flask_app:app

## make demo-django: the same site on Django (wsgisession.contrib.django), same gunicorn conf
demo-django: $(VENV)/.demo-installed
	@$(BIN)/python -c "$$DEMO_PORT_CHECK" '$(PORT)' $@
	$(BIN)/gunicorn --config demo/gunicorn.conf.py --bind 127.0.0.1:$(PORT) 'demo.django_app:create_app()'

## make test: lint, type-check, build the docs, the whole test suite, then Flask's
## and Django's own tests, and the adapter tests on the oldest and newest versions
## (what CI runs)
test: lint typecheck docs pytest compat-flask compat-django compat-versions compat-wheel

## make test-fast: the inner loop; leaves out tests marked slow (servers, browsers)
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make compat-flask: Flask 3.1.3's own session tests (from its sdist, bodies
## unchanged) with init_app, on every store; builds .venv/compat/ on first use
compat-flask: $(VENV)/.dev-installed
	$(BIN)/python tests/compat/flask/run.py $(COMPAT_ARGS)

## make compat-django: Django's own session, auth, messages and test-client tests over
## wsgisession, on every store (downloads the pinned Django's sdist with pip, once)
compat-django: $(VENV)/.dev-installed
	$(BIN)/python tests/compat/django/run.py

## make compat-versions: the tests of the code that relies on redis-py's, hiredis'
## and werkzeug's private details, on the oldest and the newest releases that
## pyproject.toml allows (a virtualenv each, in .venv/versions-*)
compat-versions: $(VENV)/.dev-installed
	$(BIN)/python tests/compat/versions.py

## make compat-wheel: builds the sdist and the wheel (python -m build), installs the
## wheel into a new virtualenv (.venv/wheel-test) and runs the README's quick start,
## the CLI and the Flask, Django and pytest-plugin smoke tests from it
compat-wheel: $(VENV)/.dev-installed
	$(BIN)/python tests/compat/wheel/run.py

$(VENV)/.docs-installed: pyproject.toml $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -e '.[dev,redis,crypto,postgres,docs]'
	touch $@

## make docs: the documentation site (Sphinx) in docs/_build/html; a warning fails it
docs: $(VENV)/.docs-installed
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "The documentation is in docs/_build/html/index.html"

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -e '.[dev,redis,crypto,postgres,bench]'
	touch $@

## make bench: wsgisession beside its peers (table, targets, benchmarks/results.json,
## docs/benchmarks.png): in process, Redis round trips, gunicorn on pinned cores
## (wrk on CPU 0, one worker on CPU 1; apt-get install wrk), scale; BENCH_ARGS=--scale
## adds 1,000,000 stored sessions
bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

## make bench-scale: Redis and PostgreSQL with 10,000, 1,000,000 and 10,000,000
## sessions on private servers (latency, bytes per session, gc; about 20 minutes, 7 GiB
## of memory and 16 GB of disk at the peak; docs/benchmarks.md); merged into
## benchmarks/results.json. BENCH_ARGS="--sessions 10000 100000" for a short run
bench-scale: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/scale_servers.py $(BENCH_ARGS)

## make bench-profile: instructions and cache misses per request inside one gunicorn
## worker under callgrind, for each throughput route (where a route's time goes; a
## few minutes; figures do not move when the machine is busy)
bench-profile: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/gunicorn_profile.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info docs/_build
