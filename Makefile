# Fresh-machine entry points (see README): `make demo` and `make test` (lint-imports + pytest).
# Both create .venv on first use and are idempotent afterwards.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo readme-figure test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[test]"
	touch $(STAMP)

# The main job on the packaged data: a teacher, HybReNets and baselines at 5% and 20% of its
# ReLUs, the best HybReNet exported, the three-panel figure and summary.md (docs/frontier.md).
demo: $(STAMP)
	$(BIN)/reshape demo --out demo-out

# The README's figure: the demo's front.png, committed as produced (caption: commit, date, machine).
readme-figure: demo
	cp demo-out/front.png docs/figures/demo-front.png
	@grep '^Machine:' demo-out/summary.md

# The layering contracts first (import-linter, docs/architecture.md), then the suite.
test: $(STAMP)
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
