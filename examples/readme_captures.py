"""Regenerate the terminal captures in README.md (`make captures`), never drawn by hand.

Each capture in the README sits between `<!-- capture: ckpt ARGS -->` and `<!-- end capture -->`.
This script builds a sample run (`runs/exp7/checkpoints`, the demo's loss curve, sealed by the
real `ckpt save` with sparse weight files so that sizes look like a model's), runs each
`ckpt ARGS` in a real pseudo-terminal (as a person sees it, colour turned off with NO_COLOR),
and writes what the terminal showed back into the README.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ptyrun import run_in_pty  # noqa: E402  (the tests' pty runner, reused)

CKPT = Path(sys.executable).parent / "ckpt"
COLUMNS = 92
LOSSES = [2.31, 1.62, 1.18, 0.93, 0.77, 0.66, 0.61, 0.63, 0.58, 0.62, 0.57, 0.60]
CAPTURE = re.compile(
    r"(<!-- capture: ckpt (?P<args>[^>]*?) -->\n)```text\n.*?```\n(<!-- end capture -->)",
    re.DOTALL,
)


def build_run(root: Path) -> None:
    """Twelve checkpoints, 250 steps and about twenty minutes apart, the newest 5 minutes old;
    checkpoint-3250 is a save in progress (weights written, no metadata.json yet)."""
    run = root / "runs" / "exp7" / "checkpoints"
    run.mkdir(parents=True)
    state = root / "optimizer.json"
    state.write_text(json.dumps([((i * 7919) % 1000) / 1000 - 0.5 for i in range(4096)]))
    now = time.time()
    for index, loss in enumerate(LOSSES):
        step = (index + 1) * 250
        folder = run / f"checkpoint-{step}"
        folder.mkdir()
        with open(folder / "model.safetensors", "wb") as weights:
            weights.truncate(498_000_000)  # sparse: the size of a small model, no disk used
        (folder / "config.json").write_text('{"hidden_size": 768}')
        subprocess.run(
            [str(CKPT), "save", str(run), "--step", str(step), "--epoch", str(index // 4)]
            + ["--loss", str(loss), "--rng-state", str(1000 + step), "--no-hash"]
            + ["--optimizer-state", str(state)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _set_saved_at(folder, now - 300 - (len(LOSSES) - 1 - index) * 1200)
    (run / "checkpoint-3250").mkdir()
    with open(run / "checkpoint-3250" / "model.safetensors", "wb") as weights:
        weights.truncate(212_000_000)


def _set_saved_at(folder: Path, seconds: float) -> None:
    """Spread the sample run over time as a real one is (the saves above took a second)."""
    from ckpt_cli.core.format import format_timestamp

    path = folder / "metadata.json"
    doc = json.loads(path.read_text())
    doc["ckpt"]["saved_at"] = format_timestamp(seconds)
    path.write_text(json.dumps(doc, indent=2))
    os.utime(folder, (seconds, seconds))


def capture(root: Path, args: str) -> str:
    command = [str(CKPT), *args.split()]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code, shown = run_in_pty(command, env={"NO_COLOR": "1"}, columns=COLUMNS)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"ckpt {args} exited {code}:\n{shown}")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r\n", "\n")
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_run(root)

        def replace(match: re.Match[str]) -> str:
            shown = capture(root, match.group("args"))
            return f"{match.group(1)}```text\n{shown}```\n{match.group(3)}"

        new, count = CAPTURE.subn(replace, text)
    if count == 0:
        raise SystemExit("README.md has no <!-- capture: ckpt ... --> block")
    readme.write_text(new)
    print(f"README.md: {count} captures regenerated")


if __name__ == "__main__":
    main()
