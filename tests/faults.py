"""Fault injection for the tests: run a ckpt operation in a real child process, kill it, and say
what the run directory must look like afterwards.

- `run_child` forks the test process (ckpt is already imported there, so a child starts in a
  millisecond instead of half a second) and runs one operation in the child: the CLI exactly as
  `ckpt` runs it, or a Python API call. The child is a real process: SIGKILL stops it dead, with no
  `finally`, no atexit handler and no flush. It dies at a fault point (`CKPT_FAULT_AT`, see
  `ckpt_cli.storage.atomic.fault_point`) or after a delay that the parent chooses.
- `trace_points` runs an operation once with `CKPT_FAULT_TRACE` and returns every
  (point, n-th occurrence) that it passed: the deterministic kill points of that operation.
- `snapshot` reads what a user can see in a run directory, and `unsafe` compares it with what
  is allowed: every visible `checkpoint-N` is either absent, incomplete (only where it was
  before), or a whole checkpoint (metadata valid, payload matching its manifest) of a version
  the test knows; never corrupt, never a mix.
- `in_parallel` spreads independent kills over forked workers; `spawn`/`join` run the storm's
  processes; `ckpt_in_process` runs one command through the click command the script runs.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ckpt_cli.core.errors import CkptError
from ckpt_cli.core.records import LOCK_NAME, METADATA_NAME, step_from_name
from ckpt_cli.ops.latest import find_latest
from ckpt_cli.ops.load import read_metadata
from ckpt_cli.ops.verify import check_files
from ckpt_cli.storage.local import LocalBackend

#: How a checkpoint folder looks from outside: ("absent",), ("incomplete",), ("corrupt", why)
#: or ("valid", rng_state). Tests give every version they save its own rng_state, so the
#: rng_state says which version a folder holds.
State = tuple[object, ...]
ABSENT: State = ("absent",)
INCOMPLETE: State = ("incomplete",)


def valid(version: int) -> State:
    return ("valid", version)


@dataclass
class Ended:
    """How a child ended: `status` is its exit code, or minus the signal that killed it."""

    status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.status == -signal.SIGKILL


_command: Callable[..., object] | None = None


def cli_command() -> Callable[..., object]:
    """The click command that `ckpt` runs, built once (Typer builds it anew on every call,
    which costs more than a forked child's whole save)."""
    global _command
    if _command is None:
        import typer.main

        from ckpt_cli.cli import app

        _command = typer.main.get_command(app)
        # Typer imports its value converters (and pydantic) on the first parse: do it here,
        # once, rather than in every forked child
        import contextlib
        import shutil

        scratch = Path(tempfile.mkdtemp())
        try:
            with (
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                for args in (
                    [
                        "save",
                        scratch,
                        "--step",
                        1,
                        "--loss",
                        0.5,
                        "--rng-state",
                        1,
                        "--keep-last",
                        1,
                        "--stale-after",
                        "1h",
                        "--lock-timeout",
                        1,
                    ],
                    ["latest", scratch, "--json"],
                ):
                    _command([str(a) for a in args], standalone_mode=False)
        finally:
            shutil.rmtree(scratch)
    return _command


def cli_action(*args: object) -> Callable[[], int]:
    """The `ckpt` command line with these arguments, run as the console script runs it."""
    argv = [os.fspath(a) if isinstance(a, Path) else str(a) for a in args]

    def action() -> int:
        code = cli_command()(argv, prog_name="ckpt", standalone_mode=False)
        return code if isinstance(code, int) else 0

    return action


def run_cli(*args: object) -> Ended:
    """Run `ckpt` with these arguments in a child process, to the end."""
    return run_child(cli_action(*args))


def run_child(
    action: Callable[[], int],
    *,
    env: Mapping[str, str] | None = None,
    kill_after: float | None = None,
    on_stop: Callable[[], None] | None = None,
    timeout: float = 120.0,
) -> Ended:
    """Run `action` in a forked child and wait for it.

    `env` is applied in the child only (CKPT_FAULT_AT and friends). `kill_after` sends SIGKILL
    after that many seconds. With CKPT_FAULT_ACTION=stop in `env`, the child stops itself at
    the fault point; `on_stop` then runs in the parent and the child is let go on.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _child(action, env, out.fileno(), err.fileno())
        try:
            status = _wait(pid, kill_after, on_stop, timeout)
        finally:
            _reap(pid)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return Ended(status, stdout, stderr, seconds)


def _child(action: Callable[[], int], env: Mapping[str, str] | None, out: int, err: int) -> None:
    """The forked child: never returns into the test process."""
    code = 70
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        sys.stdin = io.TextIOWrapper(io.FileIO(os.open(os.devnull, os.O_RDONLY), "r"))
        os.environ.update(env or {})
        code = action()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(
    pid: int, kill_after: float | None, on_stop: Callable[[], None] | None, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    kill_at = None if kill_after is None else time.monotonic() + kill_after
    while True:
        done, status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
        if done:
            if os.WIFSTOPPED(status):
                try:
                    if on_stop is not None:
                        on_stop()
                finally:
                    os.kill(pid, signal.SIGCONT)
                continue
            if os.WIFSIGNALED(status):
                return -os.WTERMSIG(status)
            return os.WEXITSTATUS(status)
        now = time.monotonic()
        if kill_at is not None and now >= kill_at:
            os.kill(pid, signal.SIGKILL)  # a zombie until we wait: the pid cannot be reused
            kill_at = None
            continue
        if now > deadline:
            raise TimeoutError(f"child {pid} still running after {timeout}s")
        wake = deadline if kill_at is None else min(kill_at, deadline)
        time.sleep(max(0.0, min(0.002, wake - now)))


def _reap(pid: int) -> None:
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def trace_points(
    action: Callable[[], int], trace_file: Path
) -> tuple[list[tuple[str, int]], Ended]:
    """Run `action` once, to the end, and list every (fault point, n-th time) it passed."""
    trace_file.unlink(missing_ok=True)
    ended = run_child(action, env={"CKPT_FAULT_TRACE": str(trace_file)})
    names = trace_file.read_text().split() if trace_file.exists() else []
    seen: dict[str, int] = {}
    points = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        points.append((name, seen[name]))
    return points, ended


def kill_at(point: tuple[str, int]) -> dict[str, str]:
    """The environment that makes a child SIGKILL itself at `point`."""
    name, nth = point
    return {"CKPT_FAULT_AT": f"{name}:{nth}"}


# ---- what a user can see ---------------------------------------------------------------------


def folder_state(folder: Path) -> State:
    """absent / incomplete / valid(rng_state) / corrupt(why) for one checkpoint folder.

    Valid means what a resume needs: metadata.json complete and valid, the step in it the
    step in the name, and every payload file matching the manifest (size and sha256).
    """
    if not os.path.lexists(folder):
        return ABSENT
    if not os.path.lexists(folder / METADATA_NAME):
        return INCOMPLETE
    try:
        meta = read_metadata(folder)
    except CkptError as exc:
        return ("corrupt", str(exc))
    if meta.global_step != step_from_name(folder.name):
        return ("corrupt", f"metadata says step {meta.global_step}")
    if meta.manifest is None:
        return ("corrupt", "no manifest")
    local = LocalBackend()
    problems = check_files(local, folder, meta.manifest, local.files(folder))
    if problems:
        return ("corrupt", "; ".join(map(str, problems)))
    return valid(meta.rng_state) if meta.rng_state is not None else ("valid", None)


def snapshot(run_dir: Path) -> dict[str, State]:
    """The state of every visible `checkpoint-N` entry of a run directory."""
    return {
        name: folder_state(run_dir / name)
        for name in sorted(os.listdir(run_dir))
        if step_from_name(name) is not None
    }


def leftovers(run_dir: Path) -> list[str]:
    """Hidden entries a save or prune leaves behind (staging, trash, temp files), anywhere."""
    found = []
    for current, dirs, files in os.walk(run_dir):
        for name in dirs + files:
            if name.startswith(".") and not (current == str(run_dir) and name == LOCK_NAME):
                found.append(os.path.relpath(os.path.join(current, name), run_dir))
    return sorted(found)


def unsafe(
    run_dir: Path,
    allowed: Mapping[str, Iterable[State]],
    states: Mapping[str, State] | None = None,
) -> list[str]:
    """What is wrong with a run directory after a kill, given the states each name may be in
    (a name not listed must be absent). Empty when all is well. `states` is the snapshot, when
    the caller has one already."""
    problems = []
    states = snapshot(run_dir) if states is None else states
    for name in sorted(set(states) | set(allowed)):
        state = states.get(name, ABSENT)
        if state not in set(allowed.get(name, [ABSENT])):
            problems.append(f"{name}: {state}, allowed {sorted(map(str, allowed.get(name, [])))}")
    valid_steps = [step_from_name(n) or 0 for n, s in states.items() if s[0] == "valid"]
    try:
        folder, meta = find_latest(run_dir)
    except CkptError as exc:
        if valid_steps:
            problems.append(f"latest failed although valid checkpoints exist: {exc}")
        return problems
    state = states.get(folder.name, ABSENT)
    if state[0] != "valid":
        problems.append(f"latest returned {folder.name}, which is {state}")
    elif meta.global_step != max(valid_steps):
        problems.append(f"latest returned {folder.name}, not the highest valid step")
    return problems


Item = TypeVar("Item")


def in_parallel(
    items: Sequence[Item], work: Callable[[Item], list[str]], workers: int
) -> list[str]:
    """`work` on every item, spread over `workers` forked processes (the test process is one of
    them); returns all the problems reported. Each item's work must be independent."""
    import json

    chunks = [list(items[i::workers]) for i in range(workers)]
    children = []
    for chunk in chunks[1:]:
        if not chunk:
            continue
        result = tempfile.NamedTemporaryFile(suffix=".json", delete=False)  # noqa: SIM115
        result.close()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker
            code = 0
            try:
                found: list[str] = []
                for item in chunk:
                    found += work(item)
                Path(result.name).write_text(json.dumps(found))
            except BaseException:
                Path(result.name).write_text(json.dumps([traceback.format_exc()]))
                code = 1
            finally:
                os._exit(code)
        children.append((pid, Path(result.name)))
    problems: list[str] = []
    try:
        for item in chunks[0]:
            problems += work(item)
    finally:
        for pid, result in children:
            os.waitpid(pid, 0)
            text = result.read_text()
            result.unlink()
            problems += json.loads(text) if text else [f"worker {pid} died"]
    return problems


def spawn(work: Callable[[], None]) -> int:
    """Run `work` in a forked child that goes on beside the test; returns its pid. The child
    exits 0 when `work` returns and 70 (with the traceback on stderr) when it raises."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 70
        finally:
            os._exit(code)
    return pid


def join(pid: int, timeout: float) -> int:
    """Wait for a spawned child; its exit code (minus the signal that killed it)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        if time.monotonic() > deadline:
            _reap(pid)
            raise TimeoutError(f"child {pid} still running after {timeout}s")
        time.sleep(0.01)


def ckpt_in_process(*args: object) -> tuple[int, str, str]:
    """`ckpt ARGS` in this process, through the very command the script runs."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    argv = [os.fspath(a) if isinstance(a, Path) else str(a) for a in args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_command()(argv, prog_name="ckpt", standalone_mode=False)
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()
