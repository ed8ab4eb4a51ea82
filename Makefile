# Callbot: `make run` starts everything on the embedded default; `make test` runs
# the static checks and the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint check-python install install-dev bench clean prompts

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Callbot needs Python 3.11, found %s" % sys.version.split()[0]'

$(VENV)/.installed: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_users
	$(PY) manage.py demo_ivr
	$(PY) manage.py serve --port $(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

# A Celery queue of this run's own, so tests with a real worker never meet
# another run's tasks on a shared Redis.
test: lint
	CELERY_QUEUE=$${CELERY_QUEUE:-callbot-test-$$$$} $(VENV)/bin/pytest $(PYTEST_ARGS)

# Speak the shipped IVR prompts (mono 16-bit 16 kHz WAV) into
# callbot/ivr/static/ivr/prompts/; needs espeak-ng and sox. The results are committed.
prompts: install
	$(PY) manage.py generate_prompts

bench: install-dev
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
