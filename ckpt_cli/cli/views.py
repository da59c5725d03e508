"""What the commands show, as plain data: JSON documents and plain-text lines, never rich.

Both the pipe output (stable, greppable text) and the JSON output of `list`, `load`/`latest`
and `prune` are built here from core results, so that the terminal renderer (`render.py`) and
the pipe agree on what they show: which rows `list --sort/--limit` picks, the footer's summary,
and the loss chart of `list --plot` (drawn by plotille as plain text; `render.py` frames it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.format import format_timestamp
from ..core.records import CheckpointRecord, checkpoint_name
from . import output

if TYPE_CHECKING:  # list and load do not need the deletion machinery
    from ..ops.prune import PruneResult


def age_text(now: float, saved_at: float | None) -> str:
    from ..core.durations import format_duration

    if saved_at is None:
        return "-"
    return format_duration(max(0.0, now - saved_at))


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else format_timestamp(seconds)


def status_of(record: CheckpointRecord) -> str:
    """valid / incomplete / corrupt for checkpoints; the kind (staging, symlink) otherwise."""
    return record.status if record.kind == "checkpoint" else record.kind


def markers_for(records: Sequence[CheckpointRecord]) -> dict[str, list[str]]:
    """Which record a resume would use (`latest`) and which has the lowest loss (`best`)."""
    valid = [r for r in records if r.is_valid_checkpoint]
    marks: dict[str, list[str]] = {}
    if not valid:
        return marks

    def newest_key(r: CheckpointRecord) -> tuple[int, bool]:
        step = r.step or 0
        return (step, r.name == checkpoint_name(step))

    def loss_key(r: CheckpointRecord) -> tuple[float, int]:
        value = r.loss if r.loss is not None else r.best_loss
        return (value if value is not None else float("inf"), r.step or 0)

    marks.setdefault(max(valid, key=newest_key).name, []).append("latest")
    marks.setdefault(min(valid, key=loss_key).name, []).append("best")
    return marks


def record_values(record: CheckpointRecord) -> dict[str, Any]:
    """A record's values under the format's keys: the one vocabulary of every JSON document
    (`list`, `prune` entries, `load`, `latest`, `verify` name the same things the same way)."""
    return {
        "path": str(record.path.parent / record.display),
        "name": record.display,
        "global_step": record.global_step,
        "save_index": record.save_index,
        "epoch": record.epoch,
        "epoch_exact": record.epoch_exact,
        "loss": record.loss,
        "best_loss": record.best_loss,
        "rng_state": record.rng_state,
        "saved_at": iso(record.saved_at),
        "size": record.size,
        "status": status_of(record),
        "layout": record.layout,
    }


def step_text(record: CheckpointRecord) -> str:
    """The step column: a save counter (Accelerate's `checkpoint_<i>`) says so, `#3`, with the
    training step read inside when there is one."""
    if record.save_index is not None:
        trained = "" if record.trained_step is None else f" (step {record.trained_step})"
        return f"#{record.save_index}{trained}"
    return "-" if record.step is None else str(record.step)


def epoch_text(record: CheckpointRecord) -> str:
    """The epoch as the framework wrote it (the Trainer's `2.5`), else the format's integer."""
    if record.epoch_exact is not None:
        return output.number(record.epoch_exact)
    return "-" if record.epoch is None else str(record.epoch)


def record_json(record: CheckpointRecord, markers: list[str]) -> dict[str, Any]:
    """One row of `list --json`."""
    return {**record_values(record), "markers": markers, "error": record.error}


#: How `list --sort` orders rows. Each order puts first the rows that matter most for its key,
#: except `step`, which reads oldest to newest like a log (the newest right above the prompt).
SORT_KEYS = ("step", "loss", "age", "size")
#: Rows `list` shows on a terminal unless --limit or --all says otherwise.
TERMINAL_ROWS = 20


def loss_of(record: CheckpointRecord) -> float | None:
    """The loss a person ranks a checkpoint by: its own where recorded, else its best_loss."""
    return record.loss if record.loss is not None else record.best_loss


def _last(value: float | None) -> tuple[bool, float]:
    """A sort key that puts unknown values (None) after every known one."""
    return (value is None, 0.0 if value is None else value)


def _by_step(record: CheckpointRecord) -> tuple[Any, ...]:
    return (record.step is None, record.step or 0, record.name)


# ties (and unknown values) fall back to step order
_SORTS: dict[str, Callable[[CheckpointRecord], tuple[Any, ...]]] = {
    "step": _by_step,
    "loss": lambda r: (*_last(loss_of(r)), *_by_step(r)),
    "age": lambda r: (*_last(None if r.saved_at is None else -r.saved_at), *_by_step(r)),
    "size": lambda r: (*_last(None if r.size is None else -r.size), *_by_step(r)),
}


def select_rows(
    records: Sequence[CheckpointRecord], sort: str = "step", limit: int | None = None
) -> list[CheckpointRecord]:
    """The rows `list` shows, in order: sorted by `sort`; with `limit`, the N that matter most.

    `step` sorts ascending and a limit keeps the N highest steps (the newest); `loss` sorts the
    lowest first, `age` the youngest first, `size` the largest first, and a limit keeps the
    first N. Entries without the value (an incomplete folder has no loss) go last.
    """
    rows = sorted(records, key=_SORTS[sort])
    if limit is None or limit >= len(rows):
        return rows
    return rows[-limit:] if sort == "step" else rows[:limit]


def hidden_rows_note(shown: int, total: int, sort: str) -> str | None:
    """What a terminal says when `list` leaves rows out, and how to see them."""
    if shown >= total:
        return None
    which = {
        "step": "the newest",
        "loss": "the lowest losses",
        "age": "the youngest",
        "size": "the largest",
    }[sort]
    return f"showing {shown} of {total} ({which}): --all for every row, --limit N for N"


@dataclass(frozen=True)
class ListSummary:
    """The footer of `list`: how many entries of each status, their size, and the checkpoints
    that matter (`resume`: what `ckpt latest` returns; `best`: the lowest loss)."""

    count: int
    statuses: dict[str, int]
    size: int | None
    resume: CheckpointRecord | None
    best: CheckpointRecord | None


def summarize(records: Sequence[CheckpointRecord], marks: dict[str, list[str]]) -> ListSummary:
    statuses: dict[str, int] = {}
    for record in records:
        status = status_of(record)
        statuses[status] = statuses.get(status, 0) + 1
    sizes = [r.size for r in records if r.size is not None]
    by_mark = {mark: r for r in records for mark in marks.get(r.name, [])}
    return ListSummary(
        count=len(records),
        statuses=statuses,
        size=sum(sizes) if sizes else None,
        resume=by_mark.get("latest"),
        best=by_mark.get("best"),
    )


def summary_parts(summary: ListSummary) -> list[str]:
    """The footer as short phrases: `12 entries (11 valid, 1 incomplete)`, `1.4 MB on disk`,
    `resume: checkpoint-3000`, `best: checkpoint-2750 (loss 0.57)`."""
    noun = "entry" if summary.count == 1 else "entries"
    counts = ", ".join(f"{n} {status}" for status, n in summary.statuses.items())
    parts = [f"{summary.count} {noun}" + (f" ({counts})" if counts else "")]
    if summary.size is not None:
        parts.append(f"{output.human_bytes(summary.size)} on disk")
    resume = summary.resume
    parts.append(f"resume: {resume.display}" if resume else "resume: none (no valid checkpoint)")
    if summary.best is not None:
        parts.append(f"best: {summary.best.display} (loss {output.number(loss_of(summary.best))})")
    return parts


@dataclass(frozen=True)
class LossSeries:
    """What `list --plot` draws: best_loss and (where recorded) own loss against step."""

    steps: list[int]
    best: list[float]
    own_steps: list[int]
    own: list[float]


def loss_series(records: Sequence[CheckpointRecord], limit: int | None = None) -> LossSeries:
    """The valid checkpoints' losses by step (with `limit`, the N newest)."""
    valid = sorted(
        (
            r
            for r in records
            if r.is_valid_checkpoint and r.step is not None and r.best_loss is not None
        ),
        key=lambda r: r.step or 0,
    )
    if limit is not None:
        valid = valid[-limit:]
    steps = [r.step or 0 for r in valid]
    best = [r.best_loss for r in valid if r.best_loss is not None]
    own = [(r.step or 0, r.loss) for r in valid if r.loss is not None]
    return LossSeries(steps, best, [s for s, _ in own], [v for _, v in own])


#: Characters plotille's axes take around the plot area: the y labels (10) and " | " on the
#: left, " -> (step)" on the right of the x axis.
_CHART_MARGIN = 13 + 10


def loss_chart(
    series: LossSeries, width: int, height: int = 14, colors: bool = False
) -> str | None:
    """The loss picture as text (braille, by plotille), `width` columns wide at most; None
    when there is nothing to draw a curve through (fewer than two steps)."""
    import plotille

    if len(set(series.steps)) < 2:
        return None
    values = series.best + series.own
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or abs(high) * 0.1 or 1.0
    figure = plotille.Figure()
    figure.width = max(20, width - _CHART_MARGIN)
    figure.height = max(5, height)
    figure.with_colors = colors
    figure.x_label = "step"
    figure.y_label = "loss"
    figure.set_x_limits(min_=min(series.steps), max_=max(series.steps))
    figure.set_y_limits(min_=low - pad, max_=high + pad)
    figure.x_ticks_fkt = lambda value, _next: f"{value:.0f}"
    figure.y_ticks_fkt = lambda value, _next: f"{value:.4g}"
    figure.origin = False
    figure.plot(series.steps, series.best, lc="green", label="best loss")
    if series.own:
        # A marker tells the two apart without colour; where points crowd (more of them than
        # columns) it would hide the best-loss line, so braille dots draw the cloud instead.
        marker = "•" if len(series.own) * 2 <= figure.width else None
        figure.scatter(series.own_steps, series.own, lc="cyan", label="loss", marker=marker)
    return str(figure.show(legend=True))


def chart_lines(series: LossSeries, width: int) -> list[str]:
    """`list --plot` in a pipe: the chart without colour (or why there is none)."""
    chart = loss_chart(series, width, colors=False)
    if chart is None:
        return [no_chart_reason(series)]
    return [line.rstrip() for line in chart.splitlines()]


def no_chart_reason(series: LossSeries) -> str:
    count = len(series.steps)
    return (
        f"nothing to plot: {count} valid checkpoint{'s' if count != 1 else ''} "
        "(a curve needs two steps or more)"
    )


LIST_HEADER = [
    "step",
    "epoch",
    "loss",
    "best_loss",
    "size",
    "age",
    "status",
    "markers",
    "name",
    "layout",
]


def list_lines(records: Sequence[CheckpointRecord], marks: dict[str, list[str]]) -> list[str]:
    """`ckpt list` in a pipe: a header and one space-aligned row per entry, no box drawing."""
    if not records:
        return []
    now = time.time()
    rows = [LIST_HEADER]
    for r in records:
        rows.append(
            [
                step_text(r),
                epoch_text(r),
                output.number(r.loss),
                output.number(r.best_loss),
                output.human_bytes(r.size).replace(" ", ""),
                # one word per column, so that `split()` and `awk` see ten fields
                age_text(now, r.saved_at).replace(" ", ""),
                status_of(r),
                ",".join(marks.get(r.name, [])) or "-",
                r.display,
                r.layout or "-",
            ]
        )
    return output.columns(rows)


def metadata_lines(doc: dict[str, Any]) -> list[str]:
    """`ckpt load` in a pipe: `key  value` lines; the optimizer state summarised, not dumped."""
    rows = []
    for key, value in doc.items():
        if key == "optimizer_state":
            text = output.summarize_numbers(value)
        elif key == "manifest":
            text = "-" if value is None else manifest_summary(value)
        elif value is None:
            text = "-"
        else:
            text = output.field_text(value)
        rows.append([key, text])
    return output.columns(rows)


def manifest_summary(manifest: list[dict[str, Any]]) -> str:
    count = len(manifest)
    size = output.human_bytes(sum(entry["size"] for entry in manifest))
    return f"{count} file{'s' if count != 1 else ''}, {size}"


def prune_totals(result: PruneResult) -> dict[str, int]:
    return {
        "kept": len(result.plan.kept),
        "deleted": sum(1 for e in result.deleted if not e.is_stale),
        "stale_removed": sum(1 for e in result.deleted if e.is_stale),
        "skipped": len(result.plan.skipped),
        "failed": len(result.failed),
        "bytes_freed": result.bytes_freed,
    }


def prune_json(
    results: Sequence[PruneResult], errors: Sequence[Any], dry_run: bool
) -> dict[str, Any]:
    """The whole plan and its result: every entry's path, step, decision and reasons, totals."""
    runs: list[dict[str, Any]] = []
    for result in results:
        deleted = {e.record.path for e in result.deleted}
        entries = []
        for entry in result.plan.entries:
            record = entry.record
            item: dict[str, Any] = {
                **record_values(record),
                "kind": record.kind,
                "decision": entry.decision,
                "reasons": list(entry.reasons),
            }
            if entry.decision == "delete":
                item["deleted"] = (not dry_run) and record.path in deleted
            entries.append(item)
        runs.append(
            {"run_dir": str(result.run_dir), "entries": entries, "totals": prune_totals(result)}
        )
    keys = ("kept", "deleted", "stale_removed", "skipped", "failed", "bytes_freed")
    return {
        "dry_run": dry_run,
        "runs": runs,
        "totals": {key: sum(run["totals"][key] for run in runs) for key in keys},
        "errors": [{"error": str(exc), "exit_code": exc.exit_code} for exc in errors],
    }


def prune_lines(results: Sequence[PruneResult], dry_run: bool) -> list[str]:
    """Plain lines a log file can keep: one per deleted folder, one per folder kept because
    ckpt cannot read it (with how to reclaim it) or because a framework's state names it (the
    Trainer's best), then a summary per run."""
    verb = "would delete" if dry_run else "deleted"
    lines = []
    for result in results:
        for entry in result.plan.kept:
            # what only a framework's state or ckpt's caution keeps: said, so a log shows why
            if not entry.record.is_valid_checkpoint or entry.record.pinned:
                lines.append(f"kept {entry.record.path} ({', '.join(entry.reasons)})")
        for entry in result.deleted:
            what = "stale" if entry.is_stale else "checkpoint"
            lines.append(
                f"{verb} {what} {entry.record.path} ({', '.join(entry.reasons)}; "
                f"{output.human_bytes(entry.record.size)})"
            )
        totals = prune_totals(result)
        freed = "would free" if dry_run else "freed"
        lines.append(
            f"{result.run_dir}: kept {totals['kept']}, {verb} {totals['deleted']}, "
            f"stale removed {totals['stale_removed']}, skipped {totals['skipped']}, "
            f"{freed} {output.human_bytes(totals['bytes_freed'])}"
        )
    return lines
