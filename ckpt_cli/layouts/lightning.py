"""PyTorch Lightning's layout (`ModelCheckpoint`): checkpoints that are files, `*.ckpt`, named
`epoch=E-step=S[-metric=V][-vN].ckpt`, plus `last.ckpt` (a full copy, or with
`save_last="link"` a relative symlink to the newest file).

- **Signature**: a torch archive whose record (`data.pkl`, read from its opcodes, never
  unpickled) holds `pytorch-lightning_version`.
- **Complete** when it is a whole archive: Lightning writes a temp file and moves it into
  place on a local disk, one upload on an object store; a file cut short has no zip end
  record (incomplete).
- **Record**: step and epoch from the archive's `global_step` and `epoch` (the name says the
  same; `last.ckpt` says nothing); the own loss is a `...loss=<value>` in the file name;
  saved at the file's mtime.
- **Protects** `last.ckpt` copies and the file of the same step they copy; a `last.ckpt`
  symlink is a pointer: its target is kept when it is a file of this run directory, and a link
  that leads outside the run is never followed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING

from ..core.errors import (
    CkptError,
    CkptFileSystemError,
    IncompleteCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
)
from ..core.paths import Location
from .base import Pointer, Reading, as_metadata, running_best
from .torch_archive import archive_record, integer, top_level

if TYPE_CHECKING:
    from ..core.format import Metadata
    from ..storage.base import Backend
    from ..storage.listing import Entry

NAME = "lightning"
_VERSION_KEY = "pytorch-lightning_version"
#: what a Lightning record holds first, and all a listing needs of it
_RECORD = frozenset(("epoch", "global_step", _VERSION_KEY))
_LAST_RE = re.compile(r"last(?:-v[0-9]+)?\.ckpt")
_LOSS_IN_NAME_RE = re.compile(r"(?:^|[-_])[A-Za-z_/]*loss=([-+0-9.eE]+?|nan|inf)(?=-|\.ckpt$)")


def _name_loss(name: str) -> float | None:
    match = _LOSS_IN_NAME_RE.search(name)
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read(
    backend: Backend, path: Location, size: int | None, mtime: float | None
) -> Reading | None:
    """The record of a Lightning file; None when it is no Lightning archive; raises
    IncompleteCheckpointError when it is cut short."""
    with backend.open_blob(path, size) as blob:
        whole, record = archive_record(blob)
        if not whole:
            head = blob.read(0, min(4, blob.size))
            if head == b"PK\x03\x04" or blob.size == 0:
                raise IncompleteCheckpointError(
                    f"{path}: incomplete Lightning checkpoint, cut short (no zip end record)"
                )
            return None
        values = top_level(record, _RECORD)
    if values is None or _VERSION_KEY not in values:
        return None
    step = integer(values.get("global_step"))
    epoch = integer(values.get("epoch"))
    if step is None:
        return None
    return Reading(
        global_step=step,
        epoch=epoch,
        loss=_name_loss(path.name),
        best_loss=None,
        rng_state=None,
        saved_at=mtime,
        layout=NAME,
    )


class LightningLayout:
    """Lightning's `*.ckpt` files."""

    name = NAME

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int | None]]
    ) -> list[Reading | CkptError | None]:
        def one(item: tuple[Entry, int | None]) -> Reading | CkptError | None:
            entry, _ = item
            path = run / entry.name
            try:
                return _read(backend, path, entry.size, entry.mtime)
            except CkptError as exc:
                return exc
            except FileNotFoundError:
                return None
            except OSError as exc:
                return CkptFileSystemError(f"{path}: cannot read: {exc}")

        out = list(backend.map(one, claimed))
        # a `last.ckpt` copy is no best of its own: it is the file it copies
        for (entry, _), found in zip(claimed, out, strict=True):
            if isinstance(found, Reading) and _LAST_RE.fullmatch(entry.name):
                found.loss = None
        running_best(out, [_step(found) for found in out])
        return out

    def load(self, backend: Backend, folder: Location) -> Metadata:
        state = backend.state(folder, follow=True)
        if state == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint file")
        if state != "file":
            raise NoSignatureError(f"{folder}: not a Lightning checkpoint file")
        try:
            reading = _read(backend, folder, None, None)
        except FileNotFoundError:
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint file") from None
        except OSError as exc:
            raise CkptFileSystemError(f"{folder}: cannot read: {exc}") from None
        if reading is None:
            raise NoSignatureError(f"{folder}: not a Lightning checkpoint (no {_VERSION_KEY})")
        reading.best_loss = reading.loss
        return as_metadata(reading)

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        """`last.ckpt` copies, and the files of the steps they copy."""
        pinned = {}
        copied = set()
        for name, reading in readings.items():
            if reading.layout == NAME and _LAST_RE.fullmatch(name):
                pinned[name] = "Lightning's last"
                copied.add(reading.global_step)
        for name, reading in readings.items():
            if reading.layout == NAME and name not in pinned and reading.global_step in copied:
                pinned[name] = "copied by Lightning's last"
        return pinned

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        found = []
        for name in files:
            link = backend.link_target(run / name)
            if link is None:
                continue  # a copy: a checkpoint of its own (pinned above)
            label = f"Lightning's {name}"
            target = link.removeprefix("./")
            if "/" in target or target in ("", ".", "..", name):
                problem = (
                    f"{run / name}: {label} leads outside the run directory ({link}): not followed"
                )
                found.append(Pointer(name, label, None, problem))
            elif target not in present:
                problem = f"{run / name}: {label} names {target}, which is not there: ignored"
                found.append(Pointer(name, label, None, problem))
            else:
                found.append(Pointer(name, label, target))
        return found


def _step(found: Reading | CkptError | None) -> int:
    return found.global_step if isinstance(found, Reading) else -1


LAYOUT = LightningLayout()
