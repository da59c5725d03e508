"""The `metadata.json` format, both ways: the seed crate's five keys plus ckpt's own `ckpt` block.

Reading validates every rule of DESIGN.md's format table and names the file and the key in its
errors; writing produces exactly what the seed crate (Rust, serde) reads back: the five keys in
order, integers as integers, finite floats, two-space indentation. Unknown keys are kept.

ckpt's own data lives under one key, `ckpt`, written after the seed's keys so that the public
format has a single, collision-free extension point:

    "ckpt": {"format": 1, "saved_at": "2026-11-28T12:00:00.000000Z", "loss": 0.41,
             "manifest": [{"path": "model.bin", "size": 123, "sha256": "..."}]}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson

from .errors import InvalidCheckpointError
from .records import MAX_U64

SEED_KEYS = ("epoch", "global_step", "best_loss", "optimizer_state", "rng_state")
CKPT_KEY = "ckpt"
FORMAT_VERSION = 1
#: Field names that `--field` accepts (the seed's keys and ckpt's own, flattened).
FIELD_NAMES = (*SEED_KEYS, "loss", "saved_at", "manifest", "path")


@dataclass(frozen=True)
class ManifestEntry:
    """One payload file recorded at save time: path relative to the checkpoint folder."""

    path: str
    size: int
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


@dataclass
class Metadata:
    """The validated content of one metadata.json."""

    epoch: int
    global_step: int
    best_loss: float
    optimizer_state: list[float]
    rng_state: int | None = None
    loss: float | None = None
    saved_at: str | None = None
    manifest: list[ManifestEntry] | None = None
    #: unknown top-level keys, kept in their order and written back
    extra: dict[str, Any] = field(default_factory=dict)
    #: unknown keys inside the `ckpt` block (a newer ckpt's), kept as well
    ckpt_extra: dict[str, Any] = field(default_factory=dict)


def _fail(source: str, message: str) -> InvalidCheckpointError:
    return InvalidCheckpointError(f"invalid metadata in {source}: {message}")


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _u64(source: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _bad_u64(source, key, f"got {_type_name(value)}")
    if isinstance(value, float):
        # orjson turns an integer literal past 2**64-1 into a float; say so rather than "float".
        if math.isfinite(value) and value.is_integer() and value > MAX_U64:
            return _bad_u64(source, key, "got an integer past 2^64-1")
        return _bad_u64(source, key, f"got float {value!r}")
    if value < 0:
        return _bad_u64(source, key, f"got negative {value}")
    if value > MAX_U64:
        return _bad_u64(source, key, "got an integer past 2^64-1")
    return value


def _bad_u64(source: str, key: str, got: str) -> int:
    raise _fail(source, f"key '{key}' must be an integer in 0..2^64-1, {got}")


def _finite(source: str, key: str, value: object, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (the seed crate cannot read null here)" if value is None else ""
        raise _fail(source, f"key '{key}' must be a finite number, got {_type_name(value)}{hint}")
    result = float(value)
    if not math.isfinite(result):
        raise _fail(source, f"key '{key}' must be a finite number, got {value!r}")
    return result


def float_sum(values: list[Any]) -> float | None:
    """The sum of `values` when every one is a float, else None: the common case of an
    optimizer state, tested in one pass in C.

    float.conjugate returns a float unchanged and refuses everything else (bool, int, str,
    None: TypeError). At 1.5 million floats this costs 29 ms, against 39 ms for
    `set(map(type, values))` alone and another 10 ms for the sum. A float subclass (NumPy's
    float64) passes: it is a float.
    """
    try:
        return sum(map(float.conjugate, values))
    except TypeError:
        return None


def _numbers(source: str, key: str, value: object) -> list[float]:
    if not isinstance(value, list):
        raise _fail(source, f"key '{key}' must be an array of numbers, got {_type_name(value)}")
    if float_sum(value) is not None:
        return value
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _fail(source, f"key '{key}'[{index}] must be a number, got {_type_name(item)}")
    return [float(item) for item in value]


@lru_cache(maxsize=256)  # a scan parses each saved_at twice: to validate, then to order
def parse_timestamp(text: str) -> float:
    """POSIX seconds of an RFC 3339 timestamp (`Z` or an offset); ValueError if malformed."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    try:
        # year 1 at +14:00 is year 0 in UTC: it parses, but nothing can show it
        stamp.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} is out of range in UTC") from None
    return stamp.timestamp()


def format_timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with microseconds, as ckpt writes `saved_at`."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaves_folder(path: str) -> bool:
    """True when a relative POSIX path would leave its folder: absolute, or with a `..` part
    (PurePosixPath's test, on the split string: a scan makes it for every manifest entry)."""
    return path.startswith("/") or ".." in path.split("/")


def _manifest(source: str, value: object) -> list[ManifestEntry]:
    key = f"{CKPT_KEY}.manifest"
    if not isinstance(value, list):
        raise _fail(source, f"key '{key}' must be an array, got {_type_name(value)}")
    entries = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise _fail(source, f"key '{where}' must be an object, got {_type_name(item)}")
        path, size, digest = item.get("path"), item.get("size"), item.get("sha256")
        if not isinstance(path, str) or not path:
            raise _fail(source, f"key '{where}.path' must be a non-empty string")
        if leaves_folder(path):
            raise _fail(source, f"key '{where}.path' leaves the checkpoint folder: {path!r}")
        if "\x00" in path:
            raise _fail(source, f"key '{where}.path' holds a NUL character: {path!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _fail(source, f"key '{where}.size' must be a non-negative integer")
        if digest is not None and not isinstance(digest, str):
            raise _fail(source, f"key '{where}.sha256' must be a string")
        entries.append(ManifestEntry(path, size, digest))
    return entries


def decode_metadata(data: bytes, source: str) -> Metadata:
    """Parse and validate the bytes of a metadata.json; `source` names the file in errors."""
    if not data.strip():
        raise _fail(source, "the file is empty")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _fail(source, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise _fail(source, "not valid JSON (nested too deeply)") from None
    _check_duplicate_keys(data, source)
    return validate_document(doc, source)


#: keys whose repetition changes what a checkpoint says (orjson silently keeps the last one)
_KNOWN_KEYS = (*SEED_KEYS, CKPT_KEY, "format", "saved_at", "loss", "manifest")
_KNOWN_KEY_NEEDLES = tuple(b'"%s"' % key.encode() for key in _KNOWN_KEYS)


def _check_duplicate_keys(data: bytes, source: str) -> None:
    """Refuse an object that holds one key twice: which one counts is a guess (orjson takes
    the last, the seed crate refuses the file). Only when a known key's name appears more than
    once is the slow, exact check run; a file ckpt wrote never gets there."""
    for needle in _KNOWN_KEY_NEEDLES:
        if data.count(needle) > 1:
            break
    else:
        return
    import json

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _fail(source, f"duplicate key {key!r}")
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(data, object_pairs_hook=refuse_duplicates)
    except (ValueError, RecursionError):
        return  # orjson parsed it: whatever the json module dislikes is not a duplicate key


def validate_document(doc: object, source: str) -> Metadata:
    """Validate an already-parsed metadata document."""
    if not isinstance(doc, dict):
        raise _fail(source, f"expected a JSON object, got {_type_name(doc)}")
    for key in SEED_KEYS[:4]:
        if key not in doc:
            raise _fail(source, f"missing key '{key}'")
    best_loss = _finite(source, "best_loss", doc["best_loss"])
    assert best_loss is not None
    rng = doc.get("rng_state")
    meta = Metadata(
        epoch=_u64(source, "epoch", doc["epoch"]),
        global_step=_u64(source, "global_step", doc["global_step"]),
        best_loss=best_loss,
        optimizer_state=_numbers(source, "optimizer_state", doc["optimizer_state"]),
        rng_state=None if rng is None else _u64(source, "rng_state", rng),
        extra={k: v for k, v in doc.items() if k not in SEED_KEYS and k != CKPT_KEY},
    )
    block = doc.get(CKPT_KEY)
    if block is not None:
        _read_ckpt_block(source, block, meta)
    return meta


def _read_ckpt_block(source: str, block: object, meta: Metadata) -> None:
    if not isinstance(block, dict):
        raise _fail(source, f"key '{CKPT_KEY}' must be an object, got {_type_name(block)}")
    meta.loss = _finite(source, f"{CKPT_KEY}.loss", block.get("loss"), nullable=True)
    saved_at = block.get("saved_at")
    if saved_at is not None:
        if not isinstance(saved_at, str):
            raise _fail(source, f"key '{CKPT_KEY}.saved_at' must be an RFC 3339 string")
        try:
            parse_timestamp(saved_at)
        except ValueError:
            raise _fail(
                source, f"key '{CKPT_KEY}.saved_at' is not RFC 3339: {saved_at!r}"
            ) from None
        meta.saved_at = saved_at
    if block.get("manifest") is not None:
        meta.manifest = _manifest(source, block["manifest"])
    known = {"format", "saved_at", "loss", "manifest"}
    meta.ckpt_extra = {k: v for k, v in block.items() if k not in known}


def check_u64(name: str, value: object) -> int:
    """Validate an integer field before writing; raises ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in 0..2^64-1, got {_type_name(value)}")
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"{name} must be an integer in 0..2^64-1, got {value}")
    return value


def check_finite(name: str, value: object) -> float:
    """Validate a float field before writing; raises ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (JSON has no {value!r}), got {value!r}")
    return float(value)


def normalize_optimizer_state(values: object) -> list[float]:
    """The optimizer state as a list of finite floats; ValueError otherwise.

    Accepts any sequence of numbers, or an object with `.tolist()` (a NumPy array or a tensor).
    A list of floats is passed through without a copy: states can hold millions of values.
    Float subclasses (NumPy's float64) are kept; the encoder writes them as plain floats.
    """
    if not isinstance(values, list):
        tolist = getattr(values, "tolist", None)
        if callable(tolist):
            values = tolist()
        elif isinstance(values, Sequence) and not isinstance(values, str | bytes):
            values = list(values)
        else:
            raise ValueError(
                f"optimizer_state must be a sequence of numbers, got {_type_name(values)}"
            )
    assert isinstance(values, list)
    total = float_sum(values)
    if total is None:  # not all floats: convert integers, name the first value that fails
        values = [_state_float(index, item) for index, item in enumerate(values)]
        total = sum(values)
    # The sum is a fast all-finite check: any NaN or infinity makes it non-finite. Only when it
    # is not finite (possibly an overflow of huge finite values) do we look item by item.
    if not math.isfinite(total):
        for index, item in enumerate(values):
            if not math.isfinite(item):
                raise ValueError(
                    f"optimizer_state[{index}] must be finite (JSON has no {item!r}), got {item!r}"
                )
    return values


def _state_float(index: int, item: object) -> float:
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise ValueError(f"optimizer_state[{index}] must be a number, got {_type_name(item)}")
    try:
        return float(item)
    except OverflowError:  # an int past 1.8e308
        assert isinstance(item, int)
        raise ValueError(
            f"optimizer_state[{index}] is an integer of {item.bit_length()} bits, "
            "too large for a float"
        ) from None


def _document(meta: Metadata, optimizer_state: Callable[[], list[float]]) -> dict[str, Any]:
    """The document to write, every value checked in the order the keys are written."""
    doc: dict[str, Any] = {
        "epoch": check_u64("epoch", meta.epoch),
        "global_step": check_u64("global_step", meta.global_step),
        "best_loss": check_finite("best_loss", meta.best_loss),
        "optimizer_state": optimizer_state(),
        "rng_state": None if meta.rng_state is None else check_u64("rng_state", meta.rng_state),
    }
    for key, value in meta.extra.items():
        if key not in doc and key != CKPT_KEY:
            doc[key] = value
    block: dict[str, Any] = {"format": FORMAT_VERSION}
    if meta.saved_at is not None:
        block["saved_at"] = meta.saved_at
    if meta.loss is not None:
        block["loss"] = check_finite("loss", meta.loss)
    if meta.manifest is not None:
        block["manifest"] = [entry.to_json() for entry in meta.manifest]
    for key, value in meta.ckpt_extra.items():
        block.setdefault(key, value)
    doc[CKPT_KEY] = block
    return doc


def _float_subclass(value: object) -> float:
    """orjson's fallback for what it does not encode itself: a float subclass (NumPy's float64)
    is written as the float it is; anything else stays unencodable."""
    if isinstance(value, float):
        return float.conjugate(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc, default=_float_subclass, option=orjson.OPT_INDENT_2)
    except TypeError as exc:  # orjson's JSONEncodeError: an extra key holds something unencodable
        raise ValueError(f"metadata cannot be written as JSON: {exc}") from None


def check_metadata(meta: Metadata) -> None:
    """Raise the ValueError that `encode_metadata` would, without encoding the optimizer state,
    and leave `meta.optimizer_state` normalized, so that `encode_metadata(meta,
    state_checked=True)` later encodes it once and does not check it again (saving checks up
    front, before anything touches the disk: for millions of floats, each pass counts)."""
    normalized: list[list[float]] = []

    def optimizer_state() -> list[float]:
        normalized.append(normalize_optimizer_state(meta.optimizer_state))
        return []

    _dumps(_document(meta, optimizer_state))
    meta.optimizer_state = normalized[0]


def encode_metadata(meta: Metadata, *, state_checked: bool = False) -> bytes:
    """The bytes of metadata.json: seed keys in order, extras, then the `ckpt` block.

    `state_checked`: `check_metadata(meta)` has normalized the optimizer state already.
    """

    def optimizer_state() -> list[float]:
        if state_checked:
            return meta.optimizer_state
        return normalize_optimizer_state(meta.optimizer_state)

    return _dumps(_document(meta, optimizer_state))


def metadata_to_json(
    meta: Metadata, *, path: str | None = None, status: str | None = None
) -> dict[str, Any]:
    """A flat JSON-ready view (for --json and --field): seed keys, then ckpt's, then extras."""
    out: dict[str, Any] = {}
    if path is not None:
        out["path"] = path
    if status is not None:
        out["status"] = status
    out.update(
        epoch=meta.epoch,
        global_step=meta.global_step,
        best_loss=meta.best_loss,
        optimizer_state=meta.optimizer_state,
        rng_state=meta.rng_state,
        loss=meta.loss,
        saved_at=meta.saved_at,
        manifest=None if meta.manifest is None else [m.to_json() for m in meta.manifest],
    )
    for key, value in meta.extra.items():
        out.setdefault(key, value)
    return out
