"""Rich rendering for a terminal: tables, panels, the loss picture and progress bars.

Imported only when stdout (for progress: stderr) is a terminal; nothing here runs in a job
script's `$(ckpt latest ...)`. What the tables show (which rows, the footer's phrases, the chart)
comes from `views.py`, the same source as the plain pipe output; this module only lays it out.
Colour follows `output.use_color()`: `NO_COLOR` leaves the layout and drops the colour.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..core.durations import format_duration
from ..core.records import CheckpointRecord
from . import output, views

_STATUS_STYLE = {"valid": "green", "incomplete": "yellow", "corrupt": "bold red"}
_MARK_STYLE = {"latest": "bold cyan", "best": "bold green"}
_DECISION_STYLE = {"keep": "green", "delete": "red", "skip": "dim"}


def console(stderr: bool = False) -> Console:
    # rich decides on its own whether the stream is a terminal; NO_COLOR (no-color.org) is
    # passed on explicitly so that it holds whatever rich's version does with the variable.
    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def _age(now: float, saved_at: float | None) -> str:
    return "-" if saved_at is None else format_duration(max(0.0, now - saved_at))


def _step(record: CheckpointRecord) -> str:
    return "-" if record.step is None else str(record.step)


def _markers(names: Sequence[str]) -> Text:
    text = Text()
    for index, mark in enumerate(names):
        if index:
            text.append(" ")
        text.append(mark, style=_MARK_STYLE.get(mark, ""))
    return text


def _footer(summary: views.ListSummary) -> Text:
    """Two short lines: what the run holds, then the checkpoints that matter (each line is
    short enough that a terminal wraps it between phrases, not inside one)."""
    parts = views.summary_parts(summary)
    totals = [part for part in parts if ": " not in part]
    pointers = [part for part in parts if ": " in part]
    text = Text(", ".join(totals))
    for index, part in enumerate(pointers):
        text.append("\n" if index == 0 else "   ")
        label, _, rest = part.partition(": ")
        text.append(label + ": ", style="dim")
        text.append(rest, style=_MARK_STYLE.get("latest" if label == "resume" else label, ""))
    return text


#: `list`'s columns: (header, justify); the order in which a narrow terminal drops them is
#: `_DROP_ORDER` (what a glance needs most, step, losses, size and markers, goes last).
_LIST_COLUMNS = (
    ("step", "right"),
    ("epoch", "right"),
    ("loss", "right"),
    ("best loss", "right"),
    ("size", "right"),
    ("age", "right"),
    ("status", "left"),
    ("layout", "left"),
    ("", "left"),
)
_DROP_ORDER = ("layout", "epoch", "age", "status", "loss")


def _fitting_columns(cells: Sequence[Sequence[Text]], width: int, layouts: bool) -> list[int]:
    """Indexes of the columns to show so that the table's natural width fits `width` (the
    layout column only where some row is not ckpt's own)."""
    natural = [
        max([len(header)] + [cells[row][index].cell_len for row in range(len(cells))])
        for index, (header, _) in enumerate(_LIST_COLUMNS)
    ]
    kept = [i for i, (header, _) in enumerate(_LIST_COLUMNS) if layouts or header != "layout"]
    headers = [header for header, _ in _LIST_COLUMNS]
    for name in _DROP_ORDER:
        # each column takes its content, one space of padding either side and a border
        if sum(natural[i] + 3 for i in kept) + 1 <= width:
            break
        if headers.index(name) in kept:
            kept.remove(headers.index(name))
    return kept


def render_list(
    run_dir: str | Path,
    rows: Sequence[CheckpointRecord],
    summary: views.ListSummary,
    marks: dict[str, list[str]],
    note: str | None = None,
) -> None:
    """`ckpt list` on a terminal: the table of `rows`, a note on hidden rows, and the footer.

    The table fits the terminal: on a narrow one it leaves out the columns a glance needs
    least (epoch, then age, status, own loss) rather than cut numbers short.
    """
    out = console()
    if not summary.count:
        out.print(Text(f"{run_dir}: no checkpoints", style="dim"))
        return
    now = time.time()
    cells = []
    for r in rows:
        status = views.status_of(r)
        cells.append(
            [
                Text(_step(r)),
                Text(views.epoch_text(r)),
                Text(output.number(r.loss)),
                Text(output.number(r.best_loss)),
                Text(output.human_bytes(r.size)),
                Text(_age(now, r.saved_at)),
                Text(status, style=_STATUS_STYLE.get(status, "dim")),
                Text(r.layout or "-", style="dim" if r.layout is None else ""),
                _markers(marks.get(r.name, [])),
            ]
        )
    layouts = any(r.layout not in (None, "ckpt") for r in rows)
    kept = _fitting_columns(cells, out.width, layouts)
    table = Table(title=str(run_dir), title_justify="left", title_style="bold")
    for index in kept:
        name, justify = _LIST_COLUMNS[index]
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row in cells:
        table.add_row(*(row[index] for index in kept))
    out.print(table)
    for r in rows:
        if r.status == "corrupt" and r.error:
            out.print(Text(f"{r.display}: {r.error}", style="red"), overflow="fold")
    if note:
        out.print(Text(note, style="dim italic"))
    out.print(_footer(summary))


def render_loss_plot(
    run_dir: str | Path, series: views.LossSeries, summary: views.ListSummary
) -> None:
    """`ckpt list --plot` on a terminal: the loss chart in a panel as wide as the terminal."""
    out = console()
    chart = views.loss_chart(series, width=out.width - 4, colors=output.use_color())
    if chart is None:
        out.print(Text(f"{run_dir}: {views.no_chart_reason(series)}", style="dim"))
    else:
        title = f"loss by step: {run_dir}"
        out.print(Panel(Text.from_ansi(chart), title=title, title_align="left", expand=False))
    if summary.count:
        out.print(_footer(summary))


def _metadata_value(key: str, value: Any) -> RenderableType:
    if key == "optimizer_state":
        return _numbers_summary(value)
    if key == "manifest":
        if value is None:
            return Text("- (not recorded)", style="dim")
        if not value:
            return Text("(no payload files)", style="dim")
        grid = Table.grid(padding=(0, 2))
        for _ in range(3):
            grid.add_column()
        grid.columns[1].justify = "right"
        for entry in value:
            digest = entry.get("sha256")
            grid.add_row(
                entry["path"],
                output.human_bytes(entry["size"]),
                Text(f"sha256 {digest[:12]}…" if digest else "no hash", style="dim"),
            )
        return grid
    if key == "saved_at" and isinstance(value, str):
        from ..core.format import parse_timestamp

        try:
            ago = format_duration(max(0.0, time.time() - parse_timestamp(value)))
        except ValueError:
            return value
        return Text.assemble(value, (f"  ({ago} ago)", "dim"))
    if value is None:
        return Text("-", style="dim")
    return output.field_text(value)


def _numbers_summary(values: Sequence[float]) -> Text:
    """A large list of numbers in three short lines: never the whole list."""
    if not values:
        return Text("0 values (empty)", style="dim")
    low, high = min(values), max(values)
    mean = sum(values) / len(values)
    first = ", ".join(f"{v:.6g}" for v in values[:5])
    more = ", …" if len(values) > 5 else ""
    return Text.assemble(
        (f"{len(values):,} values", "bold"),
        f"\nmin {low:.6g}   max {high:.6g}   mean {mean:.6g}",
        (f"\nfirst [{first}{more}]", "dim"),
    )


def render_metadata(doc: dict[str, Any]) -> None:
    """`ckpt load` on a terminal: every field in a panel titled with the checkpoint's path;
    the optimizer state is summarised (length, min, max, mean, first values), never dumped."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in doc.items():
        if key != "path":
            table.add_row(key, _metadata_value(key, value))
    console().print(Panel(table, title=str(doc.get("path", "")), title_align="left"))


def render_prune(results: Sequence[Any], dry_run: bool) -> None:
    """`ckpt prune` on a terminal: a table per run directory with each decision and its
    reasons, then that run's totals."""
    out = console()
    now = time.time()
    for result in results:
        title = f"{result.run_dir}" + (" (dry run: nothing is deleted)" if dry_run else "")
        table = Table(title=title, title_justify="left", title_style="bold")
        for name, justify in (
            ("step", "right"),
            ("loss", "right"),
            ("best loss", "right"),
            ("age", "right"),
            ("size", "right"),
            ("decision", "left"),
            ("reasons", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for entry in result.plan.entries:
            r = entry.record
            table.add_row(
                _step(r),
                output.number(r.loss),
                output.number(r.best_loss),
                _age(now, r.saved_at),
                output.human_bytes(r.size),
                Text(entry.decision, style=_DECISION_STYLE[entry.decision]),
                ", ".join(entry.reasons),
            )
        out.print(table)
        totals = views.prune_totals(result)
        verb = "would delete" if dry_run else "deleted"
        freed = "would free" if dry_run else "freed"
        out.print(
            f"kept {totals['kept']}, {verb} {totals['deleted']}, "
            f"stale removed {totals['stale_removed']}, skipped {totals['skipped']}, "
            f"{freed} {output.human_bytes(totals['bytes_freed'])}"
        )


# ---- progress on stderr ----------------------------------------------------------------------


class _LazyProgress:
    """A transient rich progress display on stderr that appears with the first unit of work,
    so that a command with nothing to do draws nothing; warnings printed meanwhile go above it."""

    def __init__(self, description: str, total: int | None, columns: Sequence[Any]) -> None:
        from rich.progress import Progress

        self.progress = Progress(
            *columns,
            console=console(stderr=True),
            transient=True,
            redirect_stdout=False,  # data on stdout must never pass through the display
        )
        self.task = self.progress.add_task(description, total=total, freed="")
        self.started = False

    def advance(self, amount: int, **fields: Any) -> None:
        if not self.started:
            self.started = True
            self.progress.start()
        self.progress.update(self.task, advance=amount, **fields)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()


@contextmanager
def byte_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Progress of copying or hashing: yields the callback that takes the bytes just done."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), TimeRemainingColumn()]
    columns += [DownloadColumn(), TransferSpeedColumn()]
    display = _LazyProgress(description, total, columns)
    try:
        yield display.advance
    finally:
        display.stop()


@contextmanager
def deletion_progress(description: str) -> Iterator[Callable[[Any], None]]:
    """Progress of a prune: yields the callback that takes each plan entry just deleted."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:.0f} deleted, {task.fields[freed]} freed"),
        TimeElapsedColumn(),
    ]
    display = _LazyProgress(description, None, columns)
    freed = 0

    def advance(entry: Any) -> None:
        nonlocal freed
        freed += entry.record.size or 0
        display.advance(1, freed=output.human_bytes(freed))

    try:
        yield advance
    finally:
        display.stop()
