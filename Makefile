# Two commands: `make demo` runs the service with embedded defaults; `make test` passes the suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint install native clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+) on PATH, or run: make PYTHON=python3 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The engine's hot modules compiled by mypyc into app/domain/native/ (nothing to do when
# up to date; without a C compiler it says so and the engine runs as plain Python).
native: $(STAMP)
	$(BIN)/python scripts/build_native.py

demo: $(STAMP) native
	$(BIN)/availability demo

test: $(STAMP) native
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo 'no tests ran'; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check app reconcilers tests scripts
	$(BIN)/ruff format --check app reconcilers tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache app/domain/native
