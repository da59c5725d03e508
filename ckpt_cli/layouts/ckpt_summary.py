"""Reading the summary of a large `metadata.json` from its two ends, as pure byte functions.

A seed-crate `metadata.json` may hold millions of optimizer-state floats; `list` needs every
key but those numbers. These functions find the keys before `"optimizer_state": [` in the
head of the file and the keys after its closing `]` in the tail, and check (at C speed, by byte
searches) that what lies between can only be numbers. `layouts/ckpt.py` reads the bytes.
"""

from __future__ import annotations

import orjson

from ..core.format import Metadata, validate_document

#: How much of a large file's start is read to find the keys before the optimizer state.
HEAD_BYTES = 4 * 1024
#: How much of its end is read first (doubled, up to the limit, when the keys after the
#: optimizer state take more room, e.g. a long manifest).
TAIL_BYTES = 16 * 1024
TAIL_LIMIT = 1024 * 1024
_OPTIMIZER_KEY = b'"optimizer_state"'
_SPACE = b" \t\n\r"
#: Bytes that cannot occur inside a flat array of numbers: the first of a string, an array, an
#: object, and of each literal JSON has (or that a writer might emit: NaN, Infinity). What is
#: left, digits and `+-.eE,` and spaces, is not checked further: list does not validate every
#: number; load, verify and latest do.
_NOT_IN_NUMBERS = tuple(bytes([c]) for c in b'"[{ntfNI')
#: All that the text of numbers in an array is made of. The ends of the array, read without the
#: middle, must be only this: then they cannot be inside a string or another value.
NUMBER_TEXT = b"0123456789+-.eE," + _SPACE


def not_numbers(text: bytes, start: int = 0, end: int | None = None) -> bool:
    """True when `text[start:end]` holds something that a flat array of numbers cannot: a
    string, a nested array or object, or a literal (null, true, false, NaN, Infinity). Each is
    a C-speed byte search: megabytes of numbers are checked without being parsed."""
    stop = len(text) if end is None else end
    return any(text.find(mark, start, stop) >= 0 for mark in _NOT_IN_NUMBERS)


def keys_before_state(head: bytes) -> tuple[dict[str, object], int] | None:
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


def keys_after_state(tail: bytes) -> dict[str, object] | None:
    """The keys after the array whose `]` is the first one in `tail`, when everything before
    that `]` is number text; None otherwise."""
    close = tail.find(b"]")
    if close < 0 or tail[:close].translate(None, NUMBER_TEXT):
        return None
    rest = tail[close + 1 :].lstrip(_SPACE)
    if rest[:1] == b"}":
        return None if rest[1:].strip(_SPACE) else {}
    if rest[:1] != b",":
        return None
    after = orjson.loads(b"{" + rest[1:])
    return after if isinstance(after, dict) else None


def summary_of_whole(data: bytes, source: str) -> Metadata | None:
    """The summary of a whole file, parsing everything but the optimizer state's numbers."""
    found = keys_before_state(data)
    if found is None:
        return None
    _, start = found
    end = data.find(b"]", start)
    if end < 0 or not_numbers(data, start + 1, end):
        return None
    doc = orjson.loads(data[:start] + b"[]" + data[end + 1 :])
    return validate_document(doc, source)
