#!/usr/bin/env bash
# Regenerate tests/fixtures/hf_trainer/ with the real Hugging Face Trainer (see fixtures_gen/hf_trainer.py).
# Creates or reuses .venv-fixtures/ at the repo root (torch, transformers: never needed by `make test`),
# installs fixtures_gen/requirements-hf.txt when it changed, deletes the output folder and writes it anew.
# Run from anywhere: bash fixtures_gen/make_fixtures.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-fixtures
REQ=fixtures_gen/requirements-hf.txt
OUT=tests/fixtures/hf_trainer
STAMP=$VENV/.installed-hf

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# Keep the environment out of `git status` without touching the repo's .gitignore.
printf '*\n' > "$VENV/.gitignore"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "make_fixtures: installing $REQ into $VENV (torch: a few minutes the first time)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" > "$STAMP"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 CUDA_VISIBLE_DEVICES= PYTHONHASHSEED=0
rm -rf "$OUT"
"$VENV/bin/python" fixtures_gen/hf_trainer.py --out "$OUT"
