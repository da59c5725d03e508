"""One JSON vocabulary: every command's `--json` document has the keys the README's table says,
and names the same checkpoint's values the same way (`jq '.[].global_step'` works on all).

Run through the installed `ckpt` command, as a script would, on a run that holds valid,
incomplete and corrupt checkpoint folders."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import CKPT_BIN, REPO

#: the values of one checkpoint that every document naming them must agree on
SHARED = ("path", "global_step", "epoch", "loss", "best_loss", "rng_state", "saved_at", "status")


def readme_shapes() -> dict[str, set[str]]:
    """command -> keys, from the README's "JSON output" table."""
    text = (REPO / "README.md").read_text()
    section = text.split("### JSON output", 1)[1].split("\n### ", 1)[0]
    shapes: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        keys = set(re.findall(r"`(\w+)`", cells[2]))
        for command in re.findall(r"`(\w+) --json`", cells[0]):
            shapes[command] = keys
    return shapes


def ckpt(*args: str | Path, code: int = 0) -> Any:
    done = subprocess.run([str(CKPT_BIN), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"w" * 100)
    for step, loss in ((100, 0.9), (200, 0.5)):
        ckpt("save", run, "--step", step, "--epoch", 1, "--loss", loss, "--rng-state", 7,
             weights, "--json")  # fmt: skip
    (run / "checkpoint-300").mkdir()  # incomplete: a framework's folder, or a save under way
    (run / "checkpoint-300" / "part.bin").write_bytes(b"p")
    (run / "checkpoint-50").mkdir()
    (run / "checkpoint-50" / "metadata.json").write_text("{ corrupt")
    return run


def test_the_readme_table_names_every_command() -> None:
    assert set(readme_shapes()) == {"list", "latest", "load", "prune", "verify", "save"}


def test_every_document_has_the_readme_keys_and_agrees_on_values(run: Path, tmp_path: Path) -> None:
    shapes = readme_shapes()
    listed = ckpt("list", run, "--json")
    latest = ckpt("latest", run, "--json")
    loaded = ckpt("load", run / "checkpoint-200", "--json")
    plan = ckpt("prune", run, "--keep-last", "1", "--dry-run", "--json")
    entries = plan["runs"][0]["entries"]
    verified = ckpt("verify", run, "--json", code=3)  # checkpoint-50 and -300 fail
    one = ckpt("verify", run / "checkpoint-200", "--json")
    saved = ckpt("save", tmp_path / "other", "--step", 5, "--loss", 0.3, "--json")

    for row in listed:
        assert set(row) == shapes["list"], row
    for entry in entries:
        assert set(entry) | {"deleted"} == shapes["prune"], entry
        assert ("deleted" in entry) == (entry["decision"] == "delete")
    for doc in (latest, loaded):
        assert set(doc) == shapes["latest"] == shapes["load"]
    for doc in (*verified, one):
        assert set(doc) == shapes["verify"]
    assert set(saved) == shapes["save"]

    # the same checkpoint, the same values, under the same keys
    def by_step(docs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {d["global_step"]: d for d in docs}

    rows, planned, checked = by_step(listed), by_step(entries), by_step(verified)
    assert sorted(rows) == sorted(planned) == sorted(checked) == [50, 100, 200, 300]
    for key in SHARED:
        assert rows[200][key] == planned[200][key] == latest[key] == loaded[key], key
    for step in (50, 100, 200, 300):
        for key in ("path", "global_step", "status"):
            assert rows[step][key] == planned[step][key] == checked[step][key], (step, key)
    assert one["global_step"] == 200 and one["status"] == "valid" and one["ok"] is True
    assert [rows[s]["status"] for s in (50, 100, 200, 300)] == [
        "corrupt",
        "valid",
        "valid",
        "incomplete",
    ]
    assert (rows[300]["epoch"], rows[300]["loss"], rows[300]["best_loss"]) == (None, None, None)
    assert (latest["global_step"], latest["epoch"], latest["rng_state"]) == (200, 1, 7)
    assert (latest["loss"], latest["best_loss"]) == (0.5, 0.5)
    assert saved["global_step"] == 5 and saved["status"] == "valid"
    assert saved["path"] == str(tmp_path / "other" / "checkpoint-5")


def test_prune_keeps_what_it_cannot_read_through_the_installed_command(run: Path) -> None:
    """The contract fix, as a cron job meets it: an incomplete and a corrupt folder are kept
    and said to be kept, in the text and in the JSON plan, and --delete-incomplete reclaims
    them once older than --stale-after."""
    done = subprocess.run(
        [str(CKPT_BIN), "prune", str(run), "--keep-last", "1", "--stale-after", "0s", "--yes"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    how = "never deleted without --delete-incomplete (then once older than 0s)"
    assert f"kept {run / 'checkpoint-50'} (corrupt, {how})" in done.stdout.splitlines()
    assert f"kept {run / 'checkpoint-300'} (incomplete, {how})" in done.stdout.splitlines()
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
        "checkpoint-200",
        "checkpoint-300",
        "checkpoint-50",
    ]
    args = ("prune", run, "--keep-last", "1", "--stale-after", "0s", "--delete-incomplete")
    plan = ckpt(*args, "--dry-run", "--json")
    decisions = {
        e["global_step"]: (e["decision"], e["reasons"]) for e in plan["runs"][0]["entries"]
    }
    assert decisions == {
        50: ("delete", ["stale corrupt"]),
        200: ("keep", ["last 1", "latest", "newest save"]),
        300: ("delete", ["stale incomplete"]),
    }
    done_doc = ckpt(*args, "--yes", "--json")
    assert done_doc["totals"]["stale_removed"] == 2
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == ["checkpoint-200"]
