"""How each layout names its checkpoints, as plain data: what a listing can tell by names alone.

Every operation starts from one listing of a run directory, and most of what it decides first
is decided by names: which entries may be checkpoints (and of which layouts), which step each
stands for, which are a framework's temporary folders, and which are pointer files. This table
answers that without importing any layout module (`layouts/__init__.py` maps each layout to
its module), and without any I/O, so the storage backends can use it too (finding run
directories below a root).

A name is *named as a checkpoint* (`checkpoint-<N>`, `checkpoint_<N>`, `global_step<N>`,
`step-<N>`, `iter_<N>`, `*.ckpt`) when its name alone says so: unclaimed by every layout, such
an entry is incomplete, never guessed at, and kept. A name that only *looks like* a step (a
bare `123`, Orbax's `<prefix>_<N>`) is a checkpoint only when a layout finds its signature
inside; otherwise it is nobody's, never listed as a checkpoint and never deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, NamedTuple

from .records import CHECKPOINT_RE, STAGING_RE, TRASH_RE

EntryShape = Literal["dir", "file"]


class Naming(NamedTuple):
    """One way a layout names its checkpoints (a NamedTuple: `ckpt latest` imports this
    table, and a frozen dataclass with slots costs it about 2 ms more to build)."""

    #: the layout whose naming this is
    layout: str
    #: the regex matched whole against an entry name; group 1, when there is one, is the step
    source: str
    #: a folder or a file (Lightning's checkpoints are files)
    shape: EntryShape = "dir"
    #: the name alone says "checkpoint" (else only a signature inside makes it one)
    named: bool = True
    #: the number is a save counter, not a training step (Accelerate's `checkpoint_<i>`)
    counter: bool = False
    #: a literal that every matching name starts with, before the step (the fast ordering
    #: of `latest`: the name is that prefix and the step's digits)
    prefix: str | None = None
    #: a literal that every matching name ends with (file namings: `.ckpt`)
    suffix: str | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex, compiled on first use (`re` keeps it): `ckpt latest` on a run
        of one layout needs few of them, and compiling them all costs its start-up."""
        return re.compile(self.source)


def _naming(
    layout: str,
    pattern: str,
    *,
    shape: EntryShape = "dir",
    named: bool = True,
    counter: bool = False,
    prefix: str | None = None,
    suffix: str | None = None,
) -> Naming:
    return Naming(layout, pattern, shape, named, counter, prefix, suffix)


STEP = r"([0-9]+)"

#: In the order folders are offered to layouts: ckpt's own first (a sealed folder is read by
#: its marker), then the Trainer, then the frameworks whose names are their own.
NAMINGS: tuple[Naming, ...] = (
    Naming("ckpt", CHECKPOINT_RE.pattern, prefix="checkpoint-"),
    Naming("hf-trainer", CHECKPOINT_RE.pattern, prefix="checkpoint-"),
    _naming("deepspeed", r"global_step" + STEP, prefix="global_step"),
    _naming("megatron", r"iter_" + STEP, prefix="iter_"),
    _naming("accelerate", r"checkpoint_" + STEP, counter=True, prefix="checkpoint_"),
    # diffusers' training scripts call save_state with `checkpoint-<global_step>`
    Naming("accelerate", CHECKPOINT_RE.pattern, prefix="checkpoint-"),
    _naming("dcp", r"step-" + STEP, prefix="step-"),
    Naming("dcp", CHECKPOINT_RE.pattern, prefix="checkpoint-"),
    _naming("orbax", STEP, named=False, prefix=""),
    _naming("orbax", r"[A-Za-z][A-Za-z0-9]*_" + STEP, named=False),
    _naming(
        "lightning",
        r"(?:.*[-_])?step=" + STEP + r"(?:[-_].*)?\.ckpt",
        shape="file",
        suffix=".ckpt",
    ),
    _naming("lightning", r".*\.ckpt", shape="file", suffix=".ckpt"),
)

#: the temporary folders that frameworks leave (never complete; removed once stale); group 1
#: is the step
TEMPORARY: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hf-trainer", re.compile(r"tmp-checkpoint-" + STEP)),
    # `<step>.orbax-checkpoint-tmp` now, `...-tmp-<timestamp>` in older releases
    (
        "orbax",
        re.compile(r"(?:[A-Za-z][A-Za-z0-9]*_)?" + STEP + r"\.orbax-checkpoint-tmp(?:-[0-9]+)?"),
    ),
)

#: files in a run directory that a framework writes to name one of its checkpoints (a hint,
#: never trusted on its own), by layout
POINTERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("deepspeed", re.compile(r"latest")),
    ("megatron", re.compile(r"latest_checkpointed_iteration\.txt")),
    ("lightning", re.compile(r"last(?:-v[0-9]+)?\.ckpt")),
)

#: the pointer files that have one fixed name
POINTER_NAMES = frozenset(("latest", "latest_checkpointed_iteration.txt"))


def may_be_pointer(name: str) -> bool:
    """A cheap gate of `POINTERS` for every name of a listing: a fixed name, or Lightning's
    `last*.ckpt`."""
    return name in POINTER_NAMES or (name.endswith(".ckpt") and name.startswith("last"))


#: the files whose writing completes a folder, by layout (what `latest` compares the times of
#: to see a run restarted from a lower step)
MARKERS = ("metadata.json", "trainer_state.json", ".metadata", "_CHECKPOINT_METADATA")

#: layouts whose framework counts every entry of the run directory (Accelerate's rotation
#: sorts them all by their last number and fails on a name without one): ckpt leaves nothing
#: of its own there, its lock goes beside the folder
COUNTS_EVERY_ENTRY = ("accelerate",)


def namings_of(name: str, shape: EntryShape) -> list[Naming]:
    """The namings an entry of that name and shape matches, in the order of `NAMINGS`.

    A scan asks this of every entry: a `checkpoint-<N>` folder (most runs hold only those)
    matches exactly the namings of that pattern, found with one regex instead of each."""
    if shape == "dir" and CHECKPOINT_RE.fullmatch(name):
        return list(_CHECKPOINT_FOLDER)
    return [n for n in NAMINGS if n.shape == shape and n.pattern.fullmatch(name)]


def step_in(name: str, naming: Naming) -> int | None:
    """The step (or counter) `name` says under `naming`; None when that naming has none."""
    match = naming.pattern.fullmatch(name)
    if match is None or not match.groups():
        return None
    return int(match.group(1))


def first_step(name: str, namings: Iterable[Naming]) -> int | None:
    """The step `name` says in the first of `namings` that gives one."""
    return next((s for n in namings if (s := step_in(name, n)) is not None), None)


def step_for(layout: str, name: str) -> int | None:
    """The step `name` says in one of `layout`'s namings (the folder a user named)."""
    return first_step(name, (n for n in NAMINGS if n.layout == layout))


def named_step(name: str) -> int | None:
    """The step a name says in a naming that says "checkpoint" (a symlink's, an unread
    entry's), whatever the layout."""
    return first_step(name, (n for n in NAMINGS if n.named))


def any_step(name: str) -> int | None:
    """The step a name says in any naming, folder or file."""
    return first_step(name, NAMINGS)


def named_as_checkpoint(name: str, shape: EntryShape | None = None) -> bool:
    """Whether the name alone says "checkpoint" (of any layout, for that shape or either)."""
    return any(
        n.named and (shape is None or n.shape == shape) and n.pattern.fullmatch(name)
        for n in NAMINGS
    )


def temporary_step(name: str) -> int | None:
    """The step of a framework's temporary folder name (`tmp-checkpoint-40`), else None."""
    for _, pattern in TEMPORARY:
        match = pattern.fullmatch(name)
        if match:
            return int(match.group(1))
    return None


def counts_every_entry(names: list[str]) -> bool:
    """Whether a framework that counts every entry of the run directory writes there."""
    return any(re.fullmatch(source, name) for name in names for source in _COUNTING)


#: every folder naming whose pattern is the `checkpoint-<N>` one; no other folder naming can
#: match such a name (none starts so or is a bare number), which a test checks
_CHECKPOINT_FOLDER = tuple(
    n for n in NAMINGS if n.shape == "dir" and n.source == CHECKPOINT_RE.pattern
)
_COUNTING = tuple(n.source for n in NAMINGS if n.layout in COUNTS_EVERY_ENTRY and n.counter)


def could_be_deleted(name: str) -> bool:
    """Whether a prune could ever delete an entry of that name: one some naming matches, a
    framework's temporary folder, or ckpt's own staging or trash."""
    return (
        any(n.pattern.fullmatch(name) for n in NAMINGS)
        or temporary_step(name) is not None
        or STAGING_RE.fullmatch(name) is not None
        or TRASH_RE.fullmatch(name) is not None
    )
