"""Finding the latest checkpoint: one listing, names ordered by step, the top one validated.

`latest` must not read every marker: it orders the folder names by the step they say
(numerically: 9000 < 10000), then validates from the top down and skips, with a warning, what
is incomplete or corrupt. The order is found without parsing every name: at 100,000 folders
that is most of the cost of a `ckpt latest` in a job script.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import layouts
from ..core.errors import (
    CkptFileSystemError,
    InvalidCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
    NotFoundError,
)
from ..core.format import Metadata
from ..core.namings import MARKERS, POINTER_NAMES, named_as_checkpoint
from ..core.ordering import Ordering, order
from ..core.paths import Location, Target
from ..core.records import MAX_U64, display_name
from ..storage import backend_for

if TYPE_CHECKING:
    from ..storage.base import Backend

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


#: how many times find_latest lists the run directory again when a folder it listed is gone
_RELISTS = 10


class _Vanished(Exception):
    """A folder of the listing was deleted (by a concurrent prune) before it could be read."""


def find_latest(
    target: Target, warn: Warn = _ignore, layout: str | None = None
) -> tuple[Location, Metadata]:
    """The valid checkpoint with the highest step, and its metadata.

    Orders by the step in the folder name and validates from the top down, so the cost is one
    listing plus a metadata read per skipped folder. Raises NotFoundError when none is valid.
    `layout` reads every candidate by that layout alone.
    """
    backend, run = backend_for(target)
    return latest_and_names(backend, run, warn, layout)[0]


def latest_and_names(
    backend: Backend, run: Location, warn: Warn = _ignore, layout: str | None = None
) -> tuple[tuple[Location, Metadata], list[str]]:
    """`find_latest` on a backend already chosen, and the names of the listing it found it
    in (what a save needs to know is there, without listing again).

    A folder that vanishes between the listing and its read was deleted by a prune that ran
    meanwhile, which may have followed a save of a higher step: where the listing is exact
    (a local directory) it is taken again, rather than skip down, possibly to "nothing found"
    while checkpoints exist. An object store may list a prefix just emptied: skipped.
    """
    for attempt in range(_RELISTS + 1):
        warnings: list[str] = []
        relist = backend.exact_listing and attempt < _RELISTS
        names = backend.names(run)
        try:
            found = _latest(backend, run, names, warnings.append, relist, layout)
        except _Vanished:
            continue  # what a stale listing warned about does not matter
        except NotFoundError:
            for message in warnings:
                warn(message)
            raise
        for message in warnings:
            warn(message)
        return found, names
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt never relists


def _latest(
    backend: Backend,
    run: Location,
    names: list[str],
    warn: Warn,
    relist: bool,
    layout: str | None,
) -> tuple[Location, Metadata]:
    ordering = order(names)
    # names that say no step (Lightning's `last.ckpt` copy) are read first: their step is inside
    stepless = []
    for name in ordering.stepless:
        meta = _validated(backend, run, name, None, warn, relist, layout, quiet_links=True)
        if meta is not None:
            stepless.append((meta.global_step, name, meta))
    top_stepless = max(stepless, default=None, key=lambda item: item[0])
    for step, name in ordering.descending():
        if top_stepless is not None and top_stepless[0] > step:
            break
        meta = _validated(backend, run, name, step, warn, relist, layout)
        if meta is not None:
            return _found(backend, run, ordering, run / name, step, meta, warn)
    if top_stepless is not None:
        step, name, meta = top_stepless
        return _found(backend, run, ordering, run / name, step, meta, warn)
    raise NotFoundError(f"{run}: no valid checkpoint")


def _validated(
    backend: Backend,
    run: Location,
    name: str,
    step: int | None,
    warn: Warn,
    relist: bool,
    layout: str | None,
    quiet_links: bool = False,
) -> Metadata | None:
    """The metadata of one candidate, validated whole; None (with a warning) when it is no
    valid checkpoint."""
    folder = run / name
    shown = display_name(name)
    if step is not None and step > MAX_U64:
        warn(f"skipping {run / shown}: step number past 2^64-1")
        return None
    if backend.links and backend.state(folder) == "link":
        if not quiet_links:  # a pointer (`last.ckpt` -> ...) is resolved as one, below
            warn(f"skipping {run / shown}: a symlink (ckpt does not follow links)")
        return None
    try:
        meta = layouts.load(backend, folder, layout)
    except NoCheckpointFolderError:
        if relist:
            raise _Vanished from None
        if backend.exact_listing:  # an emptied prefix that some stores still list: nothing
            warn(f"skipping {folder}: no such checkpoint folder")
        return None
    except NoSignatureError as exc:
        # a bare number (Orbax's naming) without a signature is nobody's: no warning
        if layout is not None or named_as_checkpoint(name):
            warn(f"skipping {exc}")
        return None
    except (InvalidCheckpointError, CkptFileSystemError) as exc:
        if relist and backend.state(folder) == "missing":
            raise _Vanished from None
        warn(f"skipping {exc}")
        return None
    return meta


def _found(
    backend: Backend,
    run: Location,
    ordering: Ordering,
    folder: Location,
    step: int,
    meta: Metadata,
    warn: Warn,
) -> tuple[Location, Metadata]:
    """The latest, with its warnings: a step that disagrees with its name, a run restarted
    from a lower step, a framework's pointer that names another checkpoint."""
    counter = meta.extra.get("save_index") is not None
    if not counter and meta.global_step != step:
        warn(f"{folder}: folder name says step {step} but metadata says {meta.global_step}")
    note = meta.extra.get("note")
    if isinstance(note, str):
        warn(f"{folder}: {note}")
    newer = backend.saved_later(run, folder, ordering.below(step), MARKERS)
    if newer is not None:
        warn(
            f"{newer} was saved after {folder.name}, which has a higher step: "
            f"{folder.name} may be left over from an earlier run"
        )
    candidates = [n for n in POINTER_NAMES if n in ordering] + ordering.stepless
    for pointer in layouts.pointers(backend, run, ordering, candidates):
        if pointer.problem is not None:
            warn(pointer.problem)
        elif pointer.target is not None and pointer.target != folder.name:
            warn(
                f"{run / pointer.source} ({pointer.label}) names {pointer.target}, "
                f"not {folder.name}, the highest complete checkpoint: returning {folder.name}"
            )
    return folder, meta
