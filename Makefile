# Everything a fresh machine needs goes through these targets: they create
# .venv, install the project with its dev extras, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit  ## ruff, mypy and the whole test suite

bench: $(STAMP)  ## print speed and memory figures
	$(BIN)/python bench/bench_http.py
	$(BIN)/python bench/bench_state.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
