"""The `ckpt` command line: Typer subcommands over the core, each parse, one call, render.

Errors from the core (`CkptError`) and from argument parsing become one line on stderr,
`ckpt: error: ...`, and DESIGN.md's exit code, in one place: `CkptGroup.main`. Only what a
command needs is imported, inside it: `ckpt latest` in a job script loads neither the
retention engine nor rich. The module has no `from __future__ import annotations`: Typer reads
the command signatures on every run, and string annotations cost it a compile and an eval of
each one, three times over (about 8 ms of a `ckpt latest`).
"""

import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import __version__, coercion, output
from .errors import CkptError, CkptFileSystemError, PartialFailureError, UsageError
from .format import Metadata, metadata_to_json
from .locking import DEFAULT_LOCK_TIMEOUT
from .params import (
    DeleteIncompleteOpt,
    FieldOpt,
    JsonOpt,
    KeepBestOpt,
    KeepDailyOpt,
    KeepEveryOpt,
    KeepLastOpt,
    KeepWeeklyOpt,
    KeepWithinOpt,
    LockTimeoutOpt,
    MinAgeOpt,
    RunDirArg,
    StaleAfterOpt,
)
from .storage import Location

#: exit code of a bug in ckpt (EX_SOFTWARE), apart from DESIGN.md's 0-5
INTERNAL_ERROR = 70

_debug = os.environ.get("CKPT_DEBUG", "") not in ("", "0")
#: rows `ckpt list` shows on a terminal unless --limit or --all says otherwise
TERMINAL_ROWS = 20


class CkptGroup(TyperGroup):
    """The app's command group: maps every error to one stderr line and an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # no pydantic import for values that need no coercion
        coercion.install(self, self.context_settings.get("help_option_names", ["--help"]))
        try:
            result = super().main(
                args=args,
                prog_name=prog_name or "ckpt",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except CkptError as exc:
            if _debug:
                _print_traceback()
            output.error(str(exc))
            code = exc.exit_code
        except typer.Abort:  # the user answered no (or ^C/^D) at a prompt
            output.error("aborted, nothing deleted")
            code = 1
        except typer.TyperException as exc:  # click's usage errors, via Typer's own copy
            code = _report_usage_error(exc)
        except BrokenPipeError:
            # the reader of our stdout went away (`ckpt list | head`): not an error of ours
            sys.stderr.close()
            code = 0
        except KeyboardInterrupt:
            code = 130
        except Exception as exc:  # a bug: still one line, unless --debug asks for more
            if _debug:
                _print_traceback()
            output.error(f"internal error: {exc.__class__.__name__}: {exc} (run with --debug)")
            # not 1: a job script must not read a crash as "no checkpoint, start from scratch"
            code = INTERNAL_ERROR
        if not standalone_mode:
            return code
        sys.exit(code)


def _print_traceback() -> None:
    import traceback  # only for --debug: 6 ms of every start otherwise

    traceback.print_exc()


def _report_usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stderr.write(ctx.get_help() + "\n")
        return 2
    message = exc.format_message()
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    output.error(message)
    return int(getattr(exc, "exit_code", 2))


app = typer.Typer(
    cls=CkptGroup,
    name="ckpt",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        output.data(f"ckpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors (or set CKPT_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Save, find, inspect and prune the checkpoint-<step>/ folders of training runs.

    Exit codes: 0 ok, 1 nothing found, 2 usage error, 3 invalid checkpoint data,
    4 file-system error, 5 lock not acquired in time.
    """
    global _debug
    _debug = _debug or debug


def _show_metadata(folder: Location, meta: Metadata, as_json: bool, field: str | None) -> None:
    doc = metadata_to_json(meta, path=str(folder), status="valid")
    if field is not None:
        if field not in doc:
            raise UsageError(f"--field: unknown field {field!r} (known: {', '.join(doc)})")
        output.data(output.field_text(doc[field]))
    elif as_json:
        output.json_document(doc)
    elif output.stdout_is_terminal():
        from .render import render_metadata

        render_metadata(doc)
    else:
        from .views import metadata_lines

        for line in metadata_lines(doc):
            output.data(line)


def _checked(option: str, value: Any, check: Callable[[str, Any], Any]) -> None:
    try:
        check(option, value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _raise_failures(failures: Sequence[CkptError], what: str) -> None:
    """One failure is reported as itself; several as one line each, then a summary line."""
    if len(failures) == 1:
        raise failures[0]
    if failures:
        for exc in failures:
            output.error(str(exc))
        code = max(exc.exit_code for exc in failures)
        raise PartialFailureError(f"{len(failures)} {what} failed", code)


# ---- commands ------------------------------------------------------------------------------


@app.command(short_help="Commit a checkpoint atomically and print its path.")
def save(
    run_dir: RunDirArg,
    step: Annotated[
        int, typer.Option("--step", min=0, help="The global step (names checkpoint-<step>).")
    ],
    payloads: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PAYLOAD",
            help="Files or folders to copy (or --move) into the checkpoint.",
            show_default=False,
        ),
    ] = None,
    epoch: Annotated[
        int | None, typer.Option("--epoch", min=0, help="Epoch [default: the latest's, else 0].")
    ] = None,
    loss: Annotated[
        float | None,
        typer.Option(
            "--loss", help="This checkpoint's loss; best_loss becomes min(loss, latest best_loss)."
        ),
    ] = None,
    best_loss: Annotated[
        float | None, typer.Option("--best-loss", help="Set best_loss outright.")
    ] = None,
    rng_state: Annotated[
        int | None, typer.Option("--rng-state", min=0, help="RNG state to record.")
    ] = None,
    optimizer_state: Annotated[
        str | None,
        typer.Option(
            "--optimizer-state", metavar="FILE|-", help="A JSON array of numbers (- for stdin)."
        ),
    ] = None,
    move: Annotated[
        bool, typer.Option("--move", help="Move the payload files instead of copying.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing checkpoint of this step.")
    ] = False,
    no_hash: Annotated[
        bool,
        typer.Option(
            "--no-hash", help="Record payload sizes only, not sha256 (faster for huge files)."
        ),
    ] = False,
    keep_last: KeepLastOpt = None,
    keep_best: KeepBestOpt = None,
    keep_every: KeepEveryOpt = None,
    keep_within: KeepWithinOpt = None,
    keep_daily: KeepDailyOpt = None,
    keep_weekly: KeepWeeklyOpt = None,
    min_age: MinAgeOpt = None,
    stale_after: StaleAfterOpt = None,
    delete_incomplete: DeleteIncompleteOpt = False,
    lock_timeout: LockTimeoutOpt = DEFAULT_LOCK_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Commit a checkpoint atomically (or seal a folder a framework filled) and print its path.

    With --keep-* rules, prunes the run after the new checkpoint is committed.

    Example: ckpt save runs/exp7/checkpoints --step 1500 --epoch 3 --loss 0.41 --keep-last 3
    """
    from .format import check_finite, check_u64
    from .params import build_policy
    from .saving import SaveRequest, save_to_run

    policy = None
    rules = (keep_last, keep_best, keep_every, keep_within, keep_daily, keep_weekly)
    guards = (min_age, stale_after, delete_incomplete or None)
    if any(option is not None for option in (*rules, *guards)):
        policy = build_policy(*rules, min_age, stale_after, delete_incomplete)
        if not policy.has_rule:
            raise UsageError(
                "--min-age, --stale-after and --delete-incomplete need a --keep-* rule "
                "to go with them"
            )
    _checked("--step", step, check_u64)
    for option, value in (("--loss", loss), ("--best-loss", best_loss)):
        if value is not None:
            _checked(option, value, check_finite)
    request = SaveRequest(
        step=step,
        epoch=epoch,
        loss=loss,
        best_loss=best_loss,
        rng_state=rng_state,
        optimizer_state=_read_optimizer_state(optimizer_state) if optimizer_state else [],
    )
    files = [_payload_path(p) for p in payloads or []]
    with _copy_progress(files) as progress:
        result = save_to_run(
            run_dir,
            request,
            payloads=files,
            move=move,
            force=force,
            hashes=not no_hash,
            policy=policy,
            lock_timeout=lock_timeout,
            progress=progress,
        )
    if result.prune is not None:
        from .views import prune_lines

        for line in prune_lines([result.prune], dry_run=False):
            output.info(line)
    if as_json:
        output.json_document(
            {
                "path": str(result.path),
                "outcome": result.outcome,
                "global_step": step,
                "best_loss": result.best_loss,
                "status": "valid",
            }
        )
    else:
        output.data(str(result.path))


def _payload_path(text: str) -> Path:
    """A payload is a local file or folder, even when the checkpoint goes to an object store."""
    from .storage import is_url

    if is_url(text):
        raise UsageError(f"{text}: a payload must be a local file or folder, not a URL")
    return Path(text)


def _read_optimizer_state(source: str) -> list[float]:
    import orjson

    from .format import normalize_optimizer_state

    name = "stdin" if source == "-" else source
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise CkptFileSystemError(f"{name}: cannot read optimizer state: {exc.strerror}") from None
    try:
        return normalize_optimizer_state(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise UsageError(
            f"--optimizer-state {name}: expected a JSON array of numbers ({exc})"
        ) from None


def _ignore_progress(_: Any) -> None:
    return None


@contextmanager
def _byte_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long byte work (copying, hashing), on a terminal only:
    nothing of it reaches a pipe or a log file."""
    if not output.stderr_is_terminal():
        yield _ignore_progress
        return
    from .render import byte_progress

    with byte_progress(description, total) as advance:
        yield advance


@contextmanager
def _deletion_progress(description: str) -> Iterator[Callable[[Any], None]]:
    """Like `_byte_progress`, for folders deleted by a prune."""
    if not output.stderr_is_terminal():
        yield _ignore_progress
        return
    from .render import deletion_progress

    with deletion_progress(description) as advance:
        yield advance


def _copy_progress(payloads: Sequence[Path]) -> AbstractContextManager[Callable[[int], None]]:
    if not payloads or not output.stderr_is_terminal():
        return nullcontext(_ignore_progress)
    # A total only when every payload is a plain file (one stat each): walking a folder here,
    # before the save has checked its arguments, could mean walking `/` for a mistyped path.
    try:
        total: int | None = (
            sum(p.stat().st_size for p in payloads) if all(p.is_file() for p in payloads) else None
        )
    except OSError:
        total = None  # a missing payload is reported by the save itself
    return _byte_progress("copying payload", total)


@app.command(short_help="Print the newest valid checkpoint's path; exit 1 if none.")
def latest(run_dir: RunDirArg, as_json: JsonOpt = False, field: FieldOpt = None) -> None:
    """Print the path of the newest valid checkpoint; exit 1 when there is none.

    Example: ckpt latest runs/exp7/checkpoints   (in a job: RESUME=$(ckpt latest "$RUN"))
    """
    from .rundir import find_latest

    folder, meta = find_latest(run_dir, warn=output.warn)
    if as_json or field is not None:
        _show_metadata(folder, meta, as_json, field)
    else:
        output.data(str(folder))


class SortKey(str, Enum):
    """How `list --sort` orders rows (views.select_rows says what each keeps under --limit)."""

    step = "step"
    loss = "loss"
    age = "age"
    size = "size"


@app.command("list", short_help="Show a run's checkpoints: table, plain columns, or --plot.")
def list_(
    run_dir: RunDirArg,
    sort: Annotated[
        SortKey | None,
        typer.Option(
            "--sort",
            help="Order rows by step (oldest first), loss (lowest first), age (youngest "
            "first) or size (largest first). [default: step]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            metavar="N",
            help="Show the N rows that matter most for the order: the newest steps, the lowest "
            f"losses, the youngest, the largest. [default on a terminal: {TERMINAL_ROWS}; "
            "in a pipe and with --json: every row]",
            show_default=False,
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Show every row, however many.")
    ] = False,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="Draw best loss and own loss against step instead of the table "
            "(with --limit N: the N newest checkpoints).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the checkpoints of a run: step, epoch, losses, size, age, status, markers.

    On a terminal: a table of the newest rows with a footer (count, size on disk, the
    checkpoint a resume would use, the best one). In a pipe: plain space-aligned columns.

    Example: ckpt list runs/exp7/checkpoints --sort loss --limit 5   (or --plot for the curve)
    """
    from .rundir import scan
    from .views import list_lines, markers_for, record_json, select_rows, summarize

    if show_all and limit is not None:
        raise UsageError("--all and --limit contradict each other; give one")
    if plot and (as_json or sort is not None):
        raise UsageError(
            f"--plot draws a chart by step; it takes no {'--json' if as_json else '--sort'}"
        )
    shown = ("checkpoint", "staging", "symlink")
    records = [r for r in scan(run_dir, sizes=True) if r.kind in shown]
    marks = markers_for(records)
    on_terminal = not as_json and output.stdout_is_terminal()
    if plot:
        _show_loss_plot(run_dir, records, marks, limit, on_terminal)
        return
    key = (sort or SortKey.step).value
    if limit is None and on_terminal and not show_all:
        limit = TERMINAL_ROWS
    rows = select_rows(records, key, limit)
    if as_json:
        output.json_document([record_json(r, marks.get(r.name, [])) for r in rows])
    elif on_terminal:
        from .render import render_list
        from .views import hidden_rows_note

        note = hidden_rows_note(len(rows), len(records), key)
        render_list(run_dir, rows, summarize(records, marks), marks, note)
    else:
        for line in list_lines(rows, marks):
            output.data(line)


def _show_loss_plot(
    run_dir: str | Path,
    records: Any,
    marks: dict[str, list[str]],
    limit: int | None,
    on_terminal: bool,
) -> None:
    from .views import chart_lines, loss_series, summarize

    series = loss_series(records, limit)
    if on_terminal:
        from .render import render_loss_plot

        render_loss_plot(run_dir, series, summarize(records, marks))
    else:
        import shutil

        for line in chart_lines(series, shutil.get_terminal_size((80, 24)).columns):
            output.data(line)


@app.command(short_help="Show one checkpoint in full, validated.")
def load(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH", help="A checkpoint folder (or s3:// URL), or its metadata.json."
        ),
    ],
    as_json: JsonOpt = False,
    field: FieldOpt = None,
) -> None:
    """Show one checkpoint in full (validated).

    On a terminal: a panel with every field; a large optimizer_state is summarised (length,
    min, max, mean, first values) and printed in full only with --json or --field.

    Example: ckpt load runs/exp7/checkpoints/checkpoint-1500 --field global_step
    """
    from .rundir import checkpoint_folder, read_metadata

    folder = checkpoint_folder(path)
    _show_metadata(folder, read_metadata(folder), as_json, field)


@app.command(short_help="Delete old checkpoints by OR'd keep rules.")
def prune(
    run_dirs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN_DIR",
            show_default=False,
            help="Run directories or quoted shell globs ('/data/runs/*/checkpoints').",
        ),
    ],
    keep_last: KeepLastOpt = None,
    keep_best: KeepBestOpt = None,
    keep_every: KeepEveryOpt = None,
    keep_within: KeepWithinOpt = None,
    keep_daily: KeepDailyOpt = None,
    keep_weekly: KeepWeeklyOpt = None,
    min_age: MinAgeOpt = None,
    stale_after: StaleAfterOpt = None,
    delete_incomplete: DeleteIncompleteOpt = False,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive", "-r", help="Prune every run directory found under the given roots."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show the plan; delete nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking (for cron).")
    ] = False,
    lock_timeout: LockTimeoutOpt = DEFAULT_LOCK_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Delete old checkpoints by OR'd keep rules; the latest and newest save are always kept.

    Incomplete or corrupt checkpoint folders (another tool's, or a crash) are kept and listed
    with the reason; --delete-incomplete removes them once older than --stale-after.

    Example: ckpt prune '/data/runs/*/checkpoints' --keep-last 3 --keep-best 1 --min-age 2h --yes
    """
    from .params import build_policy
    from .pruning import prune_many
    from .rundir import expand_run_dirs

    policy = build_policy(
        keep_last,
        keep_best,
        keep_every,
        keep_within,
        keep_daily,
        keep_weekly,
        min_age,
        stale_after,
        delete_incomplete,
    )
    if not policy.has_rule:
        raise UsageError(
            "no retention rule given (use --keep-last, --keep-best, --keep-every, "
            "--keep-within, --keep-daily or --keep-weekly); refusing to delete everything"
        )
    targets, failures = expand_run_dirs(run_dirs, recursive, warn=output.warn)
    if not dry_run and not yes:
        if not output.stdin_is_terminal():
            raise UsageError(
                "refusing to delete without --yes when not on a terminal "
                "(use --dry-run to see the plan)"
            )
        if not _confirm(targets, policy):
            raise typer.Abort()
    on_terminal = output.stdout_is_terminal() and not as_json
    with _deletion_progress("pruning") as progress:
        results, errors = prune_many(
            targets,
            policy,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            sizes=on_terminal,
            progress=progress,
        )
    failures.extend(errors)
    if as_json:
        from .views import prune_json

        output.json_document(prune_json(results, failures, dry_run))
    elif on_terminal:
        from .render import render_prune

        render_prune(results, dry_run)
    else:
        from .views import prune_lines

        for line in prune_lines(results, dry_run):
            output.data(line)
    _raise_failures(failures, "run directories or folders")


def _confirm(targets: list[Location], policy: Any) -> bool:
    """Show what a real prune would delete and ask; True when there is nothing to ask about."""
    from .pruning import plan_run_dir

    count = 0
    for target in targets:
        try:
            plan = plan_run_dir(target, policy)
        except CkptError:
            continue  # reported when the real prune reaches it
        for entry in plan.deletions:
            count += 1
            output.info(f"will delete {entry.record.path} ({', '.join(entry.reasons)})")
    if count == 0:
        return True
    return typer.confirm(f"Delete {count} folder(s)?", default=False, err=True)


@app.command(short_help="Check metadata and payload hashes; exit 3 on a mismatch.")
def verify(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="A checkpoint folder, its metadata.json, or a run directory (or s3:// URLs).",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Validate metadata and recompute payload hashes against the manifest; exit 3 on mismatch.

    Example: ckpt verify runs/exp7/checkpoints/checkpoint-1500
    """
    from .manifest import verify_target

    with _byte_progress("hashing payload") as progress:
        single, reports = verify_target(path, progress)
    docs = [
        {
            "path": str(r.path),
            "global_step": r.step,
            "status": r.status,
            "ok": r.ok,
            "problems": r.problems,
        }
        for r in reports
    ]
    if as_json:
        output.json_document(docs[0] if single else docs)
    else:
        for report in reports:
            if report.ok:
                output.data(f"ok      {report.path}")
            for problem in report.problems:
                output.data(f"FAILED  {report.path}: {problem}")
    failed = [r.error for r in reports if r.error is not None]
    if single:
        _raise_failures(failed, "checkpoints")
    elif failed:
        code = max(error.exit_code for error in failed)
        raise PartialFailureError(
            f"{len(failed)} of {len(reports)} checkpoints failed verification", code
        )


def main() -> None:
    """The console script `ckpt`."""
    # Paths are bytes on POSIX; one that is not UTF-8 must still print as itself, so that
    # RESUME=$(ckpt latest "$RUN") gets the real path, whatever the locale's encoding says.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    app()
