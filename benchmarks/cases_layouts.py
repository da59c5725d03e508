"""`make bench` cases for the other frameworks' layouts (run.py calls them): 9 to 14.

Each is `list --json` over 1,000 checkpoints of one layout, against a naive loop that lists
the run and reads, whole, the files ckpt reads of each checkpoint to judge it (its markers).
(`latest` on each layout at 100,000 entries is held to its reads by tests/test_perf_guards.py.)
The run is made by copying one checkpoint that the real framework wrote (tests/fixtures, by
`make fixtures`) under 1,000 names: the files are the framework's, only the names are new.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

MARKER_FLOOR = """import os, sys
run, markers = sys.argv[1], [m for m in sys.argv[2].split(",") if m]
for name in os.listdir(run):
    path = os.path.join(run, name)
    for marker in markers or [""]:
        with open(os.path.join(path, marker) if marker else path, "rb") as handle:
            handle.read()
"""


@dataclass(frozen=True)
class LayoutCase:
    number: int
    layout: str
    #: the real checkpoint that is copied, relative to tests/fixtures
    source: str
    #: the name of copy `i`
    name: Callable[[int], str]
    #: the files of each checkpoint the floor reads (none: the checkpoint is a file)
    markers: tuple[str, ...]

    @property
    def source_path(self) -> Path:
        return FIXTURES / self.source


CASES = (
    LayoutCase(
        9,
        "deepspeed",
        "deepspeed/zero2/global_step2",
        lambda i: f"global_step{i}",
        ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"),
    ),
    LayoutCase(10, "dcp", "dcp/complete/checkpoint/step-10", lambda i: f"step-{i}", (".metadata",)),
    LayoutCase(
        11,
        "orbax",
        "orbax/default/40",
        str,
        ("_CHECKPOINT_METADATA", "metrics/metrics"),
    ),
    LayoutCase(
        12,
        "megatron",
        "megatron/torch-dist/iter_0000010",
        lambda i: f"iter_{i:07d}",
        (".metadata",),
    ),
    LayoutCase(
        13,
        "accelerate",
        "accelerate/auto-naming/checkpoints/checkpoint_2",
        lambda i: f"checkpoint_{i}",
        ("random_states_0.pkl",),
    ),
    LayoutCase(
        14,
        "lightning",
        "lightning/metric-names/checkpoints/epoch=3-step=32-val_loss=0.2417.ckpt",
        lambda i: f"epoch={i // 10}-step={i}.ckpt",
        (),
    ),
)


def build(run: Path, case: LayoutCase, count: int) -> None:
    run.mkdir(parents=True)
    source = case.source_path
    for i in range(1, count + 1):
        target = run / case.name(i * 10)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


def layout_cases(
    tmp: Path,
    py: str,
    ckpt: str,
    repeats: int,
    interleaved: Callable[..., Any],
    process_job: Callable[..., Any],
    result: Callable[..., Any],
    med: Callable[[Any], str],
    mib: Callable[[int], str],
    quick: bool,
) -> list[Any]:
    floor = tmp / "marker_floor.py"
    floor.write_text(MARKER_FLOOR)
    count = 20 if quick else 1000
    found = []
    for case in CASES:
        run = tmp / f"layout-{case.layout}"
        build(run, case, count)
        samples = interleaved(
            {
                "floor: python loop reading each checkpoint's markers": process_job(
                    [py, str(floor), str(run), ",".join(case.markers)]
                ),
                "ckpt list --json": process_job([ckpt, "list", "--json", str(run)]),
            },
            repeats,
        )
        floor_s, ours = samples.values()
        ratio = ours.median / floor_s.median
        read = ", ".join(case.markers) or "the whole file"
        found.append(
            result(
                f"{case.number}. list --json, {count:,} {case.layout} checkpoints",
                [(name, med(s), mib(s.peak)) for name, s in samples.items()],
                ratio,
                "≤ 10×",
                ratio <= 10.0,
                [
                    f"Copies of the real `{case.source}`. The floor reads {read} of each; "
                    "ckpt also walks each checkpoint (its size is shown), judges it by its "
                    "layout's rule and starts Typer: about 160 ms of start-up against the "
                    "floor's 45 ms, so this ratio cannot come near 1×. The target guards "
                    "against per-checkpoint work that grows (the first version of these "
                    "layouts was at 15× to 43×: opcodes of whole pickles read in Python).",
                ],
            )
        )
        shutil.rmtree(run)
    return found
