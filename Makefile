# Fresh-machine entry points (see README): `make demo` and `make test` (lint-imports + pytest).
# Both create .venv on first use and are idempotent afterwards.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo readme-figure test bench bench-fair bench-o1 clean pi-backend

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

# Issue 22's fair frontier on the full Fashion-MNIST (Debian's dataset-fashion-mnist, installed
# here when missing): HybReNet + SNL against ResNet18 + SNL, 3 seeds, 2-4 h on 2 cores, resumable.
bench-fair: $(STAMP)
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || apt-get install -y -q dataset-fashion-mnist
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/frontier.py --preset fair --record docs/results/frontier-fair.json

# Issue 26: DeepReShape's O(1) synthesis + SNL beside cold and warm-started Optuna searches of the
# same pipeline at 10/33/50% of the teacher's ReLUs, 3 seeds (hours on 2 cores), resumable.
bench-o1: $(STAMP)
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || apt-get install -y -q dataset-fashion-mnist
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/o1_vs_search.py --preset cpu --record docs/results/o1-vs-search.json --figure docs/figures/o1-vs-search.png

# The SPU backend of `reshape measure`, in its own environment: SPU needs Python 3.11,
# numpy < 2 and jax 0.4.34, so it never becomes a dependency of the main package
# (about 1 GB, a minute). reshape finds .venv-pi here, or the Python named by RESHAPE_PI_PYTHON.
PI_PYTHON ?= python3.11
PI_VENV   ?= .venv-pi
PI_STAMP   = $(PI_VENV)/.installed

$(PI_STAMP):
	$(PI_PYTHON) -m venv $(PI_VENV)
	$(PI_VENV)/bin/python -m pip install -q --upgrade pip
	$(PI_VENV)/bin/python -m pip install -q spu==0.9.5 "numpy<2" safetensors
	touch $(PI_STAMP)

pi-backend: $(PI_STAMP)

clean:
	rm -rf $(VENV) $(PI_VENV) build dist *.egg-info
