# NIMS — make help lists the targets.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
DAVIS ?=

.PHONY: help install lint test test-fast test-all demo bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv and install requirements.txt and nims (editable)

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lint: install  ## ruff: lint (pycodestyle, pyflakes, import order, bugbear, pyupgrade) and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install  ## run the default test suite (no slow tests)
	WANDB_MODE=disabled $(PYTHON) -m pytest

test-fast: install  ## the unit tests alone: no entry point run, no real data (the inner loop)
	WANDB_MODE=disabled $(PYTHON) -m pytest -m "not slow and not integration"

test-all: install  ## run every test, slow ones included
	WANDB_MODE=disabled $(PYTHON) -m pytest -m ""

demo: install  ## NIMS end to end on built-in data (DAVIS=<root> for a real sequence)
	$(PYTHON) demo.py $(if $(DAVIS),dataset.root=$(DAVIS))

bench: install  ## speed benchmarks (medians on this machine)
	$(PYTHON) -m benchmarks.run

clean:  ## remove run outputs and Python caches (keeps cache/: generated sets and flows)
	find outputs -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf wandb .pytest_cache
	find . -name __pycache__ -type d -prune -not -path "./.venv/*" -exec rm -rf {} +
