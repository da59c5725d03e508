"""`make bench` at its smallest: every case runs and BENCHMARKS.md gets every ratio. Nothing
here is timed or compared with a target: the machine is shared and noisy (see BENCHMARKS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_writes_every_case(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    summary = re.findall(r"^\| (\d+)\. .* \| ([0-9.]+)× \| .* \| (yes|NO) \|$", text, re.M)
    assert [case for case, _, _ in summary] == [str(case) for case in range(1, 15)], text
    assert all(float(ratio) > 0 for _, ratio, _ in summary)
    for heading in ("## Machine", "peak memory", "metadata.json opened", "Before and after"):
        assert heading in text


def test_a_command_s_peak_memory_is_its_own_not_the_runner_s() -> None:
    """Linux hands a child its parent's peak RSS at the spawn; the runner's helper process
    keeps that out of the figures, however large the runner has grown."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run  # the runner, as a module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ballast = b"\1" * (300 * 2**20)  # written, so resident: this process grows by 300 MiB
    _, peak_kb, out = run.run_process([sys.executable, "-c", "print('ok')"])
    assert out == b"ok\n"
    assert peak_kb < 100 * 1024, f"{peak_kb} KiB: the runner's memory, not the command's"
    del ballast
