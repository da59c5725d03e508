"""The seed document's "Training Loop Integration" example, in Python, with its TODOs done.

A toy model (linear regression trained by SGD with momentum) stands in for a real one so that the
example runs in a second and is deterministic: the optimizer state (the momentum buffer) and the
RNG state (a 64-bit xorshift generator whose whole state fits the seed's `rng_state: u64`) are
really saved and restored, and the weights are saved as a payload file beside metadata.json.

Run it, interrupt it (`--stop-at STEP` simulates a pre-empted job), run it again: it resumes from
the latest checkpoint and ends with exactly the weights of an uninterrupted run.

    python examples/training_loop.py --output-dir ./checkpoints --stop-at 1700
    python examples/training_loop.py --output-dir ./checkpoints
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from ckpt_cli import Checkpoint, CheckpointConfig, CkptError

MASK64 = (1 << 64) - 1
TRUE_WEIGHTS = [0.5, -1.25, 2.0]


class XorShift64:
    """xorshift64*: the whole generator state is one u64, so `rng_state` restores it exactly."""

    def __init__(self, state: int) -> None:
        self.state = state & MASK64 or 0x9E3779B97F4A7C15

    def next_float(self) -> float:
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & MASK64
        x ^= x >> 27
        self.state = x
        return ((x * 0x2545F4914F6CDD1D) & MASK64) / float(1 << 64)


def sample(rng: XorShift64) -> tuple[list[float], float]:
    features = [rng.next_float() * 2 - 1 for _ in TRUE_WEIGHTS]
    noise = (rng.next_float() - 0.5) * 0.1
    return features, sum(w * x for w, x in zip(TRUE_WEIGHTS, features, strict=True)) + noise


def train(
    output_dir: Path, epochs: int, steps_per_epoch: int, stop_at: int | None
) -> dict[str, object]:
    config = CheckpointConfig(output_dir=output_dir, save_every_n_steps=100, max_checkpoints=3)
    weights = [0.0] * len(TRUE_WEIGHTS)
    momentum = [0.0] * len(TRUE_WEIGHTS)
    rng = XorShift64(12345)
    best_loss = math.inf
    try:
        checkpoint = Checkpoint.find_latest(config.output_dir)
        print(
            f"Resuming from checkpoint: epoch {checkpoint.epoch}, step {checkpoint.global_step}",
            file=sys.stderr,
        )
        assert checkpoint.path is not None and checkpoint.rng_state is not None
        weights = json.loads((checkpoint.path / "weights.json").read_text())
        momentum = list(checkpoint.optimizer_state)
        rng = XorShift64(checkpoint.rng_state)
        best_loss = checkpoint.best_loss
        start_epoch, start_step = checkpoint.epoch, checkpoint.global_step + 1
    except CkptError as exc:
        print(f"Starting training from scratch ({exc})", file=sys.stderr)
        start_epoch, start_step = 0, 0

    loss = math.nan
    for epoch in range(start_epoch, epochs):
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            if global_step < start_step:
                continue  # already done before the restart
            if stop_at is not None and global_step == stop_at:
                print(f"Stopping at step {global_step} (simulated pre-emption)", file=sys.stderr)
                return {"stopped_at": global_step}
            features, target = sample(rng)
            error = sum(w * x for w, x in zip(weights, features, strict=True)) - target
            loss = error * error
            for i, x in enumerate(features):
                momentum[i] = 0.9 * momentum[i] + 2 * error * x
                weights[i] -= 0.01 * momentum[i]

            if config.should_save(global_step):
                best_loss = min(best_loss, loss)
                checkpoint = Checkpoint(
                    epoch=epoch,
                    global_step=global_step,
                    best_loss=best_loss,
                    optimizer_state=momentum,
                    rng_state=rng.state,
                    loss=loss,
                )
                with tempfile.TemporaryDirectory() as scratch:
                    weights_file = Path(scratch) / "weights.json"
                    weights_file.write_text(json.dumps(weights))
                    checkpoint.save(config.checkpoint_path(global_step), payloads=[weights_file])
                Checkpoint.cleanup_old(config)
    return {"weights": weights, "last_loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("./checkpoints"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=1000)
    parser.add_argument("--stop-at", type=int, default=None)
    args = parser.parse_args()
    result = train(args.output_dir, args.epochs, args.steps_per_epoch, args.stop_at)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
