# Two commands: `make run` and `make test`. Both create (or reuse) .venv and install into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint format install env-file

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Adds a SECRET_KEY (and plain-HTTP settings for a local run) to .env unless it has one,
# so a .env written by hand first (say with ASANA_API_BASE_URL) is completed, not skipped.
# .env holds the keys to everything stored: readable by its owner only, an older one too.
env-file: install
	@umask 077 && touch .env && chmod 600 .env
	@[ ! -s .env ] || [ -z "$$(tail -c1 .env)" ] || echo >> .env
	@grep -q '^SECRET_KEY=' .env || { \
	  echo "Adding a random SECRET_KEY and local plain-HTTP settings to .env (see README for production)."; \
	  printf '%s\n' \
	    "SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	    "SECURE_SSL_REDIRECT=off" "SESSION_COOKIE_SECURE=off" "CSRF_COOKIE_SECURE=off" \
	    "SECURE_HSTS_SECONDS=0" >> .env; }

run: install env-file
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py ensureadmin --url http://127.0.0.1:$(PORT)/admin/
	$(PY) manage.py runall --port $(PORT)

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@if [ -x /usr/bin/chromium ]; then echo "Chromium found: browser tests will run."; \
	 else echo "Chromium not found at /usr/bin/chromium: browser tests are SKIPPED (apt-get install chromium)."; fi
	$(VENV)/bin/pytest -p no:cacheprovider -n 2 --dist loadgroup

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
