# The single entry point. `make repro` and `make test` are the README's two commands: each creates
# .venv on first use (Python 3.11) and reuses it afterwards; it reinstalls only when the pins change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: put the environment's interpreter first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test lint format bench profile results verify clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, .venv has {sys.version.split()[0]}: set PYTHON=/path/to/python3.11 and delete .venv"'
	@# torch first and pinned: an unpinned torch would pull the CUDA build (gigabytes).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

repro: $(STAMP)  ## run the whole pipeline on the current profile (params.yaml)
	$(BIN)/dvc repro

test: $(STAMP)  ## lint, format check and the test suite (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## speed benchmarks (pytest-benchmark); not part of `make test`
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-columns=min,mean,stddev,rounds

profile: $(STAMP)  ## switch params.yaml to a profile: make profile P=paper (or quick)
	$(BIN)/python -m reml profile $(P)

results: $(STAMP)  ## the report's headline tables in the terminal
	$(BIN)/python -m reml results

verify: $(STAMP)  ## after make repro: scores that moved by more than their 95% CI against the committed ones (AGAINST=rev)
	$(BIN)/python -m reml verify --against $(or $(AGAINST),HEAD)

clean-venv:
	rm -rf $(VENV)
