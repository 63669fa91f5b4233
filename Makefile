# One command checks everything: people, pre-commit and CI run the same targets.
# `make run` and `make test` install what is missing first (a venv in .venv, and
# redis-server through apt-get when it is not on the PATH; `make test` also Debian's
# chromium and chromium-driver, for the console's browser tests).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install redis-server browser run sandbox test test-long lint format typecheck contracts pytest bench screenshots clean

help:
	@echo "make run    - start the dispatcher locally (sandbox gateway when no credentials)"
	@echo "make test   - ruff, mypy, import contracts and pytest"
	@echo "make test-long - the long fault cases (a 10-minute gateway outage)"
	@echo "make bench  - benchmarks (not part of make test)"
	@echo "make screenshots - the console's pictures in docs/console/, taken again"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

# A headless browser for the console's tests (tests/test_console.py).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "installing chromium and chromium-driver (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

install: $(STAMP) redis-server

run: install
	$(BIN)/waapi-dispatch up

sandbox: install
	$(BIN)/waapi-dispatch sandbox

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy dispatcher config tasks

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: install browser
	$(BIN)/pytest -m "not long"

# The console's pictures in docs/console/, taken again by its tests.
screenshots: install browser
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest tests/test_console.py

# The fault cases that take many minutes (docs/reliability.md quotes their figures).
test-long: install
	$(BIN)/pytest -m long -s -p no:cacheprovider

test: install lint typecheck contracts pytest

# The suite prints the comparison table (and writes var/bench.json); the others measure
# one thing each (see their docstrings).
bench: install
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/sandbox_rps.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/rate_limits.py
	$(BIN)/python bench/replica_wait.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
