# Flowplane: `make run` serves on SQLite, `make test` runs every check. Both set up everything.
PYTHON ?= python3
# Three pytest workers on two cores: many tests wait on subprocesses and sockets. Work
# stealing: an idle worker takes queued tests from a busy one, so the slow acceptance tests
# do not end the run one after another on a single worker.
PYTEST_ARGS ?= -n 3 --dist worksteal
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SERVER_STAMP := $(VENV)/.server-stamp

.PHONY: install install-server run test lint typecheck pytest bench docs clean ui ui-screenshots

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# `make run` needs only the server; `make test` adds the development tools.
$(SERVER_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[server]'
	touch $(SERVER_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $(SERVER_STAMP)

install: $(STAMP)

install-server: $(SERVER_STAMP)

# DBOS, the peer baseline of bench/engine.py, in a virtualenv of its own (its own dependency set).
DBOS_VERSION := 3.4.0
.venv-dbos/.installed-$(DBOS_VERSION):
	$(PYTHON) -m venv .venv-dbos
	.venv-dbos/bin/pip install -q 'dbos==$(DBOS_VERSION)'
	touch $@

# openworkflow, the second peer baseline (Node.js; pinned in bench/openworkflow/package-lock.json).
bench/openworkflow/node_modules/.installed: bench/openworkflow/package-lock.json
	cd bench/openworkflow && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install-server
	$(BIN)/flowplane serve --root examples --load-examples examples

lint: install
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install
	scripts/ensure-ui-tools.sh
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	@$(MAKE) -s .venv-dbos/.installed-$(DBOS_VERSION) || echo "DBOS could not be installed: bench/engine.py runs without its baseline"
	@$(MAKE) -s bench/openworkflow/node_modules/.installed || echo "openworkflow could not be installed (needs node and npm): bench/engine.py runs without its baseline"
	@scripts/ensure-ui-tools.sh
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || sudo -n apt-get install -y -q wrk >/dev/null 2>&1 || echo "wrk is not installed: bench/api.py falls back to its slower Python load generator"
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/engine.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/events.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/api.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/fanout_api.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/storage.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/e2e.py
	$(BIN)/python bench/ui.py
	FLOWPLANE_TEST_POSTGRES_URL=$$(scripts/ensure-postgres.sh) $(BIN)/python bench/startup.py

# The web UI: rebuild the committed bundle (src/flowplane/ui/static) from ui/ with the locked
# toolchain, and retake the screenshots of docs/ui.md. See docs/ui.md.
ui:
	cd ui && npm ci --ignore-scripts --no-audit --no-fund && npm run typecheck && npm run build

ui-screenshots: install
	scripts/ensure-ui-tools.sh
	FLOWPLANE_UI_SCREENSHOTS=docs/ui $(BIN)/pytest -n 0 -p no:randomly tests/acceptance/test_ui.py -k sqlite

docs: install
	$(BIN)/python scripts/settings_table.py --write README.md
	$(BIN)/python scripts/gen_connector_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .pgdata ui/node_modules
