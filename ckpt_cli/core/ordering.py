"""The names of a listing in step order, highest first, found without parsing every name.

`latest` must not read every marker: it orders the entry names by the step they say in some
layout's naming (numerically: 9000 < 10000), then validates from the top down. At 100,000
entries ordering is most of the cost of a `ckpt latest` in a job script, so it is done over the
whole listing at once, in C: the listing is joined as "/a/b/.../z/", each naming with a literal
prefix (`checkpoint-`, `global_step`, `iter_`, ...) finds its digits there with one regex
search, and the digits are sorted by length only; each length group is sorted when it is
reached (without zero padding, numeric order is (length, text) order), so only the steps
visited become integers. A run of `checkpoint-<N>` folders only (ckpt's own, the Trainer's)
takes a faster path still. The namings of each prefix are merged lazily.

Names that say no step (Lightning's `last.ckpt`) come apart (`Ordering.stepless`): their step
is read inside them.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator

from .namings import NAMINGS

_FAST = "checkpoint-"
#: the literal prefixes of the namings, once each ("" for a bare number)
_PREFIXES = tuple(dict.fromkeys(n.prefix for n in NAMINGS if n.prefix is not None))
#: namings without a literal prefix that are searched in the joined text (Orbax's
#: `<prefix>_<N>`), and the file namings (matched name by name among `*.ckpt` names)
_SKIPPED = "|".join(re.escape(p) for p in _PREFIXES if p)  # what a prefixed naming finds
#: (sources: compiled when the general path needs them, and `re` keeps them)
_SEARCHED = tuple(
    dict.fromkeys(
        f"/(?!(?:{_SKIPPED})[0-9]+/)(" + n.source + ")(?=/)"
        for n in NAMINGS
        if n.prefix is None and n.suffix is None
    )
)
_FILE_NAMINGS = tuple(n for n in NAMINGS if n.suffix is not None)
_FILE_SUFFIXES = tuple(dict.fromkeys(n.suffix for n in _FILE_NAMINGS if n.suffix))
#: what every name of a naming other than `checkpoint-<N>` holds: the fast path's gate (a
#: name that merely holds one takes the general path, which is exact)
_GATES = tuple("/" + p for p in _PREFIXES if p and p != _FAST) + tuple(
    s + "/" for s in _FILE_SUFFIXES
)
_GATE_RES = (re.compile(r"/[0-9]+/"), re.compile(r"_[0-9]+/"))
# Just above every `checkpoint-<digits>` name in text order (":" follows "9"), and the names
# that are their step's own spelling (no zero padding).
_ABOVE_FAST = "checkpoint-:"
_CANONICAL_FAST_RE = re.compile(r"checkpoint-(?:0|[1-9][0-9]*)")

Step = tuple[int, str]


def _key(item: Step) -> tuple[int, bool, str]:
    """Highest step first; a step's own spelling before zero-padded ones; then by name."""
    step, name = item
    digits = str(step)
    padded = not name.endswith(digits) or name[: -len(digits)][-1:] == "0"
    return (-step, padded, name)


class Ordering:
    """A listing's checkpoint names, highest step first (lazily), and those with no step.
    (A plain class: `ckpt latest` imports this module, and a dataclass costs it 1 ms.)"""

    __slots__ = ("names", "simple", "stepless", "text")

    def __init__(self, names: list[str], text: str, simple: bool, stepless: list[str]) -> None:
        self.names = names
        self.text = text
        #: only `checkpoint-<N>` names can be checkpoints here (the fast path)
        self.simple = simple
        self.stepless = stepless

    def __contains__(self, name: object) -> bool:
        """Whether the listing holds `name` (a substring search: no set of 100,000 names)."""
        return isinstance(name, str) and "/" not in name and f"/{name}/" in self.text

    def descending(self) -> Iterator[Step]:
        """(step, name), highest step first; canonical names before zero-padded ones."""
        if not self.simple:
            yield from _merged(self.text, self.names)
            return
        top = _highest_fast(self.names)
        if top is not None:
            yield int(top.removeprefix(_FAST)), top
        for item in _prefixed(self.text, _FAST):
            if item[1] != top:
                yield item

    def below(self, step: int) -> Callable[[], list[str]]:
        """The checkpoint names below `step`, found only when asked for."""
        return lambda: [name for other, name in _merged(self.text, self.names) if other < step]


def order(names: list[str]) -> Ordering:
    """The ordering of one listing."""
    text = "/" + "/".join(names) + "/"
    simple = not any(gate in text for gate in _GATES) and not any(
        gate.search(text) for gate in _GATE_RES
    )
    stepless = [] if simple or ".ckpt/" not in text else _stepless(names)
    return Ordering(names, text, simple, stepless)


def _merged(text: str, names: list[str]) -> Iterator[Step]:
    """Every naming's names, merged lazily in `_key` order, each name once."""
    sources: list[Iterator[Step]] = [_prefixed(text, prefix) for prefix in _PREFIXES]
    if _GATE_RES[1].search(text):
        searched = [(int(m.group(2)), m.group(1)) for p in _SEARCHED for m in re.finditer(p, text)]
        sources.append(iter(sorted(searched, key=_key)))
    if any(suffix + "/" in text for suffix in _FILE_SUFFIXES):
        sources.append(iter(sorted(_file_steps(names), key=_key)))
    seen: set[str] = set()
    for item in heapq.merge(*sources, key=_key):
        if item[1] not in seen:
            seen.add(item[1])
            yield item


def _prefixed(text: str, prefix: str) -> Iterator[Step]:
    """The names `<prefix><digits>`, in `_key` order, lazily (see the module's docstring);
    a listing with zero-padded ones of this prefix is sorted whole."""
    escaped = re.escape(prefix)
    if prefix and "/" + prefix not in text:
        return
    digits = re.findall("/" + escaped + "([0-9]+)(?=/)", text)
    digits.sort(key=len)
    # Longer digits are a higher step unless a longer one is zero-padded (Megatron's fixed
    # 7 digits are fine: all of one length, or shorter than the unpadded 8-digit ones).
    if re.search("/" + escaped + "0[0-9]", text):
        shortest = bisect_left(digits, len(digits[0]) + 1, key=len) if digits else 0
        if any(d.startswith("0") for d in digits[shortest:]):
            yield from sorted(((int(d), prefix + d) for d in digits), key=_key)
            return
    end = len(digits)
    while end:
        start = bisect_left(digits, len(digits[end - 1]), 0, end, key=len)
        group = digits[start:end]
        top = max(group)  # most often the only one needed
        yield int(top), prefix + top
        group.remove(top)
        for step_text in sorted(group, reverse=True):
            yield int(step_text), prefix + step_text
        end = start


def _file_names(names: list[str]) -> list[str]:
    """The names that a file naming may match (`*.ckpt`): one pass in C."""
    return [name for name in names if name.endswith(_FILE_SUFFIXES)] if _FILE_SUFFIXES else []


def _file_steps(names: list[str]) -> list[Step]:
    found = []
    for name in _file_names(names):
        for naming in _FILE_NAMINGS:
            match = naming.pattern.fullmatch(name)
            if match is not None and naming.pattern.groups:
                found.append((int(match.group(1)), name))
                break
    return found


def _stepless(names: list[str]) -> list[str]:
    """Names that only a naming without a step matches (Lightning's `last.ckpt`)."""
    found = []
    for name in _file_names(names):
        matched = [n for n in _FILE_NAMINGS if n.pattern.fullmatch(name)]
        if matched and not any(n.pattern.groups for n in matched):
            found.append(name)
    return found


def _highest_fast(names: list[str]) -> str | None:
    """The `checkpoint-<N>` name with the highest step, found without reading the step of
    every name; None when this shortcut cannot tell, and the full order decides.

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
        if top >= _ABOVE_FAST:  # a name such as "trainer_state.json" sorts above them
            top = max(filter(_ABOVE_FAST.__gt__, group), default="")
        if top >= _FAST:  # below _ABOVE_FAST, so it starts with "checkpoint-"
            return top if _CANONICAL_FAST_RE.fullmatch(top) else None
        end = start
    return None
