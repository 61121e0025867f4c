# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
PEOPLE ?= 10000

.PHONY: demo test lint bench lock clean

# The environment: a venv, uv inside it, then the project and its dev tools at the locked versions.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --constraint constraints.txt --editable '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/hub demo --people $(PEOPLE)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(BIN)/.installed
	$(BIN)/ruff check .

# The benchmarks print their figures (minutes on two cores); they never run in `make test`.
bench: $(BIN)/.installed
	$(BIN)/python bench/pipeline.py --people 10000
	$(BIN)/python bench/resolution.py --people 100000
	$(BIN)/python bench/golden.py --people 100000
	$(BIN)/python bench/ingest.py --rows 1000000
	$(BIN)/python bench/spark.py --people 2000
	$(BIN)/uv pip install --quiet --python $(BIN)/python --constraint constraints.txt --overrides bench/overrides.txt --editable '.[dev,bench]'
	$(BIN)/python bench/generality.py

# Re-resolve the lock after changing pyproject.toml.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile --python $(BIN)/python --extra dev --extra bench --overrides bench/overrides.txt pyproject.toml -o constraints.txt --quiet

clean:
	rm -rf $(VENV) var
