"""`make bench`: time ckpt against the floor of each job, in the same run, and write BENCHMARKS.md.

Every case builds synthetic run directories in a temporary folder (files written directly, in
step order, the way a training run leaves them), then runs the ckpt command and its floor
alternately, several times, and reports medians, peak memory and the ratio to the target.
The machine is shared and noisy: only ratios measured in the same run mean anything.

    python benchmarks/run.py [--out BENCHMARKS.md] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases_layouts import layout_cases  # noqa: E402 - the bench runs as a script
from cases_trainer import trainer_cases  # noqa: E402

HERE = Path(__file__).resolve().parent
PY = sys.executable
CKPT = str(Path(sys.executable).parent / "ckpt")
SAVED_AT = "2026-01-01T00:00:00.000000Z"


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    peak_kb: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> int:
        return max(self.peak_kb) if self.peak_kb else 0


# Linux hands a child the peak RSS of its parent at the spawn (ru_maxrss survives exec), and
# this runner grows past 25 MiB: children spawned from it all reported at least that. So the
# timed commands are spawned by a small helper process (python -I -S, 11-14 MiB), and each
# peak is the command's own, or the helper's when the command stays under it.
SPAWNER = """import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(job["cmd"], cwd=job["cwd"], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_kb": usage.ru_maxrss,
                      "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""
_spawner: subprocess.Popen[str] | None = None


def run_process(
    cmd: Sequence[str], *, cwd: Path | None = None, ok: Sequence[int] = (0,)
) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS (KiB) and stdout of one child process, spawned and timed by the
    helper process (wait4 gives its rusage)."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen(
            [PY, "-I", "-S", "-c", SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    assert _spawner.stdin is not None and _spawner.stdout is not None
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-io-") as io_dir:
        out, err = Path(io_dir) / "out", Path(io_dir) / "err"
        job = {"cmd": list(cmd), "cwd": None if cwd is None else str(cwd)}
        _spawner.stdin.write(json.dumps(job | {"out": str(out), "err": str(err)}) + "\n")
        _spawner.stdin.flush()
        line = _spawner.stdout.readline()
        if not line:  # it died: Popen raised (a missing command), and its traceback is above
            raise SystemExit(f"the helper process could not run {' '.join(cmd[:4])}...")
        done = json.loads(line)
        if done["code"] not in ok:
            message = err.read_text(errors="replace")
            raise SystemExit(f"{' '.join(cmd[:4])}... exited {done['code']}: {message}")
        return done["seconds"], done["peak_kb"], out.read_bytes()


#: how long `settle` waits for a quiet disk at most (none with --quick: that is a smoke test,
#: run by the test suite beside other tests' I/O, and its figures are not read)
SETTLE_LIMIT = 60.0


def settle(limit: float | None = None) -> None:
    """Write back what is dirty, then wait (at most `limit`, by default SETTLE_LIMIT seconds)
    until the disk is quiet.

    With ext4's `discard`, the blocks that a deletion freed are trimmed for a while after it,
    and processes started meanwhile stall on I/O: /proc/pressure/io showed tasks stalled 46%
    of the time just after a run of this benchmark. Where the kernel has no pressure file,
    the sync alone is done.
    """
    os.sync()
    deadline = time.monotonic() + (SETTLE_LIMIT if limit is None else min(limit, SETTLE_LIMIT))
    while time.monotonic() < deadline:
        try:
            with open("/proc/pressure/io") as handle:
                some = float(handle.readline().split()[1].split("=")[1])  # avg10, in %
        except (OSError, IndexError, ValueError):
            return
        if some < 2.0:
            return
        time.sleep(1.0)


def interleaved(
    jobs: dict[str, Callable[[], tuple[float, int]]], repeats: int
) -> dict[str, Sample]:
    """Run every job once per round, in a new shuffled order each round; all samples per job.

    Shuffled, not rotated: in a rotation each job always runs right after the same other job
    (in case 2, the 3-checkpoint run after the 100k one, and its median came out above the
    1,000-checkpoint one in all three such runs).
    """
    samples = {name: Sample() for name in jobs}
    names = list(jobs)
    order = random.Random(len(names))
    for _ in range(repeats):
        order.shuffle(names)
        for name in names:
            seconds, peak = jobs[name]()
            samples[name].seconds.append(seconds)
            samples[name].peak_kb.append(peak)
    return samples


def process_job(cmd: Sequence[str], **kwargs: object) -> Callable[[], tuple[float, int]]:
    def job() -> tuple[float, int]:
        seconds, peak, _ = run_process(cmd, **kwargs)  # type: ignore[arg-type]
        return seconds, peak

    return job


# ---- synthetic runs ---------------------------------------------------------------------------


def metadata_bytes(
    step: int, state: list[float] | None = None, *, seed_layout: bool = False
) -> bytes:
    """A metadata.json as ckpt writes it (or, with seed_layout, as the seed crate does)."""
    doc: dict[str, object] = {
        "epoch": step // 1000,
        "global_step": step,
        "best_loss": 1.0 / (1 + step),
        "optimizer_state": state or [],
        "rng_state": 12345 if not seed_layout else None,
    }
    if not seed_layout:
        doc["ckpt"] = {
            "format": 1,
            "saved_at": SAVED_AT,
            "loss": 1.0 / (1 + step),
            "manifest": [{"path": "model.bin", "size": 4, "sha256": "0" * 64}],
        }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def build_run(
    run_dir: Path,
    count: int,
    *,
    every: int = 10,
    payload: bool = False,
    content: Callable[[int], bytes] = metadata_bytes,
) -> None:
    """`count` checkpoint folders, created in step order with plain os calls (fast at 100k)."""
    run_dir.mkdir(parents=True)
    for index in range(count):
        step = index * every
        folder = f"{run_dir}/checkpoint-{step}"
        os.mkdir(folder)
        if payload:
            _write(f"{folder}/model.bin", b"abcd")
        _write(f"{folder}/metadata.json", content(step))


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# ---- the cases --------------------------------------------------------------------------------

FLOOR_APP = """import typer

app = typer.Typer()


@app.command()
def latest(run_dir: str) -> None:
    print(run_dir)


if __name__ == "__main__":
    app()
"""

MODULES_OF = """import atexit, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
if sys.argv[1] == "ckpt":
    sys.argv = sys.argv[1:]
    from ckpt_cli.cli import main
    main()
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""

COUNT_OPENS = """import sys
opened = []
def hook(event, args):
    if event == "open" and str(args[0]).endswith("metadata.json"):
        opened.append(args[0])
sys.addaudithook(hook)
from ckpt_cli.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write(f"OPENED {len(opened)}\\n")
"""

LIST_FLOOR = """import os, sys, orjson
run = sys.argv[1]
for name in os.listdir(run):
    with open(os.path.join(run, name, "metadata.json"), "rb") as handle:
        orjson.loads(handle.read())
"""

LIST_IN_PROCESS = """import io, json, os, statistics, sys, time
import orjson
from ckpt_cli.cli import app
run, repeats = sys.argv[1], int(sys.argv[2])

def floor():
    for name in os.listdir(run):
        with open(os.path.join(run, name, "metadata.json"), "rb") as handle:
            orjson.loads(handle.read())

def rchar():
    with open("/proc/self/io") as handle:
        return int(next(l for l in handle if l.startswith("rchar")).split()[1])

def ckpt_list():
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        app(["list", "--json", run], standalone_mode=False)
    finally:
        sys.stdout = saved

ckpt_list()
before = rchar()
ckpt_list()
read = rchar() - before
times = {"floor": [], "list": []}
for _ in range(repeats):
    for name, job in (("floor", floor), ("list", ckpt_list)):
        start = time.perf_counter(); job(); times[name].append(time.perf_counter() - start)
print(json.dumps({k: statistics.median(v) for k, v in times.items()} | {"rchar": read}))
"""

SAVE_CHILD = """import json, os, random, sys, time
import orjson
mode, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
state = [rng.random() for _ in range(count)]

def status(key):
    with open("/proc/self/status") as handle:
        return int(next(l for l in handle if l.startswith(key)).split()[1])

try:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak RSS to the current RSS
except OSError:
    pass
if mode != "floor":
    # imported before the clock starts, as a training loop has them by its second save
    from ckpt_cli import Checkpoint
    import ckpt_cli.ops.save, ckpt_cli.storage.local_commit, filelock
base = status("VmRSS:")
start = time.perf_counter()
if mode == "floor":
    doc = {"epoch": 1, "global_step": 1, "best_loss": 0.5, "optimizer_state": state,
           "rng_state": 1}
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    os.makedirs(target)
    with open(os.path.join(target, "metadata.json"), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
else:
    Checkpoint(epoch=1, global_step=1, best_loss=0.5, optimizer_state=state,
               rng_state=1).save(target)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_kb": status("VmHWM:") - base}))
"""


@dataclass
class Result:
    case: str
    rows: list[tuple[str, str, str]]  # (what, median, peak memory)
    ratio: float
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def med(sample: Sample) -> str:
    """A median with the number of runs it is the median of."""
    return f"{ms(sample.median)} ({len(sample.seconds)} runs)"


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def case_startup(tmp: Path, repeats: int) -> Result:
    from ckpt_cli import Checkpoint

    run = tmp / "startup"
    for step in (100, 200, 300):
        Checkpoint(epoch=0, global_step=step, best_loss=0.5).save(run / f"checkpoint-{step}")
    floor = tmp / "floor_app.py"
    floor.write_text(FLOOR_APP)
    samples = interleaved(
        {
            "floor: one-command Typer app": process_job([PY, str(floor), str(run)]),
            "ckpt latest (3 checkpoints)": process_job([CKPT, "latest", str(run)]),
        },
        repeats,
    )
    base, ours = samples.values()
    ratio = ours.median / base.median
    helper = tmp / "modules_of.py"
    helper.write_text(MODULES_OF)
    mods = {}
    for label, argv in (("floor", [str(floor), str(run)]), ("ckpt", ["ckpt", "latest", str(run)])):
        out = tmp / f"modules-{label}.txt"
        run_process([PY, str(helper), str(out), *argv])
        mods[label] = set(out.read_text().split())
    extra = sorted(mods["ckpt"] - mods["floor"] - {"runpy", "pkgutil"})
    heavy = [m for m in mods["ckpt"] if m.split(".")[0] in ("rich",) or m in _HEAVY]
    notes = [
        f"The floor imports {len(mods['floor'])} modules (typer 0.29 brings pydantic and "
        f"builds a pydantic TypeAdapter per parameter); `ckpt latest` adds {len(extra)}: "
        + ", ".join(f"`{m}`" for m in extra)
        + ".",
        "Heavy modules on the path of `ckpt latest`: "
        + (", ".join(f"`{m}`" for m in sorted(heavy)) if heavy else "none")
        + " (rich, hashing, the retention engine, the renderer, the commit and prune code).",
    ]
    return Result(
        "1. start-up",
        [(name, med(s), mib(s.peak)) for name, s in samples.items()],
        ratio,
        "≤ 1.10×",
        ratio <= 1.10,
        notes,
    )


_HEAVY = {
    "ckpt_cli.storage.hashing",
    "ckpt_cli.storage.local_commit",
    "ckpt_cli.core.retention",
    "ckpt_cli.cli.render",
    "ckpt_cli.ops.prune",
}


def count_opens(run: Path) -> int:
    helper = run.parent / "count_opens.py"
    helper.write_text(COUNT_OPENS)
    child = subprocess.run(
        [PY, str(helper), "latest", str(run)], capture_output=True, text=True, check=False
    )
    return int(child.stderr.rsplit("OPENED ", 1)[1])


def case_latest(tmp: Path, repeats: int, sizes: Sequence[int]) -> Result:
    runs = {}
    for count in (3, *sizes):
        run = tmp / f"latest-{count}"
        start = time.perf_counter()
        build_run(run, count)
        print(f"  built {count} checkpoints in {time.perf_counter() - start:.1f} s", flush=True)
        runs[count] = run
    settle()  # written back now, not by the kernel's flusher in the middle of the timings
    samples = interleaved(
        {
            f"ckpt latest, {n:,} checkpoints": process_job([CKPT, "latest", str(r)])
            for n, r in runs.items()
        },
        repeats,
    )
    opens = {n: count_opens(r) for n, r in runs.items()}
    times = list(samples.values())
    biggest = max(sizes)
    ratio = times[-1].median / times[0].median
    rows = [
        (f"{name} ({opens[n]} metadata.json opened)", med(s), mib(s.peak))
        for (name, s), n in zip(samples.items(), runs, strict=True)
    ]
    # The floor of any `latest` that looks at every name: listing the directory in a new
    # Python process (os.listdir, nothing else), at 3 and at the biggest size.
    listing = "import os, sys; os.listdir(sys.argv[1])"
    floors = interleaved(
        {
            f"floor: python -c os.listdir, {n:,} entries": process_job(
                [PY, "-c", listing, str(runs[n])]
            )
            for n in (3, biggest)
        },
        repeats,
    )
    rows += [(name, med(s), mib(s.peak)) for name, s in floors.items()]
    small_list, big_list = floors.values()
    # The stale-save check: when the run directory changed after the latest checkpoint was
    # saved (a later prune, a save in progress, a file written beside the checkpoints), latest
    # stats every lower folder's metadata.json to look for a newer save at a lower step.
    big = runs[biggest]
    stamp = os.stat(big).st_mtime + 60
    os.utime(big, (stamp, stamp))
    cue = interleaved({"cue": process_job([CKPT, "latest", str(big)])}, max(3, repeats // 3))
    rows.append(
        (
            f"ckpt latest, {biggest:,}, run dir changed after the latest save (stale check runs)",
            med(cue["cue"]),
            mib(cue["cue"].peak),
        )
    )
    met = ratio <= 1.5 and all(count <= 3 for count in opens.values())
    return Result(
        f"2. latest at {', '.join(f'{n:,}' for n in sizes)}",
        rows,
        ratio,
        f"≤ 1.5× (at {biggest:,} vs 3), ≤ 3 files opened",
        met,
        [
            f"Ratio at {n:,}: {s.median / times[0].median:.2f}×"
            for n, s in zip(runs, times, strict=True)
        ]
        + [
            f"{biggest:,} names instead of 3, in a new process: listing alone (the floor) "
            f"{1000 * (big_list.median - small_list.median):+.0f} ms, ckpt latest "
            f"{1000 * (times[-1].median - times[0].median):+.0f} ms (the listing, then the "
            "checkpoint names found and ordered in C; see the notes below).",
            f"With the stale-save check running, {biggest:,} checkpoints cost "
            f"{cue['cue'].median / times[0].median:.2f}× the 3-checkpoint time: one stat per "
            "folder (see the notes below).",
        ],
    )


def case_list(tmp: Path, repeats: int, count: int, floats: int) -> list[Result]:
    rng = random.Random(3)
    state = [rng.random() for _ in range(floats)]
    run = tmp / "list"
    seed_run = tmp / "list-seed"
    build_run(run, count, content=lambda step: metadata_bytes(step, state))
    build_run(seed_run, count, content=lambda step: metadata_bytes(step, state, seed_layout=True))
    size = (run / "checkpoint-0" / "metadata.json").stat().st_size
    settle()  # 480 MB just written: written back now, not in the middle of the timings
    floor = tmp / "list_floor.py"
    floor.write_text(LIST_FLOOR)
    samples = interleaved(
        {
            "floor: python loop, orjson.loads of every file": process_job(
                [PY, str(floor), str(run)]
            ),
            "ckpt list --json": process_job([CKPT, "list", "--json", str(run)]),
            "ckpt list --json, seed-crate layout": process_job(
                [CKPT, "list", "--json", str(seed_run)]
            ),
        },
        repeats,
    )
    floor_s, ours, seed = samples.values()
    helper = tmp / "list_in_process.py"
    helper.write_text(LIST_IN_PROCESS)
    inproc = {}
    for label, target in (("ckpt", run), ("seed", seed_run)):
        _, _, out = run_process([PY, str(helper), str(target), str(repeats)])
        inproc[label] = json.loads(out)
    ratio = ours.median / floor_s.median
    in_ratio = inproc["ckpt"]["list"] / inproc["ckpt"]["floor"]
    seed_ratio = inproc["seed"]["list"] / inproc["seed"]["floor"]
    rows = [(name, med(s), mib(s.peak)) for name, s in samples.items()]
    rows += [
        ("in one process: the floor loop", f"{ms(inproc['ckpt']['floor'])} ({repeats} runs)", "-"),
        (
            "in one process: list --json (ckpt layout)",
            f"{ms(inproc['ckpt']['list'])} ({repeats} runs)",
            "-",
        ),
        (
            "in one process: list --json (seed-crate layout)",
            f"{ms(inproc['seed']['list'])} ({repeats} runs)",
            "-",
        ),
    ]
    seed_process = seed.median / floor_s.median
    seed_result = Result(
        f"7. list --json, {count} checkpoints in the seed crate's layout × {floats:,} floats",
        [rows[0], rows[2], rows[3], rows[5]],
        seed_process,
        "≤ 0.25×",
        seed_process <= 0.25,
        [
            "serde_json's to_string_pretty layout (two-space indent, one number a line, no "
            "`ckpt` block): the file is read whole but only searched, in C, for anything "
            "that is not a number and for the array's end; its keys come from the two ends.",
            f"In one process, without the start-up: {seed_ratio:.3f}× the floor.",
        ],
    )
    return [
        Result(
            f"3. list --json, {count} checkpoints × {floats:,} floats",
            rows,
            ratio,
            "≤ 0.25×",
            ratio <= 0.25,
            [
                f"Each metadata.json is {size / 1e6:.2f} MB. Bytes read per checkpoint by list "
                f"(ckpt layout, /proc/self/io rchar): {inproc['ckpt']['rchar'] / count:,.0f}; "
                f"seed-crate layout: {inproc['seed']['rchar'] / count:,.0f} (read whole, "
                "brackets searched, numbers not parsed).",
                f"In one process, without the start-up: {in_ratio:.3f}× the floor (ckpt layout), "
                f"{seed_ratio:.3f}× (seed-crate layout).",
                f"As processes: {ratio:.3f}× (ckpt layout), {seed.median / floor_s.median:.3f}× "
                "(seed-crate layout); the start-up of case 1 is part of both numerators.",
            ],
        ),
        seed_result,
    ]


def case_prune(tmp: Path, repeats: int, count: int) -> Result:
    """Folders on disk, as a cron prune finds them (built, then `sync`), and, as a second pair,
    folders written a moment before: ext4 has not allocated their blocks yet (delayed
    allocation), so removing them costs the kernel almost nothing, for rm -rf and ckpt alike."""
    keep = 10
    doomed = [f"checkpoint-{i * 10}" for i in range(count - keep)]

    def fresh(name: str, synced: bool) -> Path:
        run = tmp / name
        if run.exists():
            shutil.rmtree(run)
        build_run(run, count, payload=True)
        if synced:
            os.sync()
        return run

    def prune_job(synced: bool) -> Callable[[], tuple[float, int]]:
        def job() -> tuple[float, int]:
            run = fresh("prune", synced)
            argv = [CKPT, "prune", str(run), "--keep-last", str(keep), "--yes"]
            seconds, peak, _ = run_process(argv)
            left = sorted(os.listdir(run))
            assert len([n for n in left if n.startswith("checkpoint-")]) == keep, left[:20]
            return seconds, peak

        return job

    def rm_job(synced: bool) -> Callable[[], tuple[float, int]]:
        def job() -> tuple[float, int]:
            run = fresh("rm", synced)
            return run_process(["rm", "-rf", "--", *doomed], cwd=run)[:2]

        return job

    samples = interleaved(
        {
            "floor: rm -rf of the same folders (on disk)": rm_job(True),
            "ckpt prune (on disk)": prune_job(True),
        },
        repeats,
    )
    unsynced = interleaved(
        {
            "floor: rm -rf, folders written a moment before": rm_job(False),
            "ckpt prune, folders written a moment before": prune_job(False),
        },
        repeats,
    )
    floor_s, ours = samples.values()
    ratio = ours.median / floor_s.median
    cached_floor, cached_ours = unsynced.values()
    cached_ratio = cached_ours.median / cached_floor.median
    rows = {**samples, **unsynced}
    return Result(
        f"4. prune {count:,} → {keep}",
        [(name, med(s), mib(s.peak)) for name, s in rows.items()],
        ratio,
        "≤ 1.3×",
        ratio <= 1.3,
        [
            "Each checkpoint folder holds metadata.json and a 4-byte model.bin; "
            f"{count - keep:,} folders are deleted.",
            "The ratio is of folders on disk (built, then `sync`), as a cron prune finds them. "
            f"Folders written a moment before (still without disk blocks): {cached_ratio:.2f}×; "
            "there rm -rf does almost no kernel work, and ckpt's start-up, validating scan "
            "and renames show (see the notes below).",
        ],
    )


def case_save(tmp: Path, repeats: int, floats: int) -> Result:
    helper = tmp / "save_child.py"
    helper.write_text(SAVE_CHILD)
    counter = iter(range(1_000_000))

    def job(mode: str) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            target = tmp / "save" / f"{mode}-{next(counter)}" / "checkpoint-1"
            target.parent.mkdir(parents=True)
            _, _, out = run_process([PY, str(helper), mode, str(target), str(floats)])
            shutil.rmtree(target.parent)
            # settle the disk: otherwise the next job's first fsync also writes back (and, with
            # `discard`, trims) what the jobs before it left, and ckpt makes three fsyncs
            settle(15.0)
            doc = json.loads(out)
            return doc["seconds"], doc["peak_kb"]

        return run

    samples = interleaved(
        {"floor: orjson.dumps + write + fsync": job("floor"), "Checkpoint.save": job("ckpt")},
        repeats,
    )
    floor_s, ours = samples.values()
    ratio = ours.median / floor_s.median
    memory = statistics.median(ours.peak_kb) / max(1, statistics.median(floor_s.peak_kb))
    return Result(
        f"5. save, {floats:,} floats",
        [
            (name, med(s), f"+{mib(int(statistics.median(s.peak_kb)))}")
            for name, s in samples.items()
        ],
        ratio,
        "≤ 1.3×, memory ≤ 2× the floor's",
        ratio <= 1.3 and memory <= 2.0,
        [
            f"Memory is the peak RSS the operation adds to a process that already holds the "
            f"list of floats: {memory:.2f}× the floor's.",
            "Checkpoint.save takes the run lock, builds a staging folder, writes metadata.json "
            "by temp file + fsync + rename, fsyncs the folder, renames it into place and fsyncs "
            "the run directory; the floor writes and fsyncs one file.",
        ],
    )


# ---- report -----------------------------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    versions = ", ".join(
        f"{name} {importlib_metadata.version(name)}"
        for name in ("typer", "pydantic", "orjson", "rich")
    )
    return [
        f"- CPU: {model}; {os.cpu_count()} cores "
        f"({len(os.sched_getaffinity(0))} usable); load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()} ({platform.platform()}); {versions}",
    ]


def render(
    results: list[Result], header: list[str], started: float, args: argparse.Namespace
) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run.py`); do not edit by hand. Each figure is the "
        "median of interleaved runs (how many is given beside it), measured against its floor "
        "in the same run: the machine is shared and noisy, so only the ratios compare across "
        "runs.",
        "",
        "## Machine",
        "",
        *header,
        f"- load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"the whole run took {time.perf_counter() - started:.0f} s",
        "",
        "## Summary",
        "",
        "| case | ratio | target | met |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.case} | {r.ratio:.3f}× | {r.target} | {'yes' if r.met else 'NO'} |")
    for r in results:
        lines += ["", f"## {r.case}", "", "| what | median | peak memory |", "|---|---|---|"]
        lines += [f"| {what} | {median} | {peak} |" for what, median, peak in r.rows]
        lines += [""] + [f"- {note}" for note in r.notes]
    notes = HERE / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--only", default="1234569", help="which cases to run, e.g. 13 (9: cases 9 to 14)"
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    quick = args.quick
    if quick:
        global SETTLE_LIMIT
        SETTLE_LIMIT = 0.0
    started = time.perf_counter()
    header = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-") as name:
        tmp = Path(name)
        steps: list[tuple[str, Callable[[], Result | list[Result]]]] = [
            ("1", lambda: case_startup(tmp, args.repeats * 2)),
            (
                "2",
                lambda: case_latest(
                    tmp, args.repeats * 4, (100, 1000) if quick else (1000, 10_000, 100_000)
                ),
            ),
            ("3", lambda: case_list(tmp, max(3, args.repeats + 2), 20 if quick else 200, 50_000)),
            ("4", lambda: case_prune(tmp, 2 if quick else 3, 500 if quick else 10_000)),
            (
                "5",
                lambda: case_save(tmp, args.repeats * 2 + 1, 150_000 if quick else 1_500_000),
            ),
            (
                "6",
                lambda: trainer_cases(
                    tmp,
                    PY,
                    CKPT,
                    max(3, args.repeats),
                    interleaved,
                    process_job,
                    Result,
                    med,
                    mib,
                    quick,
                    COUNT_OPENS,
                ),
            ),  # fmt: skip
            (
                "9",
                lambda: layout_cases(
                    tmp,
                    PY,
                    CKPT,
                    max(3, args.repeats),
                    interleaved,
                    process_job,
                    Result,
                    med,
                    mib,
                    quick,
                ),
            ),  # fmt: skip
        ]
        # prune last: deleting 10k folders that are on disk leaves the disk discarding freed
        # blocks for a while, which slowed the fsyncs of the save case run after it (1.2x -> 1.7x)
        for key, step in sorted(steps, key=lambda item: item[0] == "4"):
            if key not in args.only:
                continue
            print(f"case {key} ...", flush=True)
            settle()  # what the cases before wrote is on disk and trimmed, out of the way
            found = step()
            for result in found if isinstance(found, list) else [found]:
                print(f"  {result.case}: {result.ratio:.3f}× (target {result.target})", flush=True)
                results.append(result)
    results.sort(key=lambda result: int(result.case.split(".")[0]))
    Path(args.out).write_text(render(results, header, started, args))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
