"""kill -9 at every step: save (CLI and API), seal, --force replace, --move and prune, each run
in a real child process that is SIGKILLed at every fault point it passes (every n-th time, for
the points it passes more than once) and at random instants. After every kill, every visible
`checkpoint-N` is whole (metadata valid, payload matching its manifest) or absent or, for a
seal, still the framework's incomplete folder; `latest` returns a whole checkpoint; and the
next save or prune, with a shortened stale limit, clears whatever the killed one left.

`CKPT_STRESS=1` (make stress) adds hundreds of random-time kills.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import pytest

from ckpt_cli import Checkpoint, CheckpointConfig
from ckpt_cli.storage import atomic

from .conftest import CKPT_BIN
from .faults import (
    ABSENT,
    INCOMPLETE,
    State,
    cli_action,
    cli_command,
    in_parallel,
    kill_at,
    leftovers,
    run_child,
    run_cli,
    snapshot,
    trace_points,
    unsafe,
    valid,
)

STRESS = os.environ.get("CKPT_STRESS", "") not in ("", "0")
#: random-time kills per operation (make test / make stress)
RANDOM_KILLS = 60 if STRESS else 3
SEED = int(os.environ.get("CKPT_FAULT_SEED", "20261128"))

#: what the kills did, for the summary line (conftest's pytest_terminal_summary)
KILLS: dict[str, int] = {"save": 0, "prune": 0, "random": 0, "unsafe": 0}

Action = Callable[[], int]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_below(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file below root (or of root, if a file)."""
    if root.is_file():
        return {root.name: digest(root)}
    return {
        str(p.relative_to(root.parent)): digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@dataclass
class Lab:
    """What every scenario shares: one prepared payload, two optimizer states, and template run
    directories that each scenario copies (copying is much cheaper than saving)."""

    root: Path
    payloads: list[Path]
    small_state: list[float]
    small_state_file: Path
    big_state: list[float]
    big_state_file: Path
    base: Path
    prune_base: Path
    counter: int = 0
    traces: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)

    def fresh(self, template: Path) -> Path:
        self.counter += 1
        where = self.root / f"s{os.getpid()}-{self.counter}"
        where.mkdir()
        run = where / "run"
        shutil.copytree(template, run, symlinks=True)
        return run


def _random_bytes(path: Path, size: int, seed: int) -> None:
    path.write_bytes(random.Random(seed).randbytes(size))


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("faults")
    payload = root / "payload"
    payload.mkdir()
    _random_bytes(payload / "model.bin", 2_500_000, 1)
    _random_bytes(payload / "optim.bin", 800_000, 2)
    (payload / "config.json").write_text('{"hidden": 512}')
    tokenizer = payload / "tokenizer"
    tokenizer.mkdir()
    _random_bytes(tokenizer / "vocab.txt", 200_000, 3)
    (tokenizer / "merges.txt").write_text("a b\n" * 1000)
    (tokenizer / "special.json").write_text("{}")
    payloads = [payload / n for n in ("model.bin", "optim.bin", "config.json", "tokenizer")]

    rng = random.Random(4)
    small = [rng.random() for _ in range(1000)]
    big = [rng.random() for _ in range(1_000_000)]
    small_file = root / "small-state.json"
    small_file.write_bytes(orjson.dumps(small))
    big_file = root / "big-state.json"
    big_file.write_bytes(orjson.dumps(big))

    base = root / "base"
    weights = root / "w.bin"
    _random_bytes(weights, 8192, 5)
    for step in (100, 200, 300):
        Checkpoint(
            epoch=step // 100,
            global_step=step,
            best_loss=1.0 / step,
            optimizer_state=small[:10],
            rng_state=step,
            loss=1.0 / step,
        ).save(base / f"checkpoint-{step}", payloads=[weights])

    cli_command()  # built once, before any child is forked
    prune_base = root / "prune-base"
    shards = root / "shards"
    shards.mkdir()
    for i in range(4):
        (shards / f"shard-{i}.bin").write_bytes(bytes([i]) * 2048)
    for step in range(10, 90, 10):
        Checkpoint(
            epoch=1, global_step=step, best_loss=1.0 / step, rng_state=step, loss=1.0 / step
        ).save(prune_base / f"checkpoint-{step}", payloads=[shards, weights])
    for name in (".checkpoint-90.staging-0a1b2c", ".checkpoint-5.deleting-3d4e5f", "checkpoint-85"):
        shutil.copytree(shards, prune_base / name / "shards")
    return Lab(root, payloads, small, small_file, big, big_file, base, prune_base)


# ---- the operations ----------------------------------------------------------------------------


@dataclass
class Op:
    """One operation to kill: how to set it up, run it, judge it, and recover from it."""

    name: str
    kind: str  # "save" or "prune": which count its kill points go to
    template: Callable[[Lab], Path]
    action: Callable[[Lab, Path], Action]
    #: the states each checkpoint may be in right after a kill
    allowed: dict[str, list[State]]
    #: the state after the recovery
    final: dict[str, State]
    prepare: Callable[[Lab, Path], None] = lambda lab, run: None
    #: more checks after a kill: a list of problems
    extra: Callable[[Lab, Path], list[str]] = lambda lab, run: []
    #: what a job or cron does next, in this process: re-run the operation if it did not
    #: complete, then the next save or prune with a stale limit of 0s
    recover: Callable[[Lab, Path], None] = lambda lab, run: None


def _ok(*args: object) -> None:
    ended = run_cli(*args)
    assert ended.status == 0, (args, ended.stdout, ended.stderr)


def _save_argv(
    run: Path, step: int, *extra: object, loss: float = 0.3, rng: int | None = None
) -> list[object]:
    """`ckpt save` of `step` into `run` (rng state: the step, unless given)."""
    rng = step if rng is None else rng
    return ["save", run, "--step", step, "--loss", loss, "--rng-state", rng, *extra]


def _next_save(run: Path) -> None:
    _ok(*_save_argv(run, 500, "--keep-last", 2, "--stale-after", "0s", loss=0.2))


def _save_args(lab: Lab, run: Path, *extra: object) -> list[object]:
    return _save_argv(run, 400, "--optimizer-state", lab.small_state_file, *extra)


def _api_save(lab: Lab, run: Path, step: int, rng: int, big: bool, payloads: list[Path]) -> Action:
    def action() -> int:
        Checkpoint(
            epoch=4,
            global_step=step,
            best_loss=0.3,
            rng_state=rng,
            loss=0.3,
            optimizer_state=lab.big_state if big else lab.small_state,
        ).save(run / f"checkpoint-{step}", payloads=payloads)
        return 0

    return action


def _retry_if(run: Path, name: str, states: list[State], action: Action) -> None:
    if snapshot(run).get(name, ABSENT) in states:
        ended = run_child(action)
        assert ended.status == 0, ended.stderr


OLD = {f"checkpoint-{s}": [valid(s)] for s in (100, 200, 300)}


def _nothing_pruned_before_commit(lab: Lab, run: Path) -> list[str]:
    states = snapshot(run)
    if states.get("checkpoint-400", ABSENT) == ABSENT:
        gone = [
            n for n in ("checkpoint-100", "checkpoint-200") if states.get(n) != valid(int(n[11:]))
        ]
        return [f"{gone} deleted before the new checkpoint was committed"] if gone else []
    return []


def _save_cli() -> Op:
    def action(lab: Lab, run: Path) -> Action:
        return cli_action(*_save_args(lab, run, "--keep-last", 2, *lab.payloads))

    def recover(lab: Lab, run: Path) -> None:
        if snapshot(run).get("checkpoint-400", ABSENT) == ABSENT:
            _ok(*_save_args(lab, run, "--keep-last", 2, *lab.payloads))
        _next_save(run)

    return Op(
        "save (CLI, --keep-last 2, 4 payloads)",
        "save",
        lambda lab: lab.base,
        action,
        {
            **OLD,
            "checkpoint-100": [valid(100), ABSENT],
            "checkpoint-200": [valid(200), ABSENT],
            "checkpoint-400": [ABSENT, valid(400)],
        },
        {"checkpoint-400": valid(400), "checkpoint-500": valid(500)},
        extra=_nothing_pruned_before_commit,
        recover=recover,
    )


def _new_checkpoint_400(name: str, action: Callable[[Lab, Path], Action]) -> Op:
    """A save of a new checkpoint-400 beside the old ones: after a kill it is absent or
    valid; the recovery runs it again if it is absent, then the next save."""

    def recover(lab: Lab, run: Path) -> None:
        _retry_if(run, "checkpoint-400", [ABSENT], action(lab, run))
        _next_save(run)

    return Op(
        name,
        "save",
        lambda lab: lab.base,
        action,
        {**OLD, "checkpoint-400": [ABSENT, valid(400)]},
        {"checkpoint-400": valid(400), "checkpoint-500": valid(500)},
        recover=recover,
    )


def _save_api(big: bool) -> Op:
    return _new_checkpoint_400(
        f"save (API, {'1M-float state' if big else '4 payloads'})",
        lambda lab, run: _api_save(lab, run, 400, 400, big, [] if big else lab.payloads),
    )


def _save_cli_big() -> Op:
    return _new_checkpoint_400(
        "save (CLI, 1M-float state)",
        lambda lab, run: cli_action(
            *_save_argv(run, 400, "--optimizer-state", lab.big_state_file, lab.payloads[0])
        ),
    )


FRAMEWORK = "checkpoint-400"


def _framework_files(run: Path) -> None:
    folder = run / FRAMEWORK
    (folder / "shards").mkdir(parents=True)
    _random_bytes(folder / "weights.bin", 1_000_000, 6)
    for i in range(3):
        _random_bytes(folder / "shards" / f"{i}.bin", 50_000, 7 + i)


def _framework_intact(lab: Lab, run: Path) -> list[str]:
    probe = run.parent / "expected"
    if not probe.exists():
        _framework_files(probe)
    have = files_below(run / FRAMEWORK)
    changed = [k for k, v in files_below(probe / FRAMEWORK).items() if have.get(k) != v]
    return [f"the framework's files changed during the seal: {changed}"] if changed else []


def _seal_cli() -> Op:
    def action(lab: Lab, run: Path) -> Action:
        return cli_action(*_save_argv(run, 400, lab.payloads[2], lab.payloads[3]))

    def extra(lab: Lab, run: Path) -> list[str]:
        # the framework's files are there, whatever happened; and nothing half-copied
        problems = _framework_intact(lab, run)
        folder = run / FRAMEWORK
        if snapshot(run)[FRAMEWORK] == INCOMPLETE:
            for name in ("config.json", "tokenizer"):
                if (folder / name).exists() and files_below(folder / name) != files_below(
                    lab.payloads[2 if name == "config.json" else 3]
                ):
                    problems.append(f"a half-copied {name} in an incomplete checkpoint")
        return problems

    def recover(lab: Lab, run: Path) -> None:
        _retry_if(run, FRAMEWORK, [INCOMPLETE], action(lab, run))
        _next_save(run)

    return Op(
        "seal (CLI, framework folder + 2 payloads)",
        "save",
        lambda lab: lab.base,
        action,
        {**OLD, FRAMEWORK: [INCOMPLETE, valid(400)]},
        {FRAMEWORK: valid(400), "checkpoint-500": valid(500)},
        prepare=lambda lab, run: _framework_files(run),
        extra=extra,
        recover=recover,
    )


def _replace(api: bool, fallback: bool = False) -> Op:
    def action(lab: Lab, run: Path) -> Action:
        if api:
            inner = _api_save(lab, run, 300, 301, False, [lab.payloads[0], lab.payloads[3]])
        else:
            inner = cli_action(
                *_save_argv(
                    run,
                    300,
                    "--force",
                    "--optimizer-state",
                    lab.small_state_file,
                    lab.payloads[0],
                    lab.payloads[3],
                    rng=301,
                )
            )
        if not fallback:
            return inner

        def without_exchange() -> int:
            atomic.exchange = lambda a, b: False  # a kernel or file system without renameat2
            return inner()

        return without_exchange

    def recover(lab: Lab, run: Path) -> None:
        ended = run_child(action(lab, run))
        assert ended.status == 0, ended.stderr
        _next_save(run)

    allowed = [valid(300), valid(301)]
    if fallback:
        # Without RENAME_EXCHANGE the old folder is renamed aside before the new one takes its
        # name: a kill in between leaves no checkpoint-300 (never a half-made one) until the
        # save is run again. Both versions are still on disk then (see _both_kept).
        allowed.append(ABSENT)
    return Op(
        f"replace --force ({'API' if api else 'CLI'}{', no renameat2' if fallback else ''})",
        "save",
        lambda lab: lab.base,
        action,
        {**OLD, "checkpoint-300": allowed},
        {"checkpoint-300": valid(301), "checkpoint-500": valid(500)},
        extra=_both_kept if fallback else (lambda lab, run: []),
        recover=recover,
    )


def _both_kept(lab: Lab, run: Path) -> list[str]:
    if snapshot(run).get("checkpoint-300") != ABSENT:
        return []
    hidden = [p for p in run.iterdir() if p.name.startswith(".checkpoint-300.")]
    versions = set()
    for folder in hidden:
        meta = folder / "metadata.json"
        if meta.exists():
            versions.add(orjson.loads(meta.read_bytes())["rng_state"])
    return [] if versions == {300, 301} else [f"checkpoint-300 gone, hidden versions {versions}"]


def _move_cli() -> Op:
    def sources(run: Path) -> list[Path]:
        return [run.parent / "moving" / n for n in ("model.bin", "optim.bin", "tokenizer")]

    def prepare(lab: Lab, run: Path) -> None:
        moving = run.parent / "moving"
        moving.mkdir()
        for path in (lab.payloads[0], lab.payloads[1], lab.payloads[3]):
            if path.is_dir():
                shutil.copytree(path, moving / path.name, copy_function=os.link)
            else:
                os.link(path, moving / path.name)

    def action(lab: Lab, run: Path) -> Action:
        return cli_action(*_save_args(lab, run, "--move", *sources(run)))

    def extra(lab: Lab, run: Path) -> list[str]:
        # every moved file is somewhere whole: still at its source, or in the committed checkpoint
        committed = snapshot(run).get("checkpoint-400") == valid(400)
        problems = []
        for original in (lab.payloads[0], lab.payloads[1], lab.payloads[3]):
            for relative, sha in files_below(original).items():
                places = [run.parent / "moving" / relative]
                if committed:
                    places.append(run / "checkpoint-400" / relative)
                if not any(p.is_file() and digest(p) == sha for p in places):
                    problems.append(f"moved payload {relative} lost")
        return problems

    return replace(
        _new_checkpoint_400("save --move (CLI, 3 payloads)", action), prepare=prepare, extra=extra
    )


PRUNE_KEPT = {"checkpoint-70": valid(70), "checkpoint-80": valid(80)}


def _age_leftovers(lab: Lab, run: Path) -> None:
    for name in (".checkpoint-90.staging-0a1b2c", ".checkpoint-5.deleting-3d4e5f", "checkpoint-85"):
        _age(run / name, 2 * 86400)


def _prune(api: bool) -> Op:
    # The CLI asks for incomplete folders too (--delete-incomplete: checkpoint-85 goes); the
    # API does not, and checkpoint-85, which ckpt cannot read, must survive every kill.
    def action(lab: Lab, run: Path) -> Action:
        if not api:
            return cli_action(
                "prune",
                run,
                "--keep-last",
                2,
                "--stale-after",
                "1h",
                "--delete-incomplete",
                "--yes",
            )

        def cleanup() -> int:
            Checkpoint.cleanup_old(CheckpointConfig(output_dir=run, max_checkpoints=2))
            return 0

        return cleanup

    def recover(lab: Lab, run: Path) -> None:
        ended = run_child(action(lab, run))
        assert ended.status == 0, ended.stderr

    allowed: dict[str, list[State]] = {
        f"checkpoint-{s}": [valid(s), ABSENT] for s in range(10, 70, 10)
    }
    allowed.update({name: [state] for name, state in PRUNE_KEPT.items()})
    allowed["checkpoint-85"] = [INCOMPLETE] if api else [INCOMPLETE, ABSENT]
    final = {**PRUNE_KEPT, "checkpoint-85": INCOMPLETE} if api else PRUNE_KEPT
    how = "API cleanup_old" if api else "CLI --delete-incomplete"
    what = "2 leftovers to delete, 1 incomplete kept" if api else "3 leftovers to delete"
    return Op(
        f"prune ({how}, 6 checkpoints + {what})",
        "prune",
        lambda lab: lab.prune_base,
        action,
        allowed,
        final,
        prepare=_age_leftovers,
        recover=recover,
    )


OPS = {
    "save-cli": _save_cli(),
    "save-api": _save_api(big=False),
    "save-api-big": _save_api(big=True),
    "save-cli-big": _save_cli_big(),
    "seal-cli": _seal_cli(),
    "replace-cli": _replace(api=False),
    "replace-api": _replace(api=True),
    "replace-fallback": _replace(api=False, fallback=True),
    "move-cli": _move_cli(),
    "prune-cli": _prune(api=False),
    "prune-api": _prune(api=True),
}
#: Where the operations that repeat another's protocol are killed (under CKPT_STRESS too):
#: the 1M-float ones at a few points (each run writes 15 MB of JSON), the API ones where they
#: differ from the CLI (which is killed at every point), the fallback at its own steps.
SOME_POINTS = {
    "save-api-big": {"save:before-metadata", "save:before-publish"},
    "save-cli-big": {"save:metadata:before-rename"},
    "save-api": {
        "save:staging-created",
        "save:payload-copied",
        "save:metadata:before-rename",
        "save:before-publish",
        "save:committed",
    },
    "replace-api": {
        "replace:staging-linked",
        "save:before-publish",
        "replace:exchanged",
        "delete:after-rename",
        "delete:removed",
    },
    "replace-fallback": {"replace:old-renamed-aside"},
}
WORKERS = max(1, min(4, os.cpu_count() or 1))


def _kill_points(lab: Lab, key: str) -> list[tuple[str, int]]:
    """Every point the operation passes; of one passed many times (a file copied, a folder
    deleted), the first, second and last time (every time under CKPT_STRESS)."""
    points = _traced(lab, key)
    if key in SOME_POINTS:
        return [p for p in points if p[0] in SOME_POINTS[key]]
    if STRESS:
        return points
    last = dict(points)
    return [(name, n) for name, n in points if n <= 2 or n == last[name]]


def _traced(lab: Lab, key: str) -> list[tuple[str, int]]:
    if key not in lab.traces:
        op = OPS[key]
        run = lab.fresh(op.template(lab))
        op.prepare(lab, run)
        points, ended = trace_points(op.action(lab, run), run.parent / "trace")
        assert ended.status == 0, (key, ended.stderr)
        assert unsafe(run, op.allowed) == [], key
        lab.traces[key] = points
        lab.durations[key] = ended.seconds
    return lab.traces[key]


def _scenario(
    lab: Lab, key: str, *, point: tuple[str, int] | None = None, delay: float | None = None
) -> list[str]:
    """Kill one run of `key` (at a point, or after a delay) and return what went wrong."""
    op = OPS[key]
    run = lab.fresh(op.template(lab))
    op.prepare(lab, run)
    where = f"{key} killed at {point}" if point else f"{key} killed after {delay:.3f}s"
    ended = run_child(op.action(lab, run), env=kill_at(point) if point else None, kill_after=delay)
    problems = []
    if point is not None and not ended.killed:
        problems.append(f"never reached the point (exit {ended.status}): {ended.stderr[-500:]}")
    if delay is not None and not (ended.killed or ended.status == 0):
        problems.append(f"exit {ended.status}: {ended.stderr[-500:]}")
    if "Traceback" in ended.stderr or "internal error" in ended.stderr:
        problems.append(ended.stderr[-2000:])
    problems += unsafe(run, op.allowed, snapshot(run))
    problems += op.extra(lab, run)
    if not problems:
        try:
            op.recover(lab, run)
        except AssertionError as exc:
            problems.append(f"recovery failed: {exc}")
        else:
            final = snapshot(run)
            if final != op.final:
                problems.append(f"after recovery: {final}, expected {op.final}")
            if leftovers(run):
                problems.append(f"left behind after recovery: {leftovers(run)}")
            problems += unsafe(run, {n: [s] for n, s in op.final.items()}, final)
    if problems:
        return [f"{where}: " + "\n    ".join(problems)]
    shutil.rmtree(run.parent)
    return []


@pytest.mark.parametrize("key", list(OPS))
def test_kill_at_every_fault_point(lab: Lab, key: str) -> None:
    points = _kill_points(lab, key)
    assert points
    problems = in_parallel(points, lambda point: _scenario(lab, key, point=point), WORKERS)
    KILLS[OPS[key].kind] += len(points)
    KILLS["unsafe"] += len(problems)
    assert not problems, "\n".join(problems)


RANDOM_OPS = ["save-cli", "seal-cli", "replace-cli", "move-cli", "prune-cli", "save-api-big"]


@pytest.mark.parametrize("key", RANDOM_OPS)
def test_kill_at_random_instants(lab: Lab, key: str) -> None:
    _traced(lab, key)
    rng = random.Random(f"{SEED}-{key}")
    span = lab.durations[key] * 1.2
    count = RANDOM_KILLS if key != "save-api-big" else max(1, RANDOM_KILLS // 10)
    delays = [rng.uniform(0.0, span) for _ in range(count)]
    problems = in_parallel(delays, lambda delay: _scenario(lab, key, delay=delay), WORKERS)
    KILLS["random"] += len(delays)
    KILLS["unsafe"] += len(problems)
    assert not problems, "\n".join(problems)


def test_every_fault_point_is_reached(lab: Lab) -> None:
    reached = {name for key in OPS for name, _ in _traced(lab, key)}
    assert reached == set(atomic.FAULT_POINTS), (
        f"never reached: {sorted(set(atomic.FAULT_POINTS) - reached)}; "
        f"not registered: {sorted(reached - set(atomic.FAULT_POINTS))}"
    )


def test_kill_counts(lab: Lab) -> None:
    """The issue's bar: at least 50 kill points of save and 20 of prune in `make test`."""
    save = sum(len(_kill_points(lab, k)) for k, op in OPS.items() if op.kind == "save")
    prune = sum(len(_kill_points(lab, k)) for k, op in OPS.items() if op.kind == "prune")
    assert save >= 50 and prune >= 20, (save, prune)


def test_real_binary_killed_by_the_environment_hook(lab: Lab) -> None:
    """The same hook through the installed `ckpt` script: CKPT_FAULT_AT in its environment."""
    for key, point in (
        ("save-cli", ("save:before-publish", 1)),
        ("prune-cli", ("delete:before-remove", 3)),
    ):
        op = OPS[key]
        run = lab.fresh(op.template(lab))
        op.prepare(lab, run)
        done = subprocess.run(
            [str(CKPT_BIN), *_argv(lab, key, run)],
            env={**os.environ, **kill_at(point)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == -9, done.stderr
        assert unsafe(run, op.allowed) == []
        latest = subprocess.run([str(CKPT_BIN), "latest", str(run)], capture_output=True, text=True)
        assert latest.returncode == 0 and "Traceback" not in latest.stderr
        assert snapshot(run)[Path(latest.stdout.strip()).name][0] == "valid"
        op.recover(lab, run)
        assert snapshot(run) == op.final and leftovers(run) == []
        KILLS[op.kind] += 1


def _argv(lab: Lab, key: str, run: Path) -> list[str]:
    if key == "save-cli":
        return [str(a) for a in _save_args(lab, run, "--keep-last", 2, *lab.payloads)]
    return [
        "prune",
        str(run),
        "--keep-last",
        "2",
        "--stale-after",
        "1h",
        "--delete-incomplete",
        "--yes",
    ]


# ---- deletion is immune to a symlink swapped in while it runs --------------------------------


def _doomed_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run whose checkpoint-1 prune will delete, with a folder inside; and a precious
    folder outside the run that a swapped-in link will point at."""
    run = tmp_path / "run"
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "precious.bin").write_bytes(b"precious")
    (outside / "deep" / "more.bin").write_bytes(b"more")
    shards = tmp_path / "shards"
    (shards / "sub").mkdir(parents=True)
    for i in range(3):
        (shards / "sub" / f"{i}.bin").write_bytes(b"x" * 100)
    for step in (1, 2):
        Checkpoint(epoch=0, global_step=step, best_loss=1.0, rng_state=step).save(
            run / f"checkpoint-{step}", payloads=[shards]
        )
    return run, outside


def _outside_intact(outside: Path) -> bool:
    return (outside / "precious.bin").read_bytes() == b"precious" and (
        outside / "deep" / "more.bin"
    ).read_bytes() == b"more"


@pytest.mark.parametrize("swap", ["a folder inside", "the folder itself"])
def test_prune_stopped_mid_delete_and_a_link_swapped_in_deletes_nothing_outside(
    tmp_path: Path, swap: str
) -> None:
    """A real prune process is stopped after it renamed checkpoint-1 aside and before it removes
    it; a folder in it (or the renamed folder itself) is swapped for a symlink to a folder
    outside the run, and the prune goes on."""
    run, outside = _doomed_run(tmp_path)

    def tamper() -> None:
        (trash,) = run.glob(".checkpoint-1.deleting-*")
        if swap == "a folder inside":
            target = trash / "shards" / "sub"
            target.rename(trash / "shards" / "sub-moved")
        else:
            target = trash
            target.rename(tmp_path / "moved-away")
        target.symlink_to(outside, target_is_directory=True)

    ended = run_child(
        cli_action("prune", run, "--keep-last", 1, "--yes"),
        env={"CKPT_FAULT_AT": "delete:before-remove", "CKPT_FAULT_ACTION": "stop"},
        on_stop=tamper,
    )
    assert _outside_intact(outside)
    assert "Traceback" not in ended.stderr
    if swap == "a folder inside":
        # the link inside is unlinked, never followed; the prune completes
        assert ended.status == 0, ended.stderr
        assert not list(run.glob(".checkpoint-1.*"))
    else:
        # the removal refuses a link in place of the folder: one clear failure, exit 4
        assert ended.status == 4, ended.stderr
        assert "a symlink or a file took the place of a folder being removed" in ended.stderr
        (trash,) = run.glob(".checkpoint-1.deleting-*")
        assert trash.is_symlink()
    assert snapshot(run) == {"checkpoint-2": valid(2)}
    # the next prune finishes: it unlinks whatever link is left, never deleting through it
    # (a link left in the folder's place is a symlink like any other: never deleted through)
    again = run_cli("prune", run, "--keep-last", 1, "--yes")
    assert again.status == 0, again.stderr
    assert _outside_intact(outside)


def test_rmtree_race_between_listing_and_opening_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest window: the removal has listed a folder and seen a directory in it; before
    it opens that directory, the directory becomes a symlink to a folder outside. The removal
    must notice (it opens with O_NOFOLLOW) and not descend."""
    from ckpt_cli.core.retention import RetentionPolicy
    from ckpt_cli.ops.prune import prune_run_dir

    run, outside = _doomed_run(tmp_path)
    real_open = os.open
    swapped = []

    def racing_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if path == "sub" and kwargs.get("dir_fd") is not None and not swapped:
            (trash,) = run.glob(".checkpoint-1.deleting-*")
            (trash / "shards" / "sub").rename(trash / "shards" / "sub-moved")
            (trash / "shards" / "sub").symlink_to(outside, target_is_directory=True)
            swapped.append(True)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", racing_open)
    result = prune_run_dir(run, RetentionPolicy(keep_last=1))
    monkeypatch.undo()
    assert swapped, "the race was never set up"
    assert _outside_intact(outside)
    assert [reason for _, reason in result.failed] == [
        "a symlink or a file took the place of a folder being removed; not followed"
    ]
    # the next prune removes the leftover trash, link and all, and still not what it points to
    again = prune_run_dir(run, RetentionPolicy(keep_last=1))
    assert again.failed == [] and _outside_intact(outside)
    assert sorted(p.name for p in run.iterdir() if p.name != ".ckpt.lock") == ["checkpoint-2"]
