# Every target creates or reuses the virtual environment in .venv and installs what it needs
# from the package registries; nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CKPT := $(VENV)/bin/ckpt
STAMP := $(VENV)/.installed-dev

.PHONY: install demo test lint format completions bench stress clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	CKPT=$(CKPT) PY=$(PY) bash examples/demo.sh

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check ckpt_cli tests examples benchmarks
	$(VENV)/bin/ruff format --check ckpt_cli tests examples benchmarks
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix ckpt_cli tests examples benchmarks
	$(VENV)/bin/ruff format ckpt_cli tests examples benchmarks

completions: install
	_CKPT_COMPLETE=source_bash $(CKPT) > completions/ckpt.bash
	_CKPT_COMPLETE=source_zsh $(CKPT) > completions/ckpt.zsh
	_CKPT_COMPLETE=source_fish $(CKPT) > completions/ckpt.fish

# Not part of `make test`: times ckpt against the floor of each job and writes BENCHMARKS.md.
bench: install
	$(PY) benchmarks/run.py --out BENCHMARKS.md

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache .hypothesis
