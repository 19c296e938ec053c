# The single entry point. `make repro` and `make test` are the README's two commands: each creates
# .venv on first use (Python 3.11) and reuses it afterwards; it reinstalls only when the pins change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Stage commands call `python`: put the environment's interpreter first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test lint format bench profile results verify gpu-check clean-venv

# TORCH=cpu (default for a new .venv): the CPU build of torch 2.13.0. TORCH=cuda: the CUDA build, the default wheel of
# PyPI on Linux (gigabytes; local pip mirrors and wheel folders are bypassed), for compute.device: cuda
# in params.yaml (docs/compute.md). TORCH_INDEX=URL: another index, e.g. PyTorch's own for another CUDA.
# Unset: the build .venv already has (cpu for a new one).
TORCH ?= $(if $(wildcard $(VENV)/.installed-cuda),cuda,cpu)
ifeq ($(TORCH),cuda)
TORCH_INSTALL := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(BIN)/python -m pip install --quiet --force-reinstall -c constraints.txt --index-url $(or $(TORCH_INDEX),https://pypi.org/simple) torch==2.13.0
else ifeq ($(TORCH),cpu)
TORCH_INSTALL := $(BIN)/python -m pip install --quiet torch==2.13.0
else
$(error TORCH must be cpu or cuda, got '$(TORCH)')
endif
STAMP := $(VENV)/.installed-$(TORCH)
# JOBS=N: run independent stages N at a time (python -m reml repro, docs/compute.md); unset: dvc repro.
JOBS ?=

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, .venv has {sys.version.split()[0]}: set PYTHON=/path/to/python3.11 and delete .venv"'
	@# torch first and pinned: an unpinned torch would pull the CUDA build (gigabytes).
	$(TORCH_INSTALL)
	@$(BIN)/python -c 'import sys, torch; cpu = torch.version.cuda is None; want = "$(TORCH)"; build = "CPU" if cpu else "CUDA"; sys.exit(0 if cpu == (want == "cpu") else f"TORCH={want} but torch {torch.__version__} is the {build} build: delete .venv and retry")'
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

repro: $(STAMP)  ## run the whole pipeline on the current profile (params.yaml); JOBS=N: N stages at a time
ifeq ($(strip $(JOBS)),)
	$(BIN)/dvc repro
else
	$(BIN)/python -m reml repro --jobs $(JOBS)
endif

gpu-check: $(STAMP)  ## the tiny profile on cuda against cpu, and meta-step timings on each device (needs a GPU)
	$(BIN)/python benchmarks/gpu_check.py

test: $(STAMP)  ## lint, format check and the test suite (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --durations=15

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
