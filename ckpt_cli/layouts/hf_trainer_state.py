"""The Hugging Face Trainer's `trainer_state.json`, as pure functions on its bytes.

The Trainer writes it with Python's `json.dumps(..., indent=2, sort_keys=True)`: NaN and
Infinity appear as bare literals (which orjson refuses, so those files take the standard
library's parser), the keys come sorted (`best_global_step`, ..., `global_step`, ...,
`log_history`, `logging_steps`, ...), and `log_history` grows by an entry per logging step:
megabytes in a long run. `list` reads the head (every key before `log_history`) and the end of
the history (the entries since the previous checkpoint); `load` parses the whole file.

A checkpoint's own loss is the `eval_loss` logged at its step, else the training `loss`
logged at its step. Its best loss is the lowest eval loss logged up to its step, or, in a run
that logged none, the lowest training loss: never a training loss against eval losses, which
measure another thing (NaN never counts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.errors import InvalidCheckpointError

STATE_NAME = "trainer_state.json"
_HISTORY_KEY = b'\n  "log_history": ['
#: how the history closes: the array's `]` at the top level's indent, then the next key
_HISTORY_END = b"\n  ],\n"
_ENTRY_START = b"\n    {\n"


def loads(data: bytes, source: str) -> Any:
    """JSON as Python's json writes it (NaN, Infinity allowed); one clear error otherwise."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCheckpointError(
            f"invalid {STATE_NAME} in {source}: not valid JSON ({exc})"
        ) from None


def _number(value: object) -> float | None:
    kind = type(value)
    return float(value) if kind is float or kind is int else None  # type: ignore[arg-type]


def step_losses(history: Iterable[Mapping[str, Any]]) -> tuple[dict[int, float], dict[int, float]]:
    """The training losses and the eval losses logged, by step."""
    train: dict[int, float] = {}
    evals: dict[int, float] = {}
    for entry in history:
        if type(entry) is not dict:
            continue
        step = entry.get("step")
        if type(step) is not int:
            continue
        value = entry.get("eval_loss")
        if value is not None and (number := _number(value)) is not None:
            evals[step] = number
        value = entry.get("loss")
        if value is not None and (number := _number(value)) is not None:
            train[step] = number
    return train, evals


def lowest(values: Iterable[float]) -> float | None:
    """The lowest value that is a number (NaN never is the best)."""
    found = [v for v in values if not math.isnan(v)]
    return min(found) if found else None


@dataclass(frozen=True)
class TrainerState:
    """What a trainer_state.json says about its checkpoint."""

    global_step: int
    epoch: float | None
    loss: float | None
    #: the lowest eval loss and the lowest training loss logged up to global_step
    best_eval: float | None
    best_train: float | None
    best_metric: float | None
    best_global_step: int | None
    best_model_checkpoint: str | None
    #: the history's last entry, to check that a later file continues this one
    last_entry: Mapping[str, Any] | None

    @property
    def best_loss(self) -> float | None:
        return self.best_eval if self.best_eval is not None else self.best_train


def _own(step: int, train: Mapping[int, float], evals: Mapping[int, float]) -> float | None:
    return evals[step] if step in evals else train.get(step)


def _head_values(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    step = doc.get("global_step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise InvalidCheckpointError(
            f"invalid {STATE_NAME} in {source}: global_step must be a whole number, got {step!r}"
        )
    best_step = doc.get("best_global_step")
    best_path = doc.get("best_model_checkpoint")
    return {
        "global_step": step,
        "epoch": _number(doc.get("epoch")),
        "best_metric": _number(doc.get("best_metric")),
        "best_global_step": best_step if isinstance(best_step, int) else None,
        "best_model_checkpoint": best_path if isinstance(best_path, str) else None,
    }


def parse_state(data: bytes, source: str) -> TrainerState:
    """A whole trainer_state.json, validated as far as ckpt relies on it."""
    doc = loads(data, source)
    if not isinstance(doc, dict):
        raise InvalidCheckpointError(f"invalid {STATE_NAME} in {source}: not a JSON object")
    head = _head_values(doc, source)
    history = doc.get("log_history", [])
    if not isinstance(history, list):
        raise InvalidCheckpointError(f"invalid {STATE_NAME} in {source}: log_history not a list")
    train, evals = step_losses(history)
    step = head["global_step"]
    return TrainerState(
        **head,
        loss=_own(step, train, evals),
        best_eval=lowest(v for s, v in evals.items() if s <= step),
        best_train=lowest(v for s, v in train.items() if s <= step),
        last_entry=history[-1] if history and isinstance(history[-1], dict) else None,
    )


def split_head(head: bytes) -> tuple[dict[str, Any], int] | None:
    """The keys before `log_history` from the start of a file, and where the history's `[`
    ends; None when the file does not start the way the Trainer writes it."""
    at = head.find(_HISTORY_KEY)
    if at < 0 or not head.startswith(b"{"):
        return None
    try:
        doc = loads(head[:at].rstrip().removesuffix(b",") + b"\n}", "head")
    except InvalidCheckpointError:
        return None
    return (doc, at + len(_HISTORY_KEY)) if isinstance(doc, dict) else None


def tail_entries(tail: bytes) -> tuple[list[Mapping[str, Any]], bool] | None:
    """The history entries that lie wholly in `tail` (the end of a file), oldest first, and
    whether the array's start was reached; None when the end is not the Trainer's shape."""
    end = tail.rfind(_HISTORY_END)
    if end < 0:
        return None
    body = tail[:end]
    opened = body.rfind(b"[\n    {\n")
    start = body.find(_ENTRY_START) if opened < 0 else opened + 1
    if start < 0:
        return ([], True) if body.rstrip().endswith(b"[") else None
    try:
        entries = loads(b"[" + body[start:] + b"\n]", "tail")
    except InvalidCheckpointError:
        return None
    if not isinstance(entries, list):
        return None
    return [e for e in entries if isinstance(e, dict)], opened >= 0


def continued(
    head: Mapping[str, Any], entries: list[Mapping[str, Any]], previous: TrainerState, source: str
) -> TrainerState | None:
    """This file's state from its head and the end of its history, given the state of the
    checkpoint before it in the same run; None when the history read does not reach back to
    the previous file's last entry (then the whole file must be read)."""
    values = _head_values(head, source)
    step = values["global_step"]
    if previous.last_entry is None or previous.global_step > step:
        return None
    try:
        at = max(i for i, e in enumerate(entries) if e == previous.last_entry)
    except ValueError:
        return None
    new_train, new_evals = step_losses(entries[at + 1 :])
    own = _own(step, new_train, new_evals)
    if own is None:  # the step's own entries are older than the previous file's last one
        own = _own(step, *step_losses(entries))

    def best(new: Mapping[int, float], before: float | None) -> float | None:
        values = [v for s, v in new.items() if s <= step]
        return lowest([*values, before] if before is not None else values)

    return TrainerState(
        **values,
        loss=own,
        best_eval=best(new_evals, previous.best_eval),
        best_train=best(new_train, previous.best_train),
        last_entry=entries[-1] if entries else previous.last_entry,
    )
