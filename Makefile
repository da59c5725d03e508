# Every target creates or reuses the virtual environment in .venv and installs what it needs
# from the package registries; nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CKPT := $(VENV)/bin/ckpt
STAMP := $(VENV)/.installed-dev

.PHONY: install demo test lint format completions captures bench stress fixtures clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,s3]'
	touch $(STAMP)

# Bytecode for ckpt_cli too: an editable install has none, and with PYTHONDONTWRITEBYTECODE set
# every `ckpt` run would compile its modules again (about 50 ms of each start-up).
install: $(STAMP)
	@$(PY) -m compileall -q ckpt_cli

demo: install
	CKPT=$(CKPT) PY=$(PY) bash examples/demo.sh

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check ckpt_cli tests examples benchmarks fixtures_gen
	$(VENV)/bin/ruff format --check ckpt_cli tests examples benchmarks fixtures_gen
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix ckpt_cli tests examples benchmarks fixtures_gen
	$(VENV)/bin/ruff format ckpt_cli tests examples benchmarks fixtures_gen

# Typer's --show-completion ignores its SHELL argument: ask for each shell's script by name
completions: install
	mkdir -p completions
	_CKPT_COMPLETE=source_bash $(CKPT) > completions/ckpt.bash
	_CKPT_COMPLETE=source_zsh $(CKPT) > completions/ckpt.zsh
	_CKPT_COMPLETE=source_fish $(CKPT) > completions/ckpt.fish

# The reliability tests at full strength: every occurrence of every kill point, hundreds of
# kill -9 at random instants, the save/prune/read storm for minutes (it stops by itself), and
# latest on 100,000 entries of each framework's layout.
stress: install
	CKPT_STRESS=1 $(PY) -m pytest --timeout 1800 tests/test_faults.py tests/test_storm.py \
		tests/test_perf_guards.py::test_latest_on_100k_entries_of_each_layout_reads_at_most_3_markers
# The README's pictures of `ckpt list`, `list --plot` and `load`: run for real in a pty
captures: install
	$(PY) examples/readme_captures.py

# Not part of `make test`: times ckpt against the floor of each job and writes BENCHMARKS.md.
bench: install
	$(PY) benchmarks/run.py --out BENCHMARKS.md

# Not part of `make test`: rebuilds tests/fixtures/<framework>/ with the real frameworks on the
# CPU (the Trainer, DeepSpeed, DCP/TorchTitan, Accelerate, Lightning, Megatron-LM in
# .venv-fixtures/; Orbax in .venv-fixtures-jax/), so that `make test` never installs torch.
fixtures:
	bash fixtures_gen/make_fixtures.sh

clean:
	rm -rf $(VENV) .venv-fixtures .venv-fixtures-jax demo-run .pytest_cache .mypy_cache .ruff_cache .hypothesis
