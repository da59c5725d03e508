"""What a person sees: `list`, `list --plot`, `load` and `prune --dry-run` in a real terminal
(a pty) and through a real pipe, colour and NO_COLOR, progress on stderr only on a terminal,
and the --sort/--limit/--all rules of `list` in every output."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpt_cli.cli import views
from ckpt_cli.core.records import CheckpointRecord

from .conftest import CKPT_BIN, REPO, invoke, make_checkpoint
from .ptyrun import run_in_pty

LOSSES = [2.31, 1.62, 1.18, 0.93, 0.77, 0.66, 0.61, 0.63, 0.58, 0.62, 0.57, 0.60]
BOX = "┃│━─┏┗╭╰"
#: SGR parameters that set a colour (foreground, background, 256-colour and truecolour)
_COLOUR_PARAMS = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


def colour_codes(text: str) -> list[str]:
    """The escape sequences in `text` that set a colour (bold or dim set none)."""
    found = []
    for match in re.finditer(r"\x1b\[([0-9;]*)m", text):
        params = {int(p) for p in match.group(1).split(";") if p}
        if params & _COLOUR_PARAMS:
            found.append(match.group(0))
    return found


def plain(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r\n", "\n")


def ckpt_in_pty(*args: str, columns: int = 120, env: dict[str, str] | None = None) -> str:
    code, shown = run_in_pty([str(CKPT_BIN), *args], env=env, columns=columns)
    assert code == 0, shown
    return shown


def ckpt_in_pipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    return subprocess.run(
        [str(CKPT_BIN), *args], capture_output=True, text=True, check=True, env=full_env
    )


@pytest.fixture
def demo_run(run_dir: Path) -> Path:
    """The demo's twelve checkpoints: a loss that falls, then turns noisy; one incomplete."""
    best = float("inf")
    for index, loss in enumerate(LOSSES):
        best = min(best, loss)
        step = (index + 1) * 250
        make_checkpoint(run_dir, step, epoch=index // 4, loss=loss, best_loss=best)
    (run_dir / "checkpoint-3250").mkdir()
    return run_dir


# ---- list ----------------------------------------------------------------------------------


def test_list_on_a_terminal_is_a_coloured_table_with_markers_and_footer(demo_run: Path) -> None:
    shown = ckpt_in_pty("list", str(demo_run))
    text = plain(shown)
    assert colour_codes(shown)
    header = next(line for line in text.splitlines() if "step" in line)
    assert "┃" in header
    for column in ("step", "epoch", "loss", "best loss", "size", "age", "status"):
        assert column in header
    row = next(line for line in text.splitlines() if "│ 2750 │" in line)
    assert re.search(r"│ +0\.57 │ +0\.57 │ .* │ valid +│ best", row), row
    assert re.search(r"│ 3000 │ .* valid +│ latest", text)
    assert re.search(r"│ 3250 │ .* incomplete", text)
    assert "13 entries (12 valid, 1 incomplete)" in text
    assert "resume: checkpoint-3000" in text
    assert "best: checkpoint-2750 (loss 0.57)" in text
    assert "showing" not in text  # 13 rows: nothing hidden


def test_no_color_keeps_the_table_and_drops_the_colour(demo_run: Path) -> None:
    shown = ckpt_in_pty("list", str(demo_run), env={"NO_COLOR": "1"})
    assert not colour_codes(shown)
    assert "┃" in shown and "resume: checkpoint-3000" in plain(shown)


def test_list_in_a_pipe_is_plain_greppable_text(demo_run: Path) -> None:
    done = ckpt_in_pipe("list", str(demo_run))
    assert "\x1b[" not in done.stdout and not any(c in done.stdout for c in BOX)
    lines = done.stdout.splitlines()
    assert lines[0].split() == views.LIST_HEADER
    assert all(len(line.split()) == 10 for line in lines), done.stdout
    assert [line.split()[0] for line in lines[1:]] == [str(s * 250) for s in range(1, 14)]
    assert done.stderr == ""


def test_list_table_fits_a_narrow_terminal(demo_run: Path) -> None:
    for columns in (80, 60, 45):
        text = plain(ckpt_in_pty("list", str(demo_run), columns=columns))
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= columns, text
        # narrow terminals drop whole columns (epoch first), they never cut numbers short
        assert "…" not in text
        assert re.search(r"│ +2750 │.*0\.57 │", text), text
    assert "epoch" not in plain(ckpt_in_pty("list", str(demo_run), columns=60))


def test_a_long_run_shows_the_newest_rows_and_says_how_to_see_all(run_dir: Path) -> None:
    for step in range(1, 31):
        make_checkpoint(run_dir, step * 10, loss=1.0 / step, best_loss=1.0 / step)
    text = plain(ckpt_in_pty("list", str(run_dir)))
    steps = re.findall(r"^│ +(\d+) │", text, re.MULTILINE)
    assert steps == [str(s * 10) for s in range(11, 31)]
    assert "showing 20 of 30 (the newest): --all for every row, --limit N for N" in text
    assert "30 entries (30 valid)" in text
    every = plain(ckpt_in_pty("list", str(run_dir), "--all"))
    assert len(re.findall(r"^│ +\d+ │", every, re.MULTILINE)) == 30
    assert "showing" not in every
    five = plain(ckpt_in_pty("list", str(run_dir), "--sort", "loss", "--limit", "5"))
    assert re.findall(r"^│ +(\d+) │", five, re.MULTILINE) == ["300", "290", "280", "270", "260"]
    assert "(the lowest losses)" in five


# ---- --sort, --limit and --all in the plain and JSON output ----------------------------------


def test_sort_and_limit_apply_to_plain_and_json_output(demo_run: Path) -> None:
    def steps(*args: str) -> list[str]:
        result = invoke("list", str(demo_run), *args)
        assert result.exit_code == 0, result.stderr
        return [line.split()[0] for line in result.stdout.splitlines()[1:]]

    def json_steps(*args: str) -> list[int | None]:
        docs = json.loads(invoke("list", str(demo_run), "--json", *args).stdout)
        return [d["global_step"] for d in docs]

    assert len(steps()) == 13 and len(json_steps()) == 13  # pipes and JSON: every row
    assert steps("--limit", "3") == ["2750", "3000", "3250"]  # the newest, oldest first
    assert json_steps("--limit", "3") == [2750, 3000, 3250]
    assert steps("--sort", "loss", "--limit", "3") == ["2750", "2250", "3000"]
    assert json_steps("--sort", "loss")[-1] == 3250  # no loss: last
    an_hour_on = time.time() + 3600  # file-system clocks are coarser than time.time()
    os.utime(demo_run / "checkpoint-3250", (an_hour_on, an_hour_on))
    assert steps("--sort", "age")[:2] == ["3250", "3000"]  # the youngest first
    assert steps("--sort", "size", "--limit", "1") != ["3250"]  # the empty folder is smallest
    assert steps("--all") == steps()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--limit", "3"], "--all and --limit contradict each other; give one"),
        (["--plot", "--json"], "--plot draws a chart by step; it takes no --json"),
        (["--plot", "--sort", "loss"], "--plot draws a chart by step; it takes no --sort"),
    ],
)
def test_list_option_conflicts_are_usage_errors(
    demo_run: Path, args: list[str], message: str
) -> None:
    result = invoke("list", str(demo_run), *args)
    assert result.exit_code == 2
    assert result.stderr == f"ckpt: error: {message}\n"


def test_bad_sort_key_is_a_usage_error(demo_run: Path) -> None:
    result = invoke("list", str(demo_run), "--sort", "name")
    assert result.exit_code == 2
    assert "'name' is not one of 'step', 'loss', 'age', 'size'" in result.stderr


def record(name: str, step: int | None, **fields: object) -> CheckpointRecord:
    return CheckpointRecord(Path(name), name, "checkpoint", "valid", step=step, **fields)  # type: ignore[arg-type]


def test_select_rows_puts_unknown_values_last_and_limits_by_what_matters() -> None:
    records = [
        record("a", 1, loss=0.5, saved_at=100.0, size=10),
        record("b", 2, best_loss=0.2, saved_at=300.0, size=30),
        record("c", 3, saved_at=200.0),
        record("d", None),
    ]
    names = lambda rows: [r.name for r in rows]  # noqa: E731
    assert names(views.select_rows(records, "step")) == ["a", "b", "c", "d"]
    assert names(views.select_rows(records, "step", 2)) == ["c", "d"]
    assert names(views.select_rows(records, "loss")) == ["b", "a", "c", "d"]
    assert names(views.select_rows(records, "loss", 1)) == ["b"]
    assert names(views.select_rows(records, "age")) == ["b", "c", "a", "d"]
    assert names(views.select_rows(records, "size", 2)) == ["b", "a"]
    assert views.hidden_rows_note(4, 4, "step") is None


# ---- the loss picture ----------------------------------------------------------------------


def test_plot_on_a_terminal_draws_both_losses_in_a_panel(demo_run: Path) -> None:
    shown = ckpt_in_pty("list", str(demo_run), "--plot", columns=100)
    text = plain(shown)
    assert "╭─ loss by step: " in text
    assert re.search("[\u2801-\u28ff]", text)  # braille dots: the curve
    assert "best loss" in text and "• loss" in text.replace("⠤", "")
    assert "(step)" in text and "(loss)" in text
    assert "resume: checkpoint-3000" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert colour_codes(shown)
    assert not colour_codes(ckpt_in_pty("list", str(demo_run), "--plot", env={"NO_COLOR": "1"}))


def test_plot_in_a_pipe_is_the_chart_without_colour(demo_run: Path) -> None:
    done = ckpt_in_pipe("list", str(demo_run), "--plot", env={"COLUMNS": "70"})
    assert "\x1b[" not in done.stdout
    assert re.search("[\u2801-\u28ff]", done.stdout)
    assert "best loss" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 70


def test_plot_with_too_few_points_says_why(run_dir: Path) -> None:
    make_checkpoint(run_dir, 1, loss=0.5, best_loss=0.5)
    result = invoke("list", str(run_dir), "--plot")
    assert result.exit_code == 0
    assert result.stdout == (
        "nothing to plot: 1 valid checkpoint (a curve needs two steps or more)\n"
    )


def test_plot_limit_draws_the_newest_checkpoints() -> None:
    records = [record(f"c{s}", s, loss=1.0 / s, best_loss=1.0 / s) for s in range(1, 11)]
    series = views.loss_series(records, limit=3)
    assert series.steps == [8, 9, 10] and series.own_steps == [8, 9, 10]
    chart = views.loss_chart(series, width=60)
    assert chart is not None and "\x1b[" not in chart
    assert max(len(line) for line in chart.splitlines()) <= 60


# ---- load ----------------------------------------------------------------------------------


@pytest.fixture
def big_checkpoint(run_dir: Path) -> Path:
    state = [i / 7 for i in range(5000)]
    return make_checkpoint(run_dir, 1500, loss=0.41, best_loss=0.41, optimizer_state=state)


def test_load_on_a_terminal_is_a_panel_that_summarises_the_optimizer_state(
    big_checkpoint: Path,
) -> None:
    shown = ckpt_in_pty("load", str(big_checkpoint))
    text = plain(shown)
    assert text.startswith(f"╭─ {big_checkpoint} ")
    assert re.search(r"│ global_step +1500 ", text)
    assert "5,000 values" in text
    assert "min 0   max 714.143   mean 357.071" in text
    assert "first [0, 0.142857, 0.285714, 0.428571, 0.571429, …]" in text
    assert "714.1428" not in text.replace("714.143", "")  # the state is not dumped
    assert re.search(r"saved_at +\S+Z +\(\d+s ago\)", text)
    assert colour_codes(ckpt_in_pty("load", str(big_checkpoint), "--field", "epoch")) == []


def test_load_in_a_pipe_is_plain_and_json_dumps_everything(big_checkpoint: Path) -> None:
    done = ckpt_in_pipe("load", str(big_checkpoint))
    assert "\x1b[" not in done.stdout and not any(c in done.stdout for c in BOX)
    assert re.search(r"^optimizer_state +5000 values: min 0, max 714.143", done.stdout, re.M)
    assert len(done.stdout) < 2000
    doc = json.loads(ckpt_in_pipe("load", str(big_checkpoint), "--json").stdout)
    assert len(doc["optimizer_state"]) == 5000


def test_load_with_no_color_on_a_terminal(big_checkpoint: Path) -> None:
    shown = ckpt_in_pty("load", str(big_checkpoint), env={"NO_COLOR": "1"})
    assert "╭─" in shown and not colour_codes(shown)


# ---- prune --dry-run -----------------------------------------------------------------------


def test_prune_dry_run_on_a_terminal_and_in_a_pipe(demo_run: Path) -> None:
    args = ("prune", str(demo_run), "--keep-last", "2", "--keep-best", "1", "--dry-run")
    shown = ckpt_in_pty(*args)
    text = plain(shown)
    assert colour_codes(shown)
    assert f"{demo_run} (dry run: nothing is deleted)" in " ".join(text.split())
    assert re.search(r"│ +250 │ .*│ delete +│ no rule keeps it", text)
    assert re.search(r"│ +2750 │ .*│ keep +│ last 2, best 1", text)
    assert re.search(r"│ +3250 │ .*│ keep +│ incomplete, never deleted without", text)
    assert "kept 3, would delete 10, stale removed 0, skipped 0" in text
    assert not colour_codes(ckpt_in_pty(*args, env={"NO_COLOR": "1"}))
    done = ckpt_in_pipe(*args)
    assert "\x1b[" not in done.stdout and not any(c in done.stdout for c in BOX)
    first = demo_run / "checkpoint-250"
    assert f"would delete checkpoint {first} (no rule keeps it;" in done.stdout
    assert f"kept {demo_run / 'checkpoint-3250'} (incomplete, never deleted" in done.stdout
    assert done.stdout.splitlines()[-1].startswith(f"{demo_run}: kept 3, would delete 10,")
    assert len(list(demo_run.glob("checkpoint-*"))) == 13


# ---- progress ------------------------------------------------------------------------------


def test_progress_shows_on_a_terminal_and_never_in_a_pipe(run_dir: Path, tmp_path: Path) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(3 << 20))
    save = ("save", str(run_dir), "--step", "1", "--loss", "0.5", str(payload))
    assert "copying payload" in plain(ckpt_in_pty(*save))
    assert "hashing payload" in plain(ckpt_in_pty("verify", str(run_dir)))
    for step in (2, 3, 4):
        make_checkpoint(run_dir, step)
    shown = plain(ckpt_in_pty("prune", str(run_dir), "--keep-last", "1", "--yes"))
    assert re.search(r"pruning\s+3 deleted, [\d.]+ [KM]?B freed", shown), shown

    done = ckpt_in_pipe(*save[:3], "5", *save[4:])
    assert done.stderr == "" and done.stdout == f"{run_dir / 'checkpoint-5'}\n"
    done = ckpt_in_pipe("verify", str(run_dir))
    assert done.stderr == ""
    for step in (6, 7):
        make_checkpoint(run_dir, step)
    done = ckpt_in_pipe("prune", str(run_dir), "--keep-last", "1", "--yes")
    assert done.stderr == "" and "deleted checkpoint" in done.stdout


def test_progress_on_stderr_never_touches_piped_stdout(run_dir: Path, tmp_path: Path) -> None:
    """stdout in a pipe, stderr on a terminal (`ckpt save ... | tee log`): the bar is drawn on
    the terminal and stdout holds just the data."""
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(2 << 20))
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100")
    process = subprocess.Popen(
        [str(CKPT_BIN), "save", str(run_dir), "--step", "1", "--loss", "1", str(payload)],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = process.communicate()
    os.close(master)
    assert process.returncode == 0
    assert stdout.decode() == f"{run_dir / 'checkpoint-1'}\n"
    assert "copying payload" in b"".join(chunks).decode("utf-8", "replace")


# ---- what a job script loads ---------------------------------------------------------------


@pytest.mark.parametrize("args", [["latest"], ["list"], ["list", "--json"], ["load"]])
def test_pipes_never_import_rich_or_the_plotting_library(run_dir: Path, args: list[str]) -> None:
    target = make_checkpoint(run_dir, 1) if args == ["load"] else run_dir
    make_checkpoint(run_dir, 2)
    code = (
        "import sys\n"
        "from ckpt_cli.cli import app\n"
        "try:\n"
        f"    app({[*args, str(target)]!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'plotille'})\n"
        "sys.stderr.write(f'LOADED {loaded}\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("LOADED []\n"), done.stderr


# ---- help ----------------------------------------------------------------------------------


def test_root_help_lists_every_command_with_a_whole_summary_line() -> None:
    from .test_docs import COMMANDS

    result = invoke("--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    summaries = dict(re.findall(r"^  (\w+) +(.+)$", result.stdout.split("Commands:")[1], re.M))
    assert sorted(summaries) == COMMANDS
    for command, summary in summaries.items():
        assert summary.endswith(".") and not summary.endswith("..."), (command, summary)


def test_readme_shows_captures_of_list_plot_and_load() -> None:
    """`make captures` fills these from the real commands; this checks they are there and
    show what the commands show today (the table's header, the chart, the panel)."""
    readme = (REPO / "README.md").read_text()
    blocks = dict(
        re.findall(
            r"<!-- capture: (ckpt [^>]*?) -->\n```text\n(.*?)```\n<!-- end capture -->",
            readme,
            re.DOTALL,
        )
    )
    run = "runs/exp7/checkpoints"
    assert set(blocks) == {
        f"ckpt list {run}",
        f"ckpt list {run} --plot",
        f"ckpt load {run}/checkpoint-2750",
    }
    table = blocks[f"ckpt list {run}"]
    assert "┃ step ┃ epoch ┃ loss ┃ best loss ┃" in table
    assert "resume: checkpoint-3000" in table and "incomplete" in table
    assert f"╭─ loss by step: {run} " in blocks[f"ckpt list {run} --plot"]
    assert re.search("[\u2801-\u28ff]", blocks[f"ckpt list {run} --plot"])
    assert "values" in blocks[f"ckpt load {run}/checkpoint-2750"]
