# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
PEOPLE ?= 10000

.PHONY: demo test browser lint bench lock clean

# The environment: a venv, uv inside it, then the project and its dev tools at the locked versions.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --constraint constraints.txt --editable '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/hub demo --people $(PEOPLE)

test: $(BIN)/.installed browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The browser tests (tests/browser.py) render the French pages in headless Chromium and check them with axe-core.
# Debian's chromium comes from apt (root only; ~40 s and ~480 MB the first time; never `playwright install`, which
# downloads from a CDN), axe-core from npm into var/node (git-ignored: its code is never committed). Both are
# skipped when already there. Without them the browser tests skip with the reason, and fail under CI.
AXE_VERSION := 4.14.1
AXE := var/node/.axe-core-$(AXE_VERSION)
browser: $(AXE)
	@command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed (apt-get install chromium, as root): the browser tests will skip"; fi

$(AXE):
	@command -v npm >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; fi
	@if command -v npm >/dev/null; then \
	  npm install --prefix var/node --no-save --no-audit --no-fund --silent axe-core@$(AXE_VERSION) && touch $@; \
	else echo "npm is not installed: axe-core is missing, the browser tests will skip"; fi

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
