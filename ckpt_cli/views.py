"""What the commands show, as plain data: JSON documents and plain-text lines, never rich.

Both the pipe output (stable, greppable text) and the JSON output of `list`, `load`/`latest`
and `prune` are built here from core results, so that the terminal renderer (`render.py`) and
the pipe agree on what they show.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from . import output
from .format import format_timestamp
from .pruning import PruneResult
from .records import CheckpointRecord, checkpoint_name


def age_text(now: float, saved_at: float | None) -> str:
    from .durations import format_duration

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


def record_json(record: CheckpointRecord, markers: list[str]) -> dict[str, Any]:
    return {
        "path": str(record.path.parent / record.display),
        "name": record.display,
        "step": record.step,
        "epoch": record.epoch,
        "loss": record.loss,
        "best_loss": record.best_loss,
        "saved_at": iso(record.saved_at),
        "size": record.size,
        "status": status_of(record),
        "markers": markers,
        "error": record.error,
    }


LIST_HEADER = ["step", "epoch", "loss", "best_loss", "size", "age", "status", "markers", "name"]


def list_lines(records: Sequence[CheckpointRecord], marks: dict[str, list[str]]) -> list[str]:
    """`ckpt list` in a pipe: a header and one space-aligned row per entry, no box drawing."""
    if not records:
        return []
    now = time.time()
    rows = [LIST_HEADER]
    for r in records:
        rows.append(
            [
                "-" if r.step is None else str(r.step),
                "-" if r.epoch is None else str(r.epoch),
                output.number(r.loss),
                output.number(r.best_loss),
                output.human_bytes(r.size).replace(" ", ""),
                age_text(now, r.saved_at),
                status_of(r),
                ",".join(marks.get(r.name, [])) or "-",
                r.display,
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
                "path": str(record.path.parent / record.display),
                "name": record.display,
                "step": record.step,
                "kind": record.kind,
                "status": record.status,
                "decision": entry.decision,
                "reasons": list(entry.reasons),
                "loss": record.loss,
                "best_loss": record.best_loss,
                "saved_at": iso(record.saved_at),
                "size": record.size,
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
    """Plain lines a log file can keep: one per deleted folder, then a summary per run."""
    verb = "would delete" if dry_run else "deleted"
    lines = []
    for result in results:
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
