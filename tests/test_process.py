"""What only a real process shows: `python -m ckpt_cli`, the installed `ckpt`, real pipes,
no tracebacks, and how many metadata.json files `latest` opens among thousands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import CKPT_BIN, make_checkpoint


def write_raw(run_dir: Path, step: int, best: float = 0.5) -> None:
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir()
    doc = {
        "epoch": 0,
        "global_step": step,
        "best_loss": best,
        "optimizer_state": [],
        "rng_state": None,
    }
    (folder / "metadata.json").write_text(json.dumps(doc, indent=2))


def test_python_dash_m_and_installed_script(run_dir: Path) -> None:
    make_checkpoint(run_dir, 42)
    for command in ([sys.executable, "-m", "ckpt_cli"], [str(CKPT_BIN)]):
        done = subprocess.run([*command, "latest", str(run_dir)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{run_dir / 'checkpoint-42'}\n"


def test_errors_in_a_real_process_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CKPT_BIN), "list", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert done.returncode == 4
    assert done.stderr == f"ckpt: error: {tmp_path / 'missing'}: no such run directory\n"
    assert "Traceback" not in done.stderr


def test_piped_list_is_plain_text(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1)
    done = subprocess.run(
        [str(CKPT_BIN), "list", str(run_dir)], capture_output=True, text=True, check=True
    )
    assert "\x1b[" not in done.stdout and "┃" not in done.stdout
    assert done.stdout.splitlines()[0].startswith("step")


def _count_metadata_opens(run_dir: Path, *args: str) -> tuple[int, str]:
    code = (
        "import sys\n"
        "opened = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]).endswith('metadata.json'):\n"
        "        opened.append(args[0])\n"
        "sys.addaudithook(hook)\n"
        "from ckpt_cli.cli import app\n"
        "try:\n"
        f"    app({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(f'OPENED {len(opened)}\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    count = int(done.stderr.rsplit("OPENED ", 1)[1])
    return count, done.stdout


def test_latest_reads_a_handful_of_metadata_files_among_thousands(run_dir: Path) -> None:
    for step in range(0, 3000 * 10, 10):
        write_raw(run_dir, step)
    count, out = _count_metadata_opens(run_dir, "latest", str(run_dir))
    assert out == f"{run_dir / 'checkpoint-29990'}\n"
    assert count == 1
    # with the top two broken, it reads exactly those two and the next
    (run_dir / "checkpoint-29990" / "metadata.json").write_text("{")
    (run_dir / "checkpoint-29980" / "metadata.json").unlink()
    count, out = _count_metadata_opens(run_dir, "latest", str(run_dir))
    assert out == f"{run_dir / 'checkpoint-29970'}\n"
    assert count == 3
