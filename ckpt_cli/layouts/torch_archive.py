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


def end_record(blob: Blob) -> tuple[int, int] | None:
    """(offset, size) of the zip's central directory when its end record is there and
    consistent with the file's size, else None (not a zip, or cut short)."""
    size = blob.size
    if size < 22:
        return None
    start = max(0, size - _TAIL)
    tail = blob.read(start, size)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return None
    cd_size, cd_offset = struct.unpack("<II", tail[at + 12 : at + 20])
    if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF:  # zip64: the end record is earlier
        return (0, 0) if start + at >= 56 else None
    if cd_offset + cd_size > start + at:
        return None
    return cd_offset, cd_size


def is_whole(backend: Backend, path: Location, size: int | None = None) -> bool:
    """Whether a torch.save file is a whole zip archive (its end record is there)."""
    with backend.open_blob(path, size) as blob:
        return end_record(blob) is not None


def _members(blob: Blob, offset: int, size: int) -> dict[str, tuple[int, int, int]]:
    """name -> (method, compressed size, local header offset), from the central directory."""
    data = blob.read(offset, offset + size)
    found: dict[str, tuple[int, int, int]] = {}
    at = 0
    while data[at : at + 4] == _CENTRAL:
        method = struct.unpack("<H", data[at + 10 : at + 12])[0]
        csize = struct.unpack("<I", data[at + 20 : at + 24])[0]
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28 : at + 34])
        local = struct.unpack("<I", data[at + 42 : at + 46])[0]
        name = data[at + 46 : at + 46 + name_len].decode("utf-8", "replace")
        found[name] = (method, csize, local)
        at += 46 + name_len + extra_len + comment_len
    return found


def archive_pickle(blob: Blob) -> bytes | None:
    """The bytes of `<archive>/data.pkl` of a whole torch zip archive; None when the file is
    not one (or its data.pkl is compressed or too large to be a plain record)."""
    found = end_record(blob)
    if found is None or found == (0, 0):
        return None
    members = _members(blob, *found)
    name = next((n for n in members if n.endswith("/data.pkl") or n == "data.pkl"), None)
    if name is None:
        return None
    method, csize, local = members[name]
    if method != 0 or csize > _MAX_PICKLE:
        return None
    header = blob.read(local, local + 30)
    if header[:4] != _LOCAL:
        return None
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = local + 30 + name_len + extra_len
    return blob.read(start, start + csize)


def file_pickle(blob: Blob) -> bytes | None:
    """The pickle of a file that `torch.save` (a zip) or `pickle.dump` (a bare pickle) wrote."""
    head = blob.read(0, min(blob.size, 4))
    if head == _LOCAL:
        return archive_pickle(blob)
    if head[:1] == b"\x80":  # a pickle's PROTO opcode
        return blob.read_all() if blob.size <= _MAX_PICKLE else None
    return None


def plain_values(data: bytes) -> Any:
    """The object a pickle describes, with every constructed object left opaque; raises
    ValueError when the opcodes do not make one object."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
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


def top_level(data: bytes | None) -> dict[str, Any] | None:
    """The pickled object's string-keyed values when it is a dict, else None."""
    if data is None:
        return None
    try:
        found = plain_values(data)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {k: v for k, v in found.items() if isinstance(k, str)}


def integer(value: Any) -> int | None:
    """A pickled int (never a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
