"""ckpt's own layout, the seed crate's: `checkpoint-<step>/metadata.json` is the commit marker.

Its signature is `metadata.json` in the folder; the folder is complete when that file
validates. `load` reads and validates it whole; `summary` reads what a listing needs: a small
file whole, a large one (millions of optimizer-state floats) by its two ends, so that `list`
costs the same whatever the size of the state (`ckpt_summary.py`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING

from ..core.errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    NoCheckpointFolderError,
    NoSignatureError,
)
from ..core.format import Metadata, decode_metadata, parse_timestamp, validate_document
from ..core.paths import Location
from ..core.records import METADATA_NAME
from ..storage.base import DanglingLink, NotRegularFile

if TYPE_CHECKING:  # `ckpt latest` needs `load` only
    from ..storage.base import Backend, Blob
    from ..storage.listing import Entry
    from .base import Pointer, Reading

#: A metadata.json up to this size is simply read and parsed in full.
SMALL_METADATA = 64 * 1024


def incomplete(folder: Location) -> NoSignatureError:
    return NoSignatureError(
        f"{folder}: incomplete checkpoint, no {METADATA_NAME} (a save in progress or a crash)"
    )


def load(backend: Backend, folder: Location) -> Metadata:
    """Load and validate `folder/metadata.json`.

    Raises InvalidCheckpointError when the file is missing, not a file, or invalid,
    NoCheckpointFolderError when there is no such folder, and CkptFileSystemError when it
    cannot be read at all.
    """
    meta_file = folder / METADATA_NAME
    try:
        data = backend.read_file(meta_file, about=folder)
    except DanglingLink:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: a symlink to nothing"
        ) from None
    except FileNotFoundError:
        state = backend.state(folder, follow=True)
        if state == "missing":
            raise NoCheckpointFolderError(f"{folder}: no such checkpoint folder") from None
        if state != "dir":
            raise CkptFileSystemError(f"{folder}: not a directory") from None
        raise incomplete(folder) from None
    except IsADirectoryError:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: it is a directory"
        ) from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{folder}: not a directory") from None
    except NotRegularFile:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: not a regular file (a FIFO, a device or a socket)"
        ) from None
    except OSError as exc:
        from ..core.errors import fs_error

        raise fs_error(exc, meta_file, "cannot read metadata") from None
    return decode_metadata(data, str(meta_file))


def summary_metadata(
    backend: Backend, folder: Location, entry: Entry | None
) -> tuple[Metadata, bool] | None:
    """The metadata that listings need: everything but the optimizer state, which is returned
    empty when the file is large, and whether it was read whole; None when the folder has no
    metadata.json. Same validation and errors as `load`.

    What list does not see: the numbers inside the array (a corrupt number there goes unnoticed
    until `load`, `verify` or `latest` reads the file in full), and, in a file that ends the
    way ckpt writes it (`rng_state` first after the array, the `ckpt` block present), anything
    in the unread middle. Files of other writers (the seed crate's, other tools') are read
    whole, but only the optimizer state's brackets are looked for, not its numbers parsed.
    """
    size = None
    if entry is not None and entry.files is not None:
        info = entry.files.get(METADATA_NAME)
        if info is None:
            return None  # the listing says it: no request needed
        size = info.size
    meta_file = folder / METADATA_NAME
    try:
        with backend.open_blob(meta_file, size) as blob:
            if blob.size <= SMALL_METADATA:
                return decode_metadata(blob.read_all(), str(meta_file)), True
            meta = _from_the_ends(blob, str(meta_file))
    except DanglingLink:
        meta = None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, InvalidCheckpointError, CkptFileSystemError):
        meta = None
    return (meta, False) if meta is not None else (load(backend, folder), True)


def _from_the_ends(blob: Blob, source: str) -> Metadata | None:
    """The summary from the ends of a large file, or None where `load` must decide."""
    from .ckpt_summary import (
        HEAD_BYTES,
        NUMBER_TEXT,
        TAIL_BYTES,
        TAIL_LIMIT,
        keys_after_state,
        keys_before_state,
        not_numbers,
        summary_of_whole,
    )

    size = blob.size
    head = blob.read(0, HEAD_BYTES)
    found = keys_before_state(head)
    if found is None or head[found[1] + 1 :].translate(None, NUMBER_TEXT):
        return summary_of_whole(blob.read_all(), source)
    before, _ = found
    tail_size = TAIL_BYTES
    while True:
        # the tail never reaches back into the head: the array spans the gap between them
        tail_size = min(tail_size, TAIL_LIMIT, size - len(head) - 1)
        tail = blob.read(size - tail_size, size)
        after = keys_after_state(tail)
        if after is not None:
            break
        if tail_size >= min(TAIL_LIMIT, size - len(head) - 1):
            return summary_of_whole(blob.read_all(), source)
        tail_size *= 2
    if next(iter(after), None) != "rng_state" or "ckpt" not in after:
        # Not the end that ckpt writes (the seed crate's, or another tool's): the unread middle
        # may hold keys a summary needs. It is read, but only searched, in C, for anything
        # that is not a number, and for the array's end: when that end is the one the tail
        # showed, the keys read from the two ends are all the file's.
        data = blob.read_all()
        start, end = found[1], data.find(b"]", found[1])
        if end != size - tail_size + tail.find(b"]") or not_numbers(data, start + 1, end):
            return summary_of_whole(data, source)
    before.update(after)
    return validate_document(before, source)


_READING: list[type[Reading]] = []


def _reading_class() -> type[Reading]:
    # imported once, on the first listing (not by `ckpt latest`), and not once per folder
    if not _READING:
        from .base import Reading

        _READING.append(Reading)
    return _READING[0]


#: the layout a listing shows for a Hugging Face Trainer folder that `ckpt save` sealed: read
#: by ckpt's marker, whose values win, and written by the Trainer
SEALED_TRAINER = "ckpt+hf-trainer"


def _sealed_trainer(meta: Metadata) -> bool:
    # the manifest that the seal recorded says it, at no cost: no file is looked at
    return meta.manifest is not None and any(
        entry.path == "trainer_state.json" for entry in meta.manifest
    )


def reading(meta: Metadata, whole: bool) -> Reading:
    """A metadata.json's values as a record's."""
    Reading = _reading_class()
    saved_at = None if meta.saved_at is None else parse_timestamp(meta.saved_at)
    return Reading(
        global_step=meta.global_step,
        epoch=meta.epoch,
        loss=meta.loss,
        best_loss=meta.best_loss,
        rng_state=meta.rng_state,
        saved_at=saved_at,
        metadata=meta,
        whole=whole,
    )


class CkptLayout:
    """ckpt's and the seed crate's `checkpoint-<step>/metadata.json`."""

    name = "ckpt"

    def summary(self, backend: Backend, folder: Location, entry: Entry) -> Reading | None:
        found = summary_metadata(backend, folder, entry)
        if found is None:
            return None
        read = reading(*found)
        if _sealed_trainer(found[0]):
            read.layout = SEALED_TRAINER
        return read

    def summaries(
        self, backend: Backend, run: Location, claimed: Sequence[tuple[Entry, int]]
    ) -> list[Reading | CkptError | None]:
        """Each folder on its own, concurrently on an object store."""

        def one(item: tuple[Entry, int]) -> Reading | CkptError | None:
            try:
                return self.summary(backend, run / item[0].name, item[0])
            except CkptError as exc:
                return exc

        return list(backend.map(one, claimed))

    def load(self, backend: Backend, folder: Location) -> Metadata:
        return load(backend, folder)

    def pins(
        self, backend: Backend, run: Location, readings: Mapping[str, Reading], names: set[str]
    ) -> dict[str, str]:
        return {}  # a ckpt checkpoint names no other

    def pointers(
        self, backend: Backend, run: Location, files: Sequence[str], present: Container[str]
    ) -> list[Pointer]:
        return []  # ckpt writes no pointer file


LAYOUT = CkptLayout()
