"""Reading a run directory: its entries and their status, one checkpoint's metadata, the latest.

A run directory holds `checkpoint-<step>` folders; a folder is a checkpoint only if its
`metadata.json` is complete and valid (the commit marker). `scan` classifies every entry;
`find_latest` finds the highest valid step with one directory listing and, normally, a single
metadata read, skipping (with a warning) what is incomplete or corrupt.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import orjson

from .errors import (
    CkptError,
    CkptFileSystemError,
    InvalidCheckpointError,
    NoRunDirError,
    NotFoundError,
    fs_error,
)
from .format import Metadata, decode_metadata, parse_timestamp, validate_document
from .records import (
    MAX_U64,
    METADATA_NAME,
    STAGING_RE,
    TRASH_RE,
    CheckpointRecord,
    EntryKind,
    checkpoint_name,
    display_name,
    step_from_name,
)
from .storage import Location, ObjectPath, Target, local, location

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


def checkpoint_folder(target: Target) -> Location:
    """The checkpoint folder a user named: the folder itself, or the folder of a metadata.json."""
    path = location(target)
    if isinstance(path, ObjectPath):
        from . import remote

        return remote.checkpoint_folder(path)
    if path.name == METADATA_NAME and not path.is_dir():
        return path.parent
    return path


def read_metadata(target: Target) -> Metadata:
    """Load and validate `folder/metadata.json`.

    Raises InvalidCheckpointError when the file is missing, not a file, or invalid, and
    CkptFileSystemError when the folder cannot be read at all.
    """
    folder = location(target)
    if isinstance(folder, ObjectPath):
        from . import remote

        return remote.read_metadata(folder)
    meta_file = folder / METADATA_NAME
    try:
        data = _read_regular_file(meta_file)
    except FileNotFoundError:
        if not folder.exists():
            raise CkptFileSystemError(f"{folder}: no such checkpoint folder") from None
        if not folder.is_dir():
            raise CkptFileSystemError(f"{folder}: not a directory") from None
        if os.path.lexists(meta_file):
            raise InvalidCheckpointError(
                f"invalid metadata in {meta_file}: a symlink to nothing"
            ) from None
        raise InvalidCheckpointError(
            f"{folder}: incomplete checkpoint, no {METADATA_NAME} (a save in progress or a crash)"
        ) from None
    except IsADirectoryError:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: it is a directory"
        ) from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{folder}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, meta_file, "cannot read metadata") from None
    if data is None:
        raise InvalidCheckpointError(
            f"invalid metadata in {meta_file}: not a regular file (a FIFO, a device or a socket)"
        )
    return decode_metadata(data, str(meta_file))


def _read_regular_file(path: Path) -> bytes | None:
    """The bytes of a regular file; None when `path` is something else that can be opened.

    A FIFO would block `latest` forever waiting for a writer and /dev/zero would fill the
    memory, so the file is opened without blocking and checked before it is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            return None
        return handle.read()


@contextmanager
def _listing(run_dir: Path) -> Iterator[None]:
    """One clear error when a run directory cannot be listed."""
    try:
        yield
    except FileNotFoundError:
        raise NoRunDirError(f"{run_dir}: no such run directory") from None
    except NotADirectoryError:
        raise CkptFileSystemError(f"{run_dir}: not a directory") from None
    except OSError as exc:
        raise fs_error(exc, run_dir, "cannot list run directory") from None


def list_names(run_dir: Path) -> list[str]:
    """The entry names of a run directory, with one clear error when it cannot be listed."""
    with _listing(run_dir):
        return os.listdir(run_dir)


def _candidates(names: list[str]) -> list[tuple[int, str]]:
    """Checkpoint names with their steps, highest step first; canonical names before padded."""
    found = []
    for name in names:
        step = step_from_name(name)
        if step is not None:
            found.append((step, name))
    found.sort(key=lambda item: (-item[0], item[1] != checkpoint_name(item[0]), item[1]))
    return found


#: how many times find_latest lists the run directory again when a folder it listed is gone
_RELISTS = 10


class _Vanished(Exception):
    """A folder of the listing was deleted (by a concurrent prune) before it could be read."""


# Over a whole listing at once, in C: `checkpoint-<digits>` names (a name never holds "/"), and
# whether any of them is zero-padded. The listing is joined as "/a/b/.../z/" so that each
# pattern starts with a literal, which the regex engine finds by fast substring search.
_STEP_NAMES_RE = re.compile(r"/checkpoint-([0-9]+)(?=/)")
_PADDED_NAME_RE = re.compile(r"/checkpoint-0[0-9]")


# Just above every `checkpoint-<digits>` name in text order (":" follows "9"), and the names
# that are their step's own spelling (no zero padding).
_ABOVE_STEP_NAMES = "checkpoint-:"
_CANONICAL_NAME_RE = re.compile(r"checkpoint-(?:0|[1-9][0-9]*)")


def _highest_name(names: list[str]) -> str | None:
    """The checkpoint name with the highest step, found without reading the step of every
    name; None when this shortcut cannot tell, and the full order decides.

    Of two unpadded step names the longer has the higher step, and among names of one length
    text order is numeric order. So the answer is the text-greatest step name of the longest
    length that has any: a sort by length and a max(), both loops in C (at 100k names, about
    15 ms against 38 ms for finding and ordering every step). A zero-padded or odd name
    (`checkpoint-0100`, `checkpoint-9.bak`) at that place returns None.
    """
    by_length = sorted(names, key=len)
    end = len(by_length)
    while end:
        start = bisect_left(by_length, len(by_length[end - 1]), 0, end, key=len)
        group = by_length[start:end]
        top = max(group)
        if top >= _ABOVE_STEP_NAMES:  # a name such as "trainer_state.json" sorts above them
            top = max(filter(_ABOVE_STEP_NAMES.__gt__, group), default="")
        if top >= "checkpoint-":  # below _ABOVE_STEP_NAMES, so it starts with "checkpoint-"
            return top if _CANONICAL_NAME_RE.fullmatch(top) else None
        end = start
    return None


def _descending_steps(names: list[str]) -> Iterator[tuple[int, str]]:
    """`_candidates(names)`, lazily: find_latest normally needs only the first one.

    The first comes from `_highest_name`; the rest, when a folder at the top is incomplete or
    corrupt, from `_ordered_steps`.
    """
    top = _highest_name(names)
    if top is not None:
        yield int(top.removeprefix("checkpoint-")), top
    for step, name in _ordered_steps(names):
        if name != top:
            yield step, name


def _ordered_steps(names: list[str]) -> Iterator[tuple[int, str]]:
    """`_candidates(names)`, lazily.

    Without zero padding, numeric order is (length, text) order, so the digits are sorted by
    length only, and each length group, from the longest, by text when it is reached. Only
    the steps actually visited are turned into integers. A listing with padded names takes
    the general path.
    """
    text = "/" + "/".join(names) + "/"
    if _PADDED_NAME_RE.search(text):
        yield from _candidates(names)
        return
    digits = _STEP_NAMES_RE.findall(text)
    del text
    digits.sort(key=len)
    end = len(digits)
    while end:
        start = bisect_left(digits, len(digits[end - 1]), 0, end, key=len)
        for step_text in sorted(digits[start:end], reverse=True):
            yield int(step_text), "checkpoint-" + step_text
        end = start


def find_latest(target: Target, warn: Warn = _ignore) -> tuple[Location, Metadata]:
    """The valid checkpoint with the highest step, and its metadata.

    Orders by the step in the folder name and validates from the top down, so the cost is one
    listing plus a metadata read per skipped folder. Raises NotFoundError when none is valid.

    A folder that vanishes between the listing and its read was deleted by a prune that ran
    meanwhile, which may have followed a save of a higher step: the listing is stale, so it is
    taken again (rather than skip down, possibly to "nothing found" while checkpoints exist).
    """
    run_dir = location(target)
    if isinstance(run_dir, ObjectPath):
        from . import remote

        return remote.find_latest(run_dir, warn)
    for attempt in range(_RELISTS + 1):
        warnings: list[str] = []
        try:
            found = _latest_in(run_dir, list_names(run_dir), warnings.append, attempt < _RELISTS)
        except _Vanished:
            continue  # what a stale listing warned about does not matter
        except NotFoundError:
            for message in warnings:
                warn(message)
            raise
        for message in warnings:
            warn(message)
        return found
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt never relists


def _latest_in(
    run_dir: Path, names: list[str], warn: Warn, relist: bool
) -> tuple[Location, Metadata]:
    for step, name in _descending_steps(names):
        folder = run_dir / name
        shown = display_name(name)
        if step > MAX_U64:
            warn(f"skipping {run_dir / shown}: step number past 2^64-1")
            continue
        if folder.is_symlink():
            warn(f"skipping {run_dir / shown}: a symlink (ckpt does not follow links)")
            continue
        try:
            meta = read_metadata(folder)
        except (InvalidCheckpointError, CkptFileSystemError) as exc:
            if relist and not os.path.lexists(folder):
                raise _Vanished from None
            warn(f"skipping {exc}")
            continue
        if meta.global_step != step:
            warn(f"{folder}: folder name says step {step} but metadata says {meta.global_step}")
        _warn_if_stale(run_dir, folder, step, names, warn)
        return folder, meta
    raise NotFoundError(f"{run_dir}: no valid checkpoint")


# A save commits by renaming into the run directory, which updates the directory's mtime; a
# directory that changed well after the latest checkpoint did is the cue to look for a newer
# save at a lower step. Only then does find_latest stat the other folders.
_MTIME_SLACK = 2.0


def _warn_if_stale(run_dir: Path, latest: Path, step: int, names: list[str], warn: Warn) -> None:
    try:
        latest_mtime = latest.stat().st_mtime
        if run_dir.stat().st_mtime <= latest_mtime + _MTIME_SLACK:
            return
    except OSError:
        return
    newest: tuple[float, Path] | None = None
    try:
        run_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        for other_step, name in _candidates(names):
            if other_step >= step:
                continue
            try:
                # relative to the run directory's descriptor: one path component less to
                # resolve per folder, which is most of the cost over 100k folders
                mtime = os.stat(f"{name}/{METADATA_NAME}", dir_fd=run_fd).st_mtime
            except OSError:
                continue
            if mtime > latest_mtime + _MTIME_SLACK and (newest is None or mtime > newest[0]):
                newest = (mtime, run_dir / name)
    finally:
        os.close(run_fd)
    if newest is not None:
        warn(
            f"{newest[1].name} was saved after {latest.name}, which has a higher step: "
            f"{latest.name} may be left over from an earlier run"
        )


_HIDDEN_KINDS: tuple[tuple[re.Pattern[str], EntryKind], ...] = (
    (STAGING_RE, "staging"),
    (TRASH_RE, "trash"),
)


def _classify(run_dir: Path, entry: os.DirEntry[str]) -> CheckpointRecord | None:
    """The record of one entry; None when it was deleted or renamed since the listing (a save
    or prune ran beside the scan): it is not there, and it was never broken."""
    name = entry.name
    path = run_dir / name
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return CheckpointRecord(path, name, "other", "corrupt", error=str(exc))
    if stat.S_ISLNK(info.st_mode):
        return CheckpointRecord(path, name, "symlink", "valid", step=step_from_name(name))
    is_dir = stat.S_ISDIR(info.st_mode)
    for pattern, kind in _HIDDEN_KINDS:
        match = pattern.fullmatch(name)
        if match and is_dir:
            return CheckpointRecord(
                path, name, kind, "incomplete", step=int(match.group(1)), saved_at=info.st_mtime
            )
    step = step_from_name(name)
    if step is None or not is_dir:
        return CheckpointRecord(path, name, "other", "valid", step=step)
    if step > MAX_U64:
        return CheckpointRecord(
            path,
            name,
            "checkpoint",
            "corrupt",
            step=step,
            saved_at=info.st_mtime,
            error=f"{display_name(name)}: step number past 2^64-1",
        )
    try:
        meta = read_summary(path)
    except InvalidCheckpointError as exc:
        incomplete = not os.path.lexists(path / METADATA_NAME)
        return CheckpointRecord(
            path,
            name,
            "checkpoint",
            "incomplete" if incomplete else "corrupt",
            step=step,
            saved_at=info.st_mtime,
            error=None if incomplete else str(exc),
        )
    except CkptFileSystemError as exc:
        if not os.path.lexists(path):
            return None
        return CheckpointRecord(
            path, name, "checkpoint", "corrupt", step=step, saved_at=info.st_mtime, error=str(exc)
        )
    return valid_record(path, name, step, meta, info.st_mtime)


def valid_record(
    path: Location,
    name: str,
    step: int,
    meta: Metadata,
    mtime: float | None,
    size: int | None = None,
) -> CheckpointRecord:
    """The record of a valid checkpoint: saved at its recorded `saved_at`, else at `mtime`
    (checkpoints written by other tools), with a note when name and metadata disagree."""
    saved_at = mtime if meta.saved_at is None else parse_timestamp(meta.saved_at)
    mismatch = None
    if meta.global_step != step:
        mismatch = f"folder name says step {step} but metadata says {meta.global_step}"
    return CheckpointRecord(
        path,
        name,
        "checkpoint",
        "valid",
        step=step,
        epoch=meta.epoch,
        loss=meta.loss,
        best_loss=meta.best_loss,
        rng_state=meta.rng_state,
        saved_at=saved_at,
        size=size,
        error=mismatch,
    )


#: A metadata.json up to this size is simply read and parsed in full.
_SMALL_METADATA = 64 * 1024
#: How much of a large file's start is read to find the keys before the optimizer state.
_HEAD_BYTES = 4 * 1024
#: How much of its end is read first (doubled, up to the limit, when the keys after the
#: optimizer state take more room, e.g. a long manifest).
_TAIL_BYTES = 16 * 1024
_TAIL_LIMIT = 1024 * 1024
_OPTIMIZER_KEY = b'"optimizer_state"'
_SPACE = b" \t\n\r"
#: Bytes that cannot occur inside a flat array of numbers: the first of a string, an array, an
#: object, and of each literal JSON has (or that a writer might emit: NaN, Infinity). What is
#: left, digits and `+-.eE,` and spaces, is not checked further: list does not validate every
#: number; load, verify and latest do.
_NOT_IN_NUMBERS = tuple(bytes([c]) for c in b'"[{ntfNI')
#: All that the text of numbers in an array is made of. The ends of the array, read without the
#: middle, must be only this: then they cannot be inside a string or another value.
_NUMBER_TEXT = b"0123456789+-.eE," + _SPACE


def read_summary(folder: Path) -> Metadata:
    """The metadata that listings need: everything but the optimizer state, which is returned
    empty when the file is large. Same validation and errors as `read_metadata`.

    A large file is not parsed whole: the keys before `"optimizer_state": [` are parsed from the
    start of the file, and the keys after its closing `]` from the end, so that the cost does
    not grow with the size of the state. Anything that does not fit that shape exactly, and
    every error, falls back to `read_metadata`, so that results and messages are the same.

    What list does not see: the numbers inside the array (a corrupt number there goes unnoticed
    until `load`, `verify` or `latest` reads the file in full), and, in a file that ends the
    way ckpt writes it (`rng_state` first after the array, the `ckpt` block present), anything
    in the unread middle. Files of other layouts (the seed crate's, other tools') are read
    whole, but only the optimizer state's brackets are looked for, not its numbers parsed.
    """
    try:
        meta = _read_summary_fast(folder / METADATA_NAME)
    except (OSError, ValueError, InvalidCheckpointError):
        meta = None
    return meta if meta is not None else read_metadata(folder)


def _read_summary_fast(meta_file: Path) -> Metadata | None:
    """The summary from the ends of a large file, or None where read_metadata must decide."""
    source = str(meta_file)
    fd = os.open(meta_file, os.O_RDONLY | os.O_NONBLOCK)  # never wait on a FIFO
    with open(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None  # a FIFO or a device: read_metadata says so without reading it
        size = info.st_size
        if size <= _SMALL_METADATA:
            return decode_metadata(handle.read(), source)
        head = handle.read(_HEAD_BYTES)
        found = _keys_before_state(head)
        if found is None or head[found[1] + 1 :].translate(None, _NUMBER_TEXT):
            return _summary_of_whole(head + handle.read(), source)
        before, _ = found
        tail_size = _TAIL_BYTES
        while True:
            # the tail never reaches back into the head: the array spans the gap between them
            tail_size = min(tail_size, _TAIL_LIMIT, size - len(head) - 1)
            handle.seek(size - tail_size)
            tail = handle.read(tail_size)
            after = _keys_after_state(tail)
            if after is not None:
                break
            if tail_size >= min(_TAIL_LIMIT, size - len(head) - 1):
                handle.seek(len(head))
                return _summary_of_whole(head + handle.read(), source)
            tail_size *= 2
        if next(iter(after), None) != "rng_state" or "ckpt" not in after:
            # Not the end that ckpt writes: the unread middle may hold keys a summary needs.
            handle.seek(len(head))
            return _summary_of_whole(head + handle.read(), source)
    before.update(after)
    return validate_document(before, source)


def _not_numbers(text: bytes, start: int = 0, end: int | None = None) -> bool:
    """True when `text[start:end]` holds something that a flat array of numbers cannot: a
    string, a nested array or object, or a literal (null, true, false, NaN, Infinity). Each is
    a C-speed byte search: megabytes of numbers are checked without being parsed."""
    stop = len(text) if end is None else end
    return any(text.find(mark, start, stop) >= 0 for mark in _NOT_IN_NUMBERS)


def _keys_before_state(head: bytes) -> tuple[dict[str, object], int] | None:
    """The top-level keys before `"optimizer_state": [`, and where its `[` is; None when the
    head does not show that key at the top level of an object."""
    key = head.find(_OPTIMIZER_KEY)
    if key < 0:
        return None
    # A top-level key follows `{` or `,`; a quote inside a string would follow a backslash,
    # and in an array or a nested object the parse of the prefix below fails.
    if head[:key].rstrip(_SPACE)[-1:] not in (b"{", b","):
        return None
    rest = head[key + len(_OPTIMIZER_KEY) :].lstrip(_SPACE)
    if rest[:1] != b":":
        return None
    value = rest[1:].lstrip(_SPACE)
    if value[:1] != b"[":
        return None
    before = orjson.loads(head[:key] + _OPTIMIZER_KEY + b": []}")
    if not isinstance(before, dict):
        return None
    return before, len(head) - len(value)


def _keys_after_state(tail: bytes) -> dict[str, object] | None:
    """The keys after the array whose `]` is the first one in `tail`, when everything before
    that `]` is number text; None otherwise."""
    close = tail.find(b"]")
    if close < 0 or tail[:close].translate(None, _NUMBER_TEXT):
        return None
    rest = tail[close + 1 :].lstrip(_SPACE)
    if rest[:1] == b"}":
        return None if rest[1:].strip(_SPACE) else {}
    if rest[:1] != b",":
        return None
    after = orjson.loads(b"{" + rest[1:])
    return after if isinstance(after, dict) else None


def _summary_of_whole(data: bytes, source: str) -> Metadata | None:
    """The summary of a whole file, parsing everything but the optimizer state's numbers."""
    found = _keys_before_state(data)
    if found is None:
        return None
    _, start = found
    end = data.find(b"]", start)
    if end < 0 or _not_numbers(data, start + 1, end):
        return None
    doc = orjson.loads(data[:start] + b"[]" + data[end + 1 :])
    return validate_document(doc, source)


def folder_size(path: Path) -> int:
    """Bytes of the regular files below a folder, links not followed."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def scan(target: Target, *, sizes: bool = False) -> list[CheckpointRecord]:
    """Every entry of a run directory, classified, in ascending step order (stepless last).

    The lock file and other hidden files that are not ckpt's are left out: they are not the
    user's checkpoints and never touched.
    """
    run_dir = location(target)
    if isinstance(run_dir, ObjectPath):
        from . import remote

        return remote.scan(run_dir, sizes=sizes)
    with _listing(run_dir), os.scandir(run_dir) as entries:
        classified = [
            _classify(run_dir, entry)
            for entry in entries
            if not entry.name.startswith(".")
            or STAGING_RE.fullmatch(entry.name)
            or TRASH_RE.fullmatch(entry.name)
        ]
    records = [record for record in classified if record is not None]
    if sizes:
        records = [_with_size(record) for record in records]
    records.sort(key=_order)
    return records


def _with_size(record: CheckpointRecord) -> CheckpointRecord:
    if record.kind not in ("checkpoint", "staging", "trash"):
        return record
    return replace(record, size=folder_size(local(record.path)))


def _order(record: CheckpointRecord) -> tuple[bool, int, str]:
    return (record.step is None, record.step or 0, record.name)


def expand_run_dirs(
    patterns: Sequence[str], recursive: bool = False, warn: Warn = _ignore
) -> tuple[list[Location], list[CkptError]]:
    """Run directories named by paths and quoted shell globs (and, with `recursive`, every run
    directory below them), in order and without repeats; plus an error per glob that matched
    nothing. A plain path is passed through, so that a missing one fails where it is used.
    URLs (globs too: `s3://bucket/runs/*/checkpoints`) are expanded on their store."""
    targets: list[Location] = []
    failures: list[CkptError] = []
    import glob  # only prune takes globs; keep it off the start-up path of `latest`

    for pattern in patterns:
        try:
            where = location(pattern)
            if isinstance(where, ObjectPath):
                from . import remote

                targets.extend(remote.expand(pattern, recursive, warn))
                continue
        except CkptError as exc:
            failures.append(exc)
            continue
        if pattern.startswith("file://"):
            pattern = str(where)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                failures.append(CkptFileSystemError(f"{pattern}: no run directory matches"))
            paths = [Path(m) for m in matches if Path(m).is_dir()]
        else:
            paths = [Path(pattern)]
        for path in paths:
            if recursive and path.is_dir():
                found = find_run_dirs(path)
                if not found:
                    warn(f"{path}: no run directory below it")
                targets.extend(found)
            else:
                targets.append(path)
    return list(dict.fromkeys(targets)), failures


def find_run_dirs(root: Path) -> list[Path]:
    """Directories under `root` that hold checkpoint folders; links are not followed, and
    neither checkpoint folders nor hidden folders are descended into."""
    found = []
    for current, dirs, _files in os.walk(root, followlinks=False):
        if any(step_from_name(d) is not None for d in dirs):
            found.append(Path(current))
        dirs[:] = sorted(d for d in dirs if step_from_name(d) is None and not d.startswith("."))
    return found
