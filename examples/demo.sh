#!/usr/bin/env bash
# `make demo`: a short simulated training run, then what a person and a cron job would run.
set -euo pipefail
CKPT=${CKPT:-ckpt}
PY=${PY:-python3}
RUN=demo-run/checkpoints
rm -rf demo-run
mkdir -p demo-run

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# A dozen checkpoints: the loss falls, then turns noisy. The "framework" writes the weights
# into checkpoint-<step>/ first; `ckpt save` seals the folder with metadata.json.
losses=(2.31 1.62 1.18 0.93 0.77 0.66 0.61 0.63 0.58 0.62 0.57 0.60)
for i in "${!losses[@]}"; do
  s=$(( (i + 1) * 250 ))
  mkdir -p "$RUN/checkpoint-$s"
  head -c 65536 /dev/urandom > "$RUN/checkpoint-$s/model.bin"
  $PY -c "import json,random; random.seed($s); print(json.dumps([random.random() for _ in range(2000)]))" \
    > demo-run/optimizer.json
  "$CKPT" save "$RUN" --step "$s" --epoch $(( i / 4 )) --loss "${losses[$i]}" \
    --rng-state $(( 1000 + s )) --optimizer-state demo-run/optimizer.json >/dev/null
done
echo "saved 12 checkpoints into $RUN"

step ckpt list "$RUN"
"$CKPT" list "$RUN"
step ckpt list "$RUN" --plot
"$CKPT" list "$RUN" --plot
step ckpt list "$RUN" --sort loss --limit 3
"$CKPT" list "$RUN" --sort loss --limit 3
step ckpt latest "$RUN"
"$CKPT" latest "$RUN"
step ckpt load "$RUN/checkpoint-3000" --field best_loss
"$CKPT" load "$RUN/checkpoint-3000" --field best_loss
step ckpt load "$RUN/checkpoint-2250"
"$CKPT" load "$RUN/checkpoint-2250"
step ckpt verify "$RUN"
"$CKPT" verify "$RUN"
step ckpt prune "$RUN" --keep-last 3 --keep-best 1 --dry-run
"$CKPT" prune "$RUN" --keep-last 3 --keep-best 1 --dry-run

# A run that the Hugging Face Trainer wrote (the real Trainer's files, from tests/fixtures:
# `make fixtures` made them), with a save torn by a kill at checkpoint-30 beside it.
TRAINER=demo-run/trainer-out
cp -r tests/fixtures/hf_trainer/complete "$TRAINER"
cp -r tests/fixtures/hf_trainer/torn-after-optimizer/checkpoint-30 "$TRAINER/checkpoint-70"
step ckpt list "$TRAINER"
"$CKPT" list "$TRAINER"
step ckpt latest "$TRAINER"
"$CKPT" latest "$TRAINER"
step ckpt prune "$TRAINER" --keep-last 2 --dry-run
"$CKPT" prune "$TRAINER" --keep-last 2 --dry-run
step ckpt save "$TRAINER" --step 60
"$CKPT" save "$TRAINER" --step 60
step ckpt verify "$TRAINER/checkpoint-60"
"$CKPT" verify "$TRAINER/checkpoint-60"

# The other frameworks' runs, as the real frameworks wrote them (tests/fixtures): a DeepSpeed
# run killed before it rewrote `latest` (the hint names global_step4; the highest complete tag
# is global_step6, and global_step4 is kept), and a Lightning run whose checkpoints are files.
DEEPSPEED=demo-run/deepspeed
cp -r tests/fixtures/deepspeed/torn-before-latest "$DEEPSPEED"
step ckpt list "$DEEPSPEED"
"$CKPT" list "$DEEPSPEED"
step ckpt latest "$DEEPSPEED"
"$CKPT" latest "$DEEPSPEED"
step ckpt prune "$DEEPSPEED" --keep-last 1 --dry-run
"$CKPT" prune "$DEEPSPEED" --keep-last 1 --dry-run
LIGHTNING=demo-run/lightning
cp -r tests/fixtures/lightning/topk-copy/checkpoints "$LIGHTNING"
step ckpt list "$LIGHTNING"
"$CKPT" list "$LIGHTNING"
step ckpt latest "$LIGHTNING"
"$CKPT" latest "$LIGHTNING"
