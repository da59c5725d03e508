"""The command line's shared parameters, declared once as `Annotated` aliases, and the parsing
of their values (durations, retention rules) into core types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..core.errors import UsageError
from ..core.format import FIELD_NAMES

if TYPE_CHECKING:  # the retention engine is imported by the commands that prune, not at start-up
    from ..core.retention import RetentionPolicy


def _complete_fields() -> list[str]:
    return list(FIELD_NAMES)


def _layout_name(value: str | None) -> str | None:
    from ..layouts import names

    if value is not None and value not in names():
        raise typer.BadParameter(f"no layout {value!r}; one of: {', '.join(names())}")
    return value


def _complete_layouts() -> list[str]:
    from ..layouts import names

    return names()


# A string, not a Path: pathlib would turn `s3://bucket/run` into `s3:/bucket/run`. The core
# tells URLs from local paths (`storage.location`).
RunDirArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN_DIR",
        help="The run directory holding checkpoint-<step>/ folders (or an s3:// URL).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
FieldOpt = Annotated[
    str | None,
    typer.Option(
        "--field",
        "-f",
        metavar="NAME",
        help=f"Print one field only ({', '.join(FIELD_NAMES)}, or an extra key).",
        autocompletion=_complete_fields,
    ),
]
LayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--layout",
        metavar="NAME",
        help="Read every checkpoint by this layout alone (ckpt, hf-trainer, deepspeed, megatron, "
        "accelerate, dcp, orbax, lightning); by default each is detected from what is inside.",
        callback=_layout_name,
        autocompletion=_complete_layouts,
    ),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        metavar="SECONDS",
        min=0,
        help="How long to wait for another save or prune on the run directory (exit 5 after).",
    ),
]
KeepLastOpt = Annotated[
    int | None, typer.Option("--keep-last", min=0, metavar="N", help="Keep the N highest steps.")
]
KeepBestOpt = Annotated[
    int | None,
    typer.Option(
        "--keep-best",
        min=0,
        metavar="N",
        help="Keep the N lowest losses (own loss, else best_loss).",
    ),
]
KeepEveryOpt = Annotated[
    int | None, typer.Option("--keep-every", min=1, metavar="S", help="Keep steps divisible by S.")
]
KeepWithinOpt = Annotated[
    str | None,
    typer.Option(
        "--keep-within", metavar="DUR", help="Keep what was saved within DUR (30m, 2h, 3d, 1w)."
    ),
]
KeepDailyOpt = Annotated[
    int | None,
    typer.Option(
        "--keep-daily", min=0, metavar="N", help="Keep the newest of each of the last N days."
    ),
]
KeepWeeklyOpt = Annotated[
    int | None,
    typer.Option(
        "--keep-weekly", min=0, metavar="N", help="Keep the newest of each of the last N weeks."
    ),
]
MinAgeOpt = Annotated[
    str | None,
    typer.Option("--min-age", metavar="DUR", help="Never delete anything younger than DUR."),
]
StaleAfterOpt = Annotated[
    str | None,
    typer.Option(
        "--stale-after",
        metavar="DUR",
        help="How old ckpt's own abandoned staging folders (and, with --delete-incomplete, "
        "incomplete or corrupt checkpoints) must be to be removed [default: 24h].",
    ),
]
DeleteIncompleteOpt = Annotated[
    bool,
    typer.Option(
        "--delete-incomplete",
        help="Also remove checkpoint folders that are incomplete or corrupt once older than "
        "--stale-after; without it they are kept (ckpt never deletes what it cannot read).",
    ),
]


def parse_duration_option(option: str, text: str | None) -> float | None:
    """A duration option's value in seconds; a usage error naming the option when malformed."""
    from ..core.durations import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def build_policy(
    keep_last: int | None = None,
    keep_best: int | None = None,
    keep_every: int | None = None,
    keep_within: str | None = None,
    keep_daily: int | None = None,
    keep_weekly: int | None = None,
    min_age: str | None = None,
    stale_after: str | None = None,
    delete_incomplete: bool = False,
) -> RetentionPolicy:
    """The retention policy the keep options describe (it may have no rule: callers decide)."""
    from ..core.retention import RetentionPolicy

    stale = parse_duration_option("--stale-after", stale_after)
    try:
        policy = RetentionPolicy(
            keep_last=keep_last,
            keep_best=keep_best,
            keep_every=keep_every,
            keep_within=parse_duration_option("--keep-within", keep_within),
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            min_age=parse_duration_option("--min-age", min_age),
            delete_incomplete=delete_incomplete,
        )
        if stale is not None:
            policy = RetentionPolicy(**{**policy.__dict__, "stale_after": stale})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return policy
