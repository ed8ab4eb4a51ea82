# Callbot: `make run` starts everything on the embedded default; `make test` runs
# the static checks and the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint check-python install install-dev lock bench clean prompts

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Callbot needs Python 3.11, found %s" % sys.version.split()[0]'

# Installs come from the lock files (exact versions, checked hashes), never from a
# fresh resolution of pyproject.toml; `pip check` fails when pyproject.toml asks for
# something the lock lacks (run `make lock`).
$(VENV)/.installed: pyproject.toml requirements.txt | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q --require-hashes -r requirements-dev.txt
	$(PY) -m pip check
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_users
	$(PY) manage.py demo_ivr
	$(PY) manage.py serve --port $(PORT)

# Settings refuse the public development key once DATABASE_URL, REDIS_URL or
# GRAPH_TENANT_ID is set (as in CI's PostgreSQL + Redis run). The static checks
# import the settings and the tests sign sessions, so unless a key is given they
# get one made up for this run, which signs nothing that outlives it.
lint test: export SECRET_KEY ?= $(shell $(PYTHON) -c 'import secrets; print("test-run-" + secrets.token_urlsafe(32))')

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

# A Celery queue of this run's own, so tests with a real worker never meet
# another run's tasks on a shared Redis.
test: lint
	CELERY_QUEUE=$${CELERY_QUEUE:-callbot-test-$$$$} $(VENV)/bin/pytest $(PYTEST_ARGS)

# Refresh the lock files from pyproject.toml, on purpose: pins that still fit are
# kept; LOCK_ARGS=--upgrade moves everything to the newest allowed release,
# LOCK_ARGS="--upgrade-package redis" just one. The dev lock is constrained by the
# runtime lock, so both agree. Universal (any OS/CPU) for Python 3.11, with hashes.
UV_LOCK := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" -q $(LOCK_ARGS)
LOCK_ARGS ?=

lock: | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'uv>=0.9,<1'
	$(UV_LOCK) -o requirements.txt
	$(UV_LOCK) --extra dev -c requirements.txt -o requirements-dev.txt

# Speak the shipped IVR prompts (mono 16-bit 16 kHz WAV) into
# callbot/ivr/static/ivr/prompts/; needs espeak-ng and sox. The results are committed.
prompts: install
	$(PY) manage.py generate_prompts

bench: install-dev
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
