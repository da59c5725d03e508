"""Saving: `ckpt save` and `Checkpoint.save`, written once over any storage backend.

Under the run lock: the latest checkpoint fills in what the request leaves out (epoch,
best_loss), the backend commits by its own protocol (`Backend.commit`: staging and rename on a
local disk, payload first and marker last on an object store), then the keep rules prune,
after the commit and never before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.errors import (
    CkptFileSystemError,
    IncompleteCheckpointError,
    InvalidCheckpointError,
    NoRunDirError,
    NotFoundError,
    UsageError,
)
from ..core.format import Metadata, check_metadata
from ..core.manifest import check_recordable_name
from ..core.paths import Location, Target
from ..core.records import (
    DEFAULT_LOCK_TIMEOUT,
    METADATA_NAME,
    STAGING_RE,
    TRASH_RE,
    checkpoint_name,
)
from ..core.retention import RetentionPolicy
from ..storage import backend_for
from ..storage.base import Backend, ByteProgress
from ..storage.listing import Payload
from .latest import latest_and_names
from .locks import run_lock
from .prune import PruneResult, prune_locked


def _no_progress(_: int) -> None:
    return None


def check_payloads(payloads: Sequence[Path], run_dir: Path | None = None) -> list[Payload]:
    """The payloads with the names they take in the checkpoint; refuses what cannot go in.
    `run_dir` is the local run directory, which no payload may hold (None for a URL)."""
    placed: dict[str, Path] = {}
    for source in payloads:
        name = source.name
        if not name or name in (".", ".."):
            raise UsageError(f"{source}: not a file name that can go into a checkpoint")
        if name == METADATA_NAME or STAGING_RE.fullmatch(name) or TRASH_RE.fullmatch(name):
            raise UsageError(f"{source}: the name {name!r} is reserved by ckpt")
        if not source.exists():
            raise CkptFileSystemError(f"{source}: no such payload file")
        check_recordable_name(source, name)
        if not (source.is_file() or source.is_dir()):
            raise UsageError(f"{source}: not a regular file or a folder")
        if run_dir is not None and _holds(source, run_dir):
            raise UsageError(
                f"{source}: holds the run directory, and a checkpoint cannot contain itself"
            )
        if name in placed:
            raise UsageError(f"{source}: two payloads are both named {name!r}")
        placed[name] = source
    return [Payload(source, name) for name, source in placed.items()]


def _holds(source: Path, run_dir: Path) -> bool:
    """Whether the run directory is `source` or lies below it (copying it would recurse)."""
    resolved, target = source.resolve(), run_dir.resolve()
    return resolved == target or resolved in target.parents


@dataclass
class SaveRequest:
    """What `ckpt save` was asked to record; unset values come from the latest checkpoint."""

    step: int
    epoch: int | None = None
    loss: float | None = None
    best_loss: float | None = None
    rng_state: int | None = None
    optimizer_state: list[float] = field(default_factory=list)


@dataclass
class SaveResult:
    """What a save did: the checkpoint's folder, how ("saved", "sealed", "replaced"), the
    best_loss it recorded, and the prune that followed when keep rules were given."""

    path: Location
    outcome: str
    best_loss: float
    prune: PruneResult | None = None


def resolve_best_loss(
    run_dir: Location, loss: float | None, best: float | None, previous: Metadata | None
) -> float:
    """DESIGN.md's rule: --best-loss outright; --loss as a running minimum over the latest
    checkpoint's best_loss; neither: the latest's carried forward, or a usage error."""
    if best is not None:
        return best
    if loss is not None:
        return min(loss, previous.best_loss) if previous is not None else loss
    if previous is not None:
        return previous.best_loss
    raise UsageError(
        f"{run_dir}: no earlier checkpoint to take best_loss from; give --loss or --best-loss"
    )


def metadata_for(run_dir: Location, request: SaveRequest, previous: Metadata | None) -> Metadata:
    """The metadata a save records: the request, with the epoch taken from the latest
    checkpoint (else 0) when not given, and best_loss by `resolve_best_loss`."""
    epoch = request.epoch if request.epoch is not None else (previous.epoch if previous else 0)
    return Metadata(
        epoch=epoch,
        global_step=request.step,
        best_loss=resolve_best_loss(run_dir, request.loss, request.best_loss, previous),
        optimizer_state=request.optimizer_state,
        rng_state=request.rng_state,
        loss=request.loss,
    )


#: files that only the Trainer's checkpoint save writes, before trainer_state.json (last)
_TRAINER_FILES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth")


def framework_values(
    backend: Backend, folder: Location, request: SaveRequest, force: bool = False
) -> SaveRequest:
    """What a seal of a Hugging Face Trainer folder records when the command line does not
    say: epoch (the epochs completed), the own loss and the best loss, from trainer_state.json
    (`load` checks its step against the folder's). A torn or corrupt Trainer folder is not
    sealed, unless `force`: it is refused with what is wrong with it."""
    from ..core.errors import NoCheckpointFolderError, NoSignatureError
    from ..layouts import get

    try:
        state = get("hf-trainer").load(backend, folder)
    except NoCheckpointFolderError:
        return request  # no folder yet
    except NoSignatureError:
        files = backend.files(folder)
        started = [name for name in _TRAINER_FILES if name in files]
        if started and not force and "metadata.json" not in files:
            raise IncompleteCheckpointError(
                f"cannot seal {folder}: it holds the Trainer's {started[0]} but no "
                "trainer_state.json, which the Trainer writes last: its save did not finish "
                "(--force seals it all the same)"
            ) from None
        return request  # not a Trainer folder
    except InvalidCheckpointError as exc:
        if force:
            return request
        raise InvalidCheckpointError(
            f"cannot seal: {exc} (--force seals it all the same)"
        ) from None

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    loss = request.loss if request.loss is not None else finite(state.loss)
    best = request.best_loss
    if best is None and request.loss is None:
        best = finite(state.best_loss)
    return replace(
        request,
        epoch=state.epoch if request.epoch is None else request.epoch,
        loss=loss,
        best_loss=best,
    )


def save_to_run(
    run_dir: Target,
    request: SaveRequest,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    force: bool = False,
    hashes: bool = True,
    policy: RetentionPolicy | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    progress: ByteProgress = _no_progress,
) -> SaveResult:
    """`ckpt save`: under the run lock, fill in from the latest checkpoint, commit, then prune
    by `policy` (after the commit, never before)."""
    backend, run = backend_for(run_dir)
    # before the lock: a typo in a file name costs no wait and no request
    placed = check_payloads(payloads, backend.local_run(run))
    backend.create_run(run)
    with run_lock(backend, run, lock_timeout) as guard:
        folder = run / checkpoint_name(request.step)
        try:
            (_, latest), names = latest_and_names(backend, run)
            previous: Metadata | None = latest
        except NotFoundError:
            previous, names = None, [folder.name]  # no valid checkpoint: look at the folder
        except NoRunDirError:  # the first save creates the run
            previous, names = None, []
        if folder.name in names:
            request = framework_values(backend, folder, request, force)
        meta = metadata_for(run, request, previous)
        # every value is checked before anything touches the store; the optimizer state is
        # encoded once, by the commit
        check_metadata(meta)
        outcome = backend.commit(
            folder,
            meta,
            placed,
            move=move,
            force=force,
            hashes=hashes,
            progress=progress,
            guard=guard,
        )
        pruned = prune_locked(backend, run, policy, guard) if policy is not None else None
    return SaveResult(folder, outcome, meta.best_loss, pruned)


def save_checkpoint(
    folder: Target,
    meta: Metadata,
    *,
    payloads: Sequence[Path] = (),
    move: bool = False,
    hashes: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> Location:
    """`Checkpoint.save`: commit `meta` at the folder `folder` under its run's lock, replacing
    what is there (as the seed crate overwrites) or sealing a folder a framework filled."""
    backend, where = backend_for(folder)
    check_metadata(meta)
    placed = check_payloads(payloads, backend.local_run(where.parent))
    backend.create_run(where.parent)
    with run_lock(backend, where.parent, lock_timeout) as guard:
        backend.commit(
            where,
            meta,
            placed,
            move=move,
            force=True,
            hashes=hashes,
            progress=_no_progress,
            guard=guard,
        )
    return where
