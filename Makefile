# MedAI — two commands: `make run` (demo app + worker) and `make test` (lint + full suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make run` is a local demo: DEBUG on unless you configure otherwise in .env / the environment.
RUN_ENV := DEBUG=$${DEBUG:-1}

.PHONY: run test lint install install-dev lock bench messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.deps-dev: requirements-dev.txt $(VENV)/.deps
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.deps
install-dev: $(VENV)/.deps-dev

run: $(VENV)/.deps
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py compilemessages --ignore=.venv -v0 2>/dev/null || true
	$(RUN_ENV) $(BIN)/python manage.py setup_schedules
	$(RUN_ENV) $(BIN)/python manage.py demo
	@echo "Serving on http://$(HOST):$(PORT)/admin/ with a task worker (Ctrl+C stops both)."
	@trap 'kill 0' INT TERM EXIT; \
	$(RUN_ENV) $(BIN)/python manage.py qcluster & \
	$(RUN_ENV) $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

lint: $(VENV)/.deps-dev
	$(BIN)/ruff check .

test: $(VENV)/.deps-dev
	$(BIN)/ruff check .
	DEBUG=1 DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	@$(BIN)/pytest -n 2 -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests"; exit 1; fi; exit $$rc

# Re-pin requirements*.txt from requirements*.in (needs network to PyPI).
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet requirements-dev.in -o requirements-dev.txt

bench: $(VENV)/.deps-dev
	@for script in bench/*.py; do echo "== $$script"; DEBUG=1 $(BIN)/python $$script || exit 1; done

messages: $(VENV)/.deps
	DEBUG=1 $(BIN)/python manage.py makemessages -l ru -l en --ignore=.venv --ignore=var
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
