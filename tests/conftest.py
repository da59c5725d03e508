"""Shared fixtures: run directories built in tmp_path, and a CLI runner with split streams."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ckpt_cli import Checkpoint
from ckpt_cli.cli import app

REPO = Path(__file__).resolve().parent.parent
CKPT_BIN = Path(sys.executable).parent / "ckpt"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def make_checkpoint(run_dir: Path, step: int, **fields: Any) -> Path:
    """A valid checkpoint written through the API (loss defaults to a falling curve)."""
    values: dict[str, Any] = {
        "epoch": step // 1000,
        "global_step": step,
        "best_loss": 1.0 / (1 + step),
        "optimizer_state": [0.1, 0.2, 0.3],
        "rng_state": 12345,
    }
    values.update(fields)
    return Checkpoint(**values).save(run_dir / f"checkpoint-{step}")


@pytest.fixture
def checkpoint_factory(run_dir: Path) -> Callable[..., Path]:
    def factory(step: int, **fields: Any) -> Path:
        return make_checkpoint(run_dir, step, **fields)

    return factory


def write_seed_metadata(folder: Path, doc: dict[str, Any]) -> Path:
    """metadata.json exactly as the seed crate writes it: serde_json::to_string_pretty
    (two-space indent, `"key": value`, no trailing newline)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metadata.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; result.stdout and result.stderr are separate."""
    return CliRunner().invoke(app, [os.fspath(a) for a in args], input=input, env=env)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many kills the fault-injection tests made (the issue asks for the counts)."""
    module = sys.modules.get("tests.test_faults")
    kills = getattr(module, "KILLS", None)
    if kills and any(kills.values()):
        terminalreporter.write_line(
            f"fault injection: killed save at {kills['save']} fault points and prune at "
            f"{kills['prune']}, plus {kills['random']} kills at random instants; "
            f"{kills['unsafe']} unsafe outcomes"
        )
