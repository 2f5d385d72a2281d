# Two entry points for a fresh machine (see README.md):
#   make demo  - install, migrate, load demo data and serve the example project on 127.0.0.1:8000
#                with the notification dispatcher beside it (mail as files in example_project/sent-mail)
#   make test  - install and run the suite on SQLite, PostgreSQL and MariaDB (the servers when
#                they answer)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# make demo alone installs the runtime (with the extras the example project uses) and the
# demo group, not the test, lint, type or docs tools.
DEMO_STAMP := $(VENV)/.demo-installed
# ical.js for the calendar tests (tests/calendar_parsers.py), when npm is on PATH; reinstalled
# when the lock file changes.
JS_STAMP := tests/js/node_modules/.installed
# openapi-typescript and TypeScript for the generated-client test (tests/clients/), likewise.
CLIENTS_STAMP := tests/clients/node_modules/.installed
NPM := $(shell command -v npm 2>/dev/null)
# The MariaDB/MySQL driver (extra "mysql": mysqlclient) when its C library can be built against
# (Debian: libmariadb-dev or default-libmysqlclient-dev, pkg-config, build-essential); without
# them the MariaDB runs of make test are skipped (.ci/run installs them).
MYSQL_EXTRA := $(shell { pkg-config --exists mysqlclient || pkg-config --exists libmariadb; } \
  2>/dev/null && echo ,mysql)

.PHONY: install demo test test-sqlite test-postgres lint types docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e ".[openapi,postgres,tasks,caldav,rq,tasks-db$(MYSQL_EXTRA)]" --group dev
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e ".[openapi,postgres,tasks]" --group demo
	touch $(DEMO_STAMP)

$(JS_STAMP): tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $(JS_STAMP)

$(CLIENTS_STAMP): tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund
	touch $(CLIENTS_STAMP)

install: $(STAMP) $(if $(NPM),$(JS_STAMP) $(CLIENTS_STAMP))

demo: $(DEMO_STAMP)
	cd example_project && ../$(PY) manage.py migrate --noinput
	cd example_project && ../$(PY) manage.py load_demo_data
	@echo "Mail goes to example_project/sent-mail/; the notification dispatcher runs beside the server."
	cd example_project && { ../$(PY) manage.py liveclass_booking_dispatch --loop & \
	  worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  ../$(PY) manage.py runserver 127.0.0.1:8000; }

test: install
	PY=$(PY) bash scripts/run-tests.sh

lint: $(STAMP)
	$(PY) -m ruff check src tests example_project bench
	$(PY) -m ruff format --check src tests example_project bench

types: $(STAMP)
	$(PY) -m mypy

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .tox docs/_build .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules \
	  tests/clients/node_modules
