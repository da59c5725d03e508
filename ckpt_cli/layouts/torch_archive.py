"""Reading what `torch.save` wrote, without running it: the zip's end record, and plain values
of its pickle.

Several frameworks save with `torch.save` (DeepSpeed's shards, Lightning's `.ckpt` files,
Accelerate's `random_states_<r>.pkl`): a zip archive (stored, not compressed) holding
`<archive>/data.pkl` and the tensors' bytes. A file cut short by a crash has no end record
(the zip's central directory is written last), which is what "whole" means here.

No pickle is ever unpickled: that would run code from the file. `plain_values` interprets the
pickle's opcodes with a stack of its own that builds only dicts, lists, tuples, strings and
numbers; every object the pickle would construct (a tensor, an OrderedDict, a class) stays an
opaque placeholder, and nothing is imported or called.
"""

from __future__ import annotations

import pickletools
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.paths import Location
    from ..storage.base import Backend, Blob

_EOCD = b"PK\x05\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
#: the end record is 22 bytes plus a comment of at most 64 KiB
_TAIL = 22 + 65535
#: a data.pkl up to this size is read (Lightning's: a few kB; the tensors are apart)
_MAX_PICKLE = 16 * 1024 * 1024


class Opaque:
    """Whatever the pickle would construct by calling code: never built."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = Opaque()


class _Tail:
    """The end of a file, read once: a small archive is all in it, so the central directory,
    data.pkl's local header and its bytes are sliced from it, not read again."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.start = max(0, blob.size - _TAIL)
        self.data = blob.read(self.start, blob.size) if blob.size >= 22 else b""

    def read(self, start: int, end: int) -> bytes:
        if start >= self.start:
            return self.data[start - self.start : end - self.start]
        return self.blob.read(start, end)


def _end_record(tail: _Tail) -> tuple[int, int] | None:
    data = tail.data
    at = data.rfind(_EOCD)
    if at < 0 or at + 22 > len(data):
        return None
    cd_size, cd_offset = struct.unpack("<II", data[at + 12 : at + 20])
    if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF:  # zip64: the end record is earlier
        return (0, 0) if tail.start + at >= 56 else None
    if cd_offset + cd_size > tail.start + at:
        return None
    return cd_offset, cd_size


def end_record(blob: Blob) -> tuple[int, int] | None:
    """(offset, size) of the zip's central directory when its end record is there and
    consistent with the file's size, else None (not a zip, or cut short)."""
    return _end_record(_Tail(blob))


def is_whole(backend: Backend, path: Location, size: int | None = None) -> bool:
    """Whether a torch.save file is a whole zip archive (its end record is there)."""
    with backend.open_blob(path, size) as blob:
        return end_record(blob) is not None


def _pickle_member(tail: _Tail, offset: int, size: int) -> tuple[int, int, int] | None:
    """(method, compressed size, local header offset) of `<archive>/data.pkl`, from the
    central directory (torch writes it first)."""
    data = tail.read(offset, offset + size)
    at = 0
    while data[at : at + 4] == _CENTRAL:
        (method,) = struct.unpack("<H", data[at + 10 : at + 12])
        (csize,) = struct.unpack("<I", data[at + 20 : at + 24])
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28 : at + 34])
        (local,) = struct.unpack("<I", data[at + 42 : at + 46])
        name = data[at + 46 : at + 46 + name_len]
        if name == b"data.pkl" or name.endswith(b"/data.pkl"):
            return method, csize, local
        at += 46 + name_len + extra_len + comment_len
    return None


def archive_record(blob: Blob) -> tuple[bool, bytes | None]:
    """Whether a file is a whole zip archive (its end record is there), and the bytes of its
    `<archive>/data.pkl` (None without one, or when it is compressed or too large to be a
    plain record); one read of the file's end for a small archive."""
    tail = _Tail(blob)
    found = _end_record(tail)
    if found is None:
        return False, None
    member = _pickle_member(tail, *found) if found != (0, 0) else None
    if member is None:
        return True, None
    method, csize, local = member
    if method != 0 or csize > _MAX_PICKLE:
        return True, None
    header = tail.read(local, local + 30)
    if header[:4] != _LOCAL:
        return True, None
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = local + 30 + name_len + extra_len
    return True, tail.read(start, start + csize)


def archive_pickle(blob: Blob) -> bytes | None:
    """The bytes of `<archive>/data.pkl` of a whole torch zip archive, else None."""
    return archive_record(blob)[1]


def file_pickle(blob: Blob) -> bytes | None:
    """The pickle of a file that `torch.save` (a zip) or `pickle.dump` (a bare pickle) wrote."""
    head = blob.read(0, min(blob.size, 4))
    if head == _LOCAL:
        return archive_pickle(blob)
    if head[:1] == b"\x80":  # a pickle's PROTO opcode
        return blob.read_all() if blob.size <= _MAX_PICKLE else None
    return None


_SCALARS = (str, int, float, bytes, type(None))


def plain_values(data: bytes, wanted: frozenset[str] = frozenset()) -> Any:
    """The object a pickle describes, with every constructed object left opaque; raises
    ValueError when the opcodes do not make one object.

    With `wanted` keys of a top-level dict whose values are plain scalars, it stops as soon as
    the leading scalar items of that dict's first batch hold them all (the opcodes are read in
    Python: a Lightning record's three keys come first, and the rest is thousands of opcodes).
    Only while nothing but scalars stands above the dict can a key and a value on the stack be
    the dict's own: a nested dict is filled on the same stack (`}`, key, value, SETITEM).
    """
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    seen: set[str] = set()
    leading = bool(wanted)
    try:
        for op, arg, _ in pickletools.genops(data):
            if leading and marks == [1] and len(stack) > 1:
                if not isinstance(stack[-1], _SCALARS) or not isinstance(stack[0], dict):
                    leading = False  # a container: pairs can no longer be told apart
                elif len(stack) % 2 == 1 and stack[-2] in wanted:
                    seen.add(stack[-2])
                    if seen == wanted:
                        return {**stack[0], **_dict(stack[1:])}
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                break
            if name == "MARK":
                marks.append(len(stack))
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif op.arg is not None and name in _PUSHES_ARG:
                stack.append(arg)
            elif name in ("EMPTY_DICT", "DICT"):
                stack.append({} if name == "EMPTY_DICT" else _dict(_pop_mark(stack, marks)))
            elif name in ("EMPTY_LIST", "LIST"):
                stack.append([] if name == "EMPTY_LIST" else _pop_mark(stack, marks))
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack, marks)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                last = tuple(stack[-n:])
                del stack[-n:]
                stack.append(last)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _setitem(stack[-1], key, value)
            elif name == "SETITEMS":
                pairs = _pop_mark(stack, marks)
                for key, value in zip(pairs[::2], pairs[1::2], strict=True):
                    _setitem(stack[-1], key, value)
            elif name == "APPEND":
                value = stack.pop()
                if isinstance(stack[-1], list):
                    stack[-1].append(value)
            elif name == "APPENDS":
                values = _pop_mark(stack, marks)
                if isinstance(stack[-1], list):
                    stack[-1].extend(values)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(str(arg))] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[int(str(arg))])
            elif name in ("GLOBAL", "INST"):
                if name == "INST":
                    _pop_mark(stack, marks)
                stack.append(OPAQUE)
            elif name in ("STACK_GLOBAL", "REDUCE", "NEWOBJ", "BINPERSID"):
                del stack[-_POPS[name] :]
                stack.append(OPAQUE)
            elif name == "NEWOBJ_EX":
                del stack[-3:]
                stack.append(OPAQUE)
            elif name == "OBJ":
                _pop_mark(stack, marks)
                stack.append(OPAQUE)
            elif name == "PERSID":
                stack.append(OPAQUE)
            elif name == "BUILD":
                stack.pop()  # the state of an object that stays opaque
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                _pop_mark(stack, marks)
            elif name == "DUP":
                stack.append(stack[-1])
            else:
                raise ValueError(f"unexpected pickle opcode {name}")
    except (IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed pickle: {exc}") from None
    if len(stack) != 1:
        raise ValueError("malformed pickle: not one object")
    return stack[0]


_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_PUSHES_ARG = frozenset(
    (
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
    )
)
_POPS = {"STACK_GLOBAL": 2, "REDUCE": 2, "NEWOBJ": 2, "BINPERSID": 1}


def _pop_mark(stack: list[Any], marks: list[int]) -> list[Any]:
    at = marks.pop()
    items = stack[at:]
    del stack[at:]
    return items


def _dict(items: list[Any]) -> dict[Any, Any]:
    return {k: v for k, v in zip(items[::2], items[1::2], strict=True) if _hashable(k)}


def _setitem(target: Any, key: Any, value: Any) -> None:
    if isinstance(target, dict) and _hashable(key):
        target[key] = value


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def top_level(data: bytes | None, wanted: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """The pickled object's string-keyed values when it is a dict, else None; with `wanted`
    (scalar values), perhaps only the first of them (see `plain_values`)."""
    if data is None:
        return None
    try:
        found = plain_values(data, wanted)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {k: v for k, v in found.items() if isinstance(k, str)}


def integer(value: Any) -> int | None:
    """A pickled int (never a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
