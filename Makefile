# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_SANDBOX_PORT ?= 8765
DEMO_WEB_PORT ?= 8000

.PHONY: install demo test test-fast smoke lint format benchmarks clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

## Start web, worker (with beat) and the sandbox ConnectWise with seeded logins; Ctrl-C stops all three.
demo: install
	CONNECTWISE_SANDBOX_URL=http://127.0.0.1:$(DEMO_SANDBOX_PORT) $(BIN)/python manage.py demo \
		--web-port $(DEMO_WEB_PORT) --sandbox-port $(DEMO_SANDBOX_PORT)

## The whole suite: unit, integration (sandbox, real worker) and browser tests. The tests keep their own var/
## directory (filesystem broker, file cache), so a running `make demo` never takes the tests' jobs.
TEST_VAR_DIR ?= $(CURDIR)/var/test

test: install
	$(BIN)/python scripts/ensure_chromium.py
	$(BIN)/python scripts/ensure_caddy.py
	ONBOARDING_VAR_DIR=$(TEST_VAR_DIR) $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	ONBOARDING_VAR_DIR=$(TEST_VAR_DIR) $(BIN)/python -m pytest -p no:cacheprovider -m "not e2e and not slow" $(PYTEST_ARGS)

## The production smoke test: the compose services' commands with real PostgreSQL and Redis, Caddy (tls internal)
## in front and Chromium over HTTPS (README "Deployment"). Fails, never skips, when something it needs is missing.
smoke: install
	$(BIN)/python scripts/ensure_chromium.py
	$(BIN)/python scripts/ensure_caddy.py
	SMOKE_REQUIRED=true $(BIN)/python -m pytest -p no:cacheprovider tests/e2e/test_smoke_production.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

benchmarks: install
	$(BIN)/python manage.py benchmark verify
	$(BIN)/python manage.py benchmark dashboard --tenants 10000
	$(BIN)/python manage.py benchmark soak

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
