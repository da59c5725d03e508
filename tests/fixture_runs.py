"""Shared by the layout tests: run the installed `ckpt`, copy a real fixture run, age it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .conftest import CKPT_BIN, REPO

FIXTURES = REPO / "tests" / "fixtures"
DAY = 86400.0


def ckpt(*args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


def ckpt_json(*args: str | Path, code: int = 0) -> Any:
    return json.loads(ckpt(*args, "--json", code=code).stdout)


def age(run: Path, days: float) -> None:
    """Every folder and file `days` old, as a run a cron job finds (git gave them today's)."""
    then = time.time() - days * DAY
    for current, dirs, files in os.walk(run):
        for name in [*dirs, *files]:
            os.utime(Path(current) / name, (then, then), follow_symlinks=False)


def copy_run(tmp_path: Path, layout: str, scenario: str, below: str = "") -> Path:
    """A copy of a fixture scenario (symlinks kept as links); the run directory in it."""
    run = tmp_path / scenario
    shutil.copytree(FIXTURES / layout / scenario, run, symlinks=True)
    return run / below if below else run


def statuses(run: Path, *args: str) -> dict[str, str]:
    return {e["name"]: e["status"] for e in ckpt_json("list", run, *args)}


def tree(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}
