# Everything a fresh machine needs goes through these targets: they create
# .venv, install the project with its dev extras, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit js browser bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The JS client's dev packages (react, react-dom, jsdom for the hook's tests),
# exactly as the committed lock file says.
JS := clients/js
JS_STAMP := $(JS)/node_modules/.installed

$(JS_STAMP): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# ARGS passes options through: make demo ARGS="--port 9000 --anythingllm-port 4001"
ARGS ?=

demo: $(STAMP)  ## run the sidecar against simulated upstreams (ARGS="--port N ...")
	$(BIN)/shared-state demo $(ARGS)

serve: $(STAMP)  ## run the sidecar with the configuration from the environment / .env
	$(BIN)/shared-state serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -q

js: $(JS_STAMP)  ## the JS client's and React hook's unit tests (node --test)
	cd $(JS) && node --test

test: lint typecheck js unit  ## ruff, mypy, the JS tests and the whole Python suite

# The dashboard in Debian's headless chromium (also part of `unit`); without chromium the
# tests are skipped with a warning, and with CI=true that is a failure.
browser: $(STAMP)  ## only the browser tests (screenshot: SHARED_STATE_UPDATE_SCREENSHOT=1)
	$(BIN)/pytest -q tests/browser

bench: $(STAMP)  ## print speed and memory figures
	$(BIN)/python bench/bench_http.py
	$(BIN)/python bench/bench_state.py
	$(BIN)/python bench/bench_clients.py
	$(BIN)/python bench/bench_replicas.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(JS)/node_modules test-artifacts
