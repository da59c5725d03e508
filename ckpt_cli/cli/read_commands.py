"""The commands that read (latest, list, load, verify), and never write: each parses, makes
one call to `ckpt_cli.ops`, renders."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import PartialFailureError, UsageError
from . import output
from .app import (
    TERMINAL_ROWS,
    CkptCommand,
    app,
    byte_progress,
    raise_failures,
    show_metadata,
)
from .params import (
    FieldOpt,
    JsonOpt,
    LayoutOpt,
    RunDirArg,
)


@app.command(
    cls=CkptCommand, short_help="Print the newest valid checkpoint's path; exit 1 if none."
)
def latest(
    run_dir: RunDirArg, as_json: JsonOpt = False, field: FieldOpt = None, layout: LayoutOpt = None
) -> None:
    """Print the path of the newest valid checkpoint; exit 1 when there is none.

    Example: ckpt latest runs/exp7/checkpoints   (in a job: RESUME=$(ckpt latest "$RUN"))
    """
    from ..ops.latest import find_latest

    folder, meta = find_latest(run_dir, warn=output.warn, layout=layout)
    if as_json or field is not None:
        show_metadata(folder, meta, as_json, field)
    else:
        output.data(str(folder))


class SortKey(str, Enum):
    """How `list --sort` orders rows (views.select_rows says what each keeps under --limit)."""

    step = "step"
    loss = "loss"
    age = "age"
    size = "size"


@app.command(
    "list", cls=CkptCommand, short_help="Show a run's checkpoints: table, plain columns, or --plot."
)
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
    layout: LayoutOpt = None,
) -> None:
    """Show the checkpoints of a run: step, epoch, losses, size, age, status, markers.

    On a terminal: a table of the newest rows with a footer (count, size on disk, the
    checkpoint a resume would use, the best one). In a pipe: plain space-aligned columns.

    Example: ckpt list runs/exp7/checkpoints --sort loss --limit 5   (or --plot for the curve)
    """
    from ..ops.scan import scan
    from .views import list_lines, markers_for, record_json, select_rows, summarize

    if show_all and limit is not None:
        raise UsageError("--all and --limit contradict each other; give one")
    if plot and (as_json or sort is not None):
        raise UsageError(
            f"--plot draws a chart by step; it takes no {'--json' if as_json else '--sort'}"
        )
    shown = ("checkpoint", "staging", "symlink")
    listed = scan(run_dir, sizes=True, layout=layout, warn=output.warn)
    records = [r for r in listed if r.kind in shown]
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


@app.command(cls=CkptCommand, short_help="Show one checkpoint in full, validated.")
def load(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH", help="A checkpoint folder (or s3:// URL), or its metadata.json."
        ),
    ],
    as_json: JsonOpt = False,
    field: FieldOpt = None,
    layout: LayoutOpt = None,
) -> None:
    """Show one checkpoint in full (validated).

    On a terminal: a panel with every field; a large optimizer_state is summarised (length,
    min, max, mean, first values) and printed in full only with --json or --field.

    Example: ckpt load runs/exp7/checkpoints/checkpoint-1500 --field global_step
    """
    from ..ops.load import checkpoint_folder, read_metadata

    folder = checkpoint_folder(path)
    show_metadata(folder, read_metadata(folder, layout), as_json, field)


@app.command(cls=CkptCommand, short_help="Check metadata and payload hashes; exit 3 on a mismatch.")
def verify(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="A checkpoint folder, its metadata.json, or a run directory (or s3:// URLs).",
        ),
    ],
    as_json: JsonOpt = False,
    layout: LayoutOpt = None,
) -> None:
    """Validate metadata and recompute payload hashes against the manifest; exit 3 on mismatch.

    Example: ckpt verify runs/exp7/checkpoints/checkpoint-1500
    """
    from ..ops.verify import verify_target

    with byte_progress("hashing payload") as progress:
        single, reports = verify_target(path, progress, layout)
    docs = [
        {
            "path": str(r.path),
            "global_step": r.step,
            "status": r.status,
            "layout": r.layout,
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
        raise_failures(failed, "checkpoints")
    elif failed:
        code = max(error.exit_code for error in failed)
        raise PartialFailureError(
            f"{len(failed)} of {len(reports)} checkpoints failed verification", code
        )
