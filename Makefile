# Set-up needs only python3: every target creates .venv and installs the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_QUERY := VP of Engineering at Series B SaaS startups in New York

.PHONY: install demo test test-stress lint typecheck check serve mutation clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the main job on the sandbox
	$(BIN)/deepsearch search "$(DEMO_QUERY)" --mode people --max-results 50

test: $(STAMP)  ## the whole test suite (both cores), then lint and types
	$(BIN)/python -m pytest -n 2
	$(BIN)/ruff check aggregator providers tests
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check aggregator providers tests

typecheck: $(STAMP)
	$(BIN)/mypy

test-stress: $(STAMP)  ## the timing-sensitive tests 3 times with every core busy (not in CI; see README)
	$(BIN)/python -m tests.stress --runs 3

mutation: $(STAMP)  ## mutation testing of the core modules (mutmut, one worker; not in CI; see README)
	$(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/mutmut results

serve: $(STAMP)
	$(BIN)/deepsearch sandbox serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
