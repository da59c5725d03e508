"""Rich rendering for a terminal: tables, panels and progress. Imported only when stdout is one.

Plain text and JSON for pipes live in `output.py`; nothing here runs in a job script's
`$(ckpt latest ...)`. Colour follows `output.use_color()` (NO_COLOR honoured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import output
from .durations import format_duration
from .records import CheckpointRecord

_STATUS_STYLE = {"valid": "green", "incomplete": "yellow", "corrupt": "bold red"}


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, no_color=not output.use_color(), highlight=False)


def _age(now: float, saved_at: float | None) -> str:
    return "-" if saved_at is None else format_duration(max(0.0, now - saved_at))


def render_list(
    run_dir: Path, records: Sequence[CheckpointRecord], marks: dict[str, list[str]]
) -> None:
    out = console()
    if not records:
        out.print(f"[dim]{run_dir}: no checkpoints[/]")
        return
    now = time.time()
    table = Table(title=str(run_dir), title_justify="left")
    for name, justify in (
        ("step", "right"),
        ("epoch", "right"),
        ("loss", "right"),
        ("best loss", "right"),
        ("size", "right"),
        ("age", "right"),
        ("status", "left"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in records:
        status = r.status if r.kind == "checkpoint" else r.kind
        style = _STATUS_STYLE.get(status, "dim")
        table.add_row(
            "-" if r.step is None else str(r.step),
            "-" if r.epoch is None else str(r.epoch),
            output.number(r.loss),
            output.number(r.best_loss),
            output.human_bytes(r.size),
            _age(now, r.saved_at),
            f"[{style}]{status}[/]",
            " ".join(marks.get(r.name, [])),
        )
    out.print(table)


def render_metadata(doc: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in doc.items():
        if key == "path":
            continue
        if key == "optimizer_state":
            text = output.summarize_numbers(value)
        elif key == "manifest":
            text = (
                "-"
                if value is None
                else "\n".join(f"{e['path']}  {output.human_bytes(e['size'])}" for e in value)
                or "(no payload files)"
            )
        else:
            text = "-" if value is None else output.field_text(value)
        table.add_row(key, text)
    console().print(Panel(table, title=str(doc.get("path", "")), title_align="left"))


def render_prune(results: Sequence[Any], dry_run: bool) -> None:
    out = console()
    for result in results:
        table = Table(
            title=f"{result.run_dir}" + (" (dry run)" if dry_run else ""), title_justify="left"
        )
        for name in ("step", "loss", "best loss", "age", "size", "decision", "reasons"):
            table.add_column(name)
        now = time.time()
        for entry in result.plan.entries:
            r = entry.record
            style = {"keep": "green", "delete": "red", "skip": "dim"}[entry.decision]
            table.add_row(
                "-" if r.step is None else str(r.step),
                output.number(r.loss),
                output.number(r.best_loss),
                _age(now, r.saved_at),
                output.human_bytes(r.size),
                f"[{style}]{entry.decision}[/]",
                ", ".join(entry.reasons),
            )
        out.print(table)
        verb = "would free" if dry_run else "freed"
        kept = sum(1 for e in result.plan.entries if e.decision == "keep")
        out.print(
            f"kept {kept}, {'would delete' if dry_run else 'deleted'} {len(result.deleted)}, "
            f"{verb} {output.human_bytes(result.bytes_freed)}"
        )


def byte_progress(description: str) -> Callable[[int], None]:
    """A transient progress line on stderr; returns the callback that advances it."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress(
        *Progress.get_default_columns(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console(stderr=True),
        transient=True,
    )
    progress.start()
    task = progress.add_task(description, total=None)

    def advance(count: int) -> None:
        progress.update(task, advance=count)

    import atexit

    atexit.register(progress.stop)
    return advance
