"""The commands that write (save, prune), under the run lock: each parses, makes one call to
`ckpt_cli.ops`, renders."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import CkptError, CkptFileSystemError, UsageError
from ..core.paths import Location
from ..core.records import DEFAULT_LOCK_TIMEOUT
from . import output
from .app import (
    CkptCommand,
    app,
    checked,
    copy_progress,
    deletion_progress,
    raise_failures,
)
from .params import (
    DeleteIncompleteOpt,
    JsonOpt,
    KeepBestOpt,
    KeepDailyOpt,
    KeepEveryOpt,
    KeepLastOpt,
    KeepWeeklyOpt,
    KeepWithinOpt,
    LayoutOpt,
    LockTimeoutOpt,
    MinAgeOpt,
    RunDirArg,
    StaleAfterOpt,
)


@app.command(cls=CkptCommand, short_help="Commit a checkpoint atomically and print its path.")
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
        bool,
        typer.Option(
            "--force",
            help="Replace an existing checkpoint of this step (or seal a framework folder whose "
            "save did not finish).",
        ),
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
    from ..core.format import check_finite, check_u64
    from ..ops.save import SaveRequest, save_to_run
    from .params import build_policy

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
    checked("--step", step, check_u64)
    for option, value in (("--loss", loss), ("--best-loss", best_loss)):
        if value is not None:
            checked(option, value, check_finite)
    request = SaveRequest(
        step=step,
        epoch=epoch,
        loss=loss,
        best_loss=best_loss,
        rng_state=rng_state,
        optimizer_state=_read_optimizer_state(optimizer_state) if optimizer_state else [],
    )
    files = [_payload_path(p) for p in payloads or []]
    with copy_progress(files) as progress:
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
    from ..core.paths import is_url

    if is_url(text):
        raise UsageError(f"{text}: a payload must be a local file or folder, not a URL")
    return Path(text)


def _read_optimizer_state(source: str) -> list[float]:
    import orjson

    from ..core.format import normalize_optimizer_state

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


@app.command(cls=CkptCommand, short_help="Delete old checkpoints by OR'd keep rules.")
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
    layout: LayoutOpt = None,
) -> None:
    """Delete old checkpoints by OR'd keep rules; the latest and newest save are always kept.

    Incomplete or corrupt checkpoint folders (another tool's, or a crash) are kept and listed
    with the reason; --delete-incomplete removes them once older than --stale-after.

    Example: ckpt prune '/data/runs/*/checkpoints' --keep-last 3 --keep-best 1 --min-age 2h --yes
    """
    from ..ops.expand import expand_run_dirs
    from ..ops.prune import prune_many
    from .params import build_policy

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
        if not _confirm(targets, policy, layout):
            raise typer.Abort()
    on_terminal = output.stdout_is_terminal() and not as_json
    with deletion_progress("pruning") as progress:
        results, errors = prune_many(
            targets,
            policy,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            sizes=on_terminal,
            progress=progress,
            layout=layout,
        )
    for result in results:
        for message in result.warnings:
            output.warn(message)
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
    raise_failures(failures, "run directories or folders")


def _confirm(targets: list[Location], policy: Any, layout: str | None) -> bool:
    """Show what a real prune would delete and ask; True when there is nothing to ask about."""
    from ..ops.prune import plan_run_dir

    count = 0
    for target in targets:
        try:
            plan = plan_run_dir(target, policy, layout=layout)
        except CkptError:
            continue  # reported when the real prune reaches it
        for entry in plan.deletions:
            count += 1
            output.info(f"will delete {entry.record.path} ({', '.join(entry.reasons)})")
    if count == 0:
        return True
    return typer.confirm(f"Delete {count} folder(s)?", default=False, err=True)
