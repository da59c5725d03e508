#!/usr/bin/env bash
# Regenerate tests/fixtures/<framework>/ with the real frameworks (see each fixtures_gen/*.py):
# the Hugging Face Trainer, DeepSpeed, PyTorch DCP (TorchTitan), Accelerate, Lightning and
# Megatron-LM in .venv-fixtures/ (torch), Orbax in .venv-fixtures-jax/ (jax): never needed by
# `make test`. Each environment is installed again when its requirements changed; each output
# folder is deleted and written anew. Run from anywhere: bash fixtures_gen/make_fixtures.sh [NAME...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
ONLY=("$@")

wanted() { [ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " == *" $1 "* ]]; }

# venv, stamp name, then "requirements file[:--no-deps]"... (installed in that order)
setup() {
    local venv=$1 stamp=$venv/.installed-$2
    shift 2
    test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
    # Keep the environment out of `git status` without touching the repo's .gitignore.
    printf '*\n' > "$venv/.gitignore"
    local want
    want=$(cat "${@%%:*}" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "make_fixtures: installing $* into $venv (a few minutes the first time)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        for req in "$@"; do
            local flags=()
            [[ $req == *:--no-deps ]] && flags=(--no-deps)
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${flags[@]}" -r "${req%%:*}"
        done
        echo "$want" > "$stamp"
    fi
}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 CUDA_VISIBLE_DEVICES= PYTHONHASHSEED=0

# torchtitan's own requirements would downgrade huggingface-hub: only what its checkpointer imports
setup .venv-fixtures torch \
    fixtures_gen/requirements-hf.txt \
    fixtures_gen/requirements-deepspeed.txt \
    fixtures_gen/requirements-accelerate.txt \
    fixtures_gen/requirements-lightning.txt \
    fixtures_gen/requirements-megatron.txt \
    fixtures_gen/requirements-dcp.txt:--no-deps

run() {  # name, venv, generator
    wanted "$1" || return 0
    echo "make_fixtures: $1"
    rm -rf "tests/fixtures/$1"
    "$2/bin/python" "$3" --out "tests/fixtures/$1"
}

run hf_trainer .venv-fixtures fixtures_gen/hf_trainer.py
run deepspeed .venv-fixtures fixtures_gen/deepspeed_runs.py
run dcp .venv-fixtures fixtures_gen/dcp_runs.py
run accelerate .venv-fixtures fixtures_gen/accelerate_runs.py
run lightning .venv-fixtures fixtures_gen/lightning_runs.py
run megatron .venv-fixtures fixtures_gen/megatron_runs.py
if wanted orbax; then
    setup .venv-fixtures-jax jax fixtures_gen/requirements-orbax.txt
    run orbax .venv-fixtures-jax fixtures_gen/orbax_runs.py
fi
