"""The metadata.json format both ways: what the seed crate writes loads, what ckpt writes is
what the seed crate reads (keys in order, integer types, finite floats), and every invalid
input is refused with an error naming the file and the key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli import Checkpoint, InvalidCheckpointError
from ckpt_cli.core.format import (
    SEED_KEYS,
    Metadata,
    decode_metadata,
    encode_metadata,
    normalize_optimizer_state,
)

MAX_U64 = 2**64 - 1

# Written by hand in the exact shape of serde_json::to_string_pretty of the seed's struct:
# two-space indent, one array element per line, no trailing newline.
SEED_PRETTY = (
    "{\n"
    '  "epoch": 2,\n'
    '  "global_step": 1000,\n'
    '  "best_loss": 0.42,\n'
    '  "optimizer_state": [\n'
    "    0.1,\n"
    "    0.2,\n"
    "    0.3\n"
    "  ],\n"
    '  "rng_state": 12345\n'
    "}"
)
SEED_PRETTY_NONE = (
    "{\n"
    '  "epoch": 0,\n'
    '  "global_step": 0,\n'
    '  "best_loss": 1e-5,\n'
    '  "optimizer_state": [],\n'
    '  "rng_state": null\n'
    "}"
)


def test_seed_written_file_loads(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-1000"
    folder.mkdir()
    (folder / "metadata.json").write_text(SEED_PRETTY)
    loaded = Checkpoint.load(folder)
    assert (loaded.epoch, loaded.global_step, loaded.best_loss) == (2, 1000, 0.42)
    assert loaded.optimizer_state == [0.1, 0.2, 0.3]
    assert loaded.rng_state == 12345
    assert loaded.loss is None and loaded.saved_at is None and loaded.manifest is None


def test_seed_written_file_with_null_rng_and_empty_state_loads(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-0"
    folder.mkdir()
    (folder / "metadata.json").write_text(SEED_PRETTY_NONE)
    loaded = Checkpoint.load(folder / "metadata.json")
    assert loaded.rng_state is None and loaded.optimizer_state == [] and loaded.best_loss == 1e-5


def test_missing_rng_state_reads_as_null() -> None:
    meta = decode_metadata(
        b'{"epoch":1,"global_step":2,"best_loss":0.5,"optimizer_state":[]}', "m.json"
    )
    assert meta.rng_state is None


def test_ckpt_writes_the_seed_keys_first_in_order_with_seed_types(tmp_path: Path) -> None:
    path = Checkpoint(
        epoch=5,
        global_step=1000,
        best_loss=0.42,
        optimizer_state=[0.1, 0.2, 0.3],
        rng_state=MAX_U64,
    ).save(tmp_path / "checkpoint-1000")
    text = (path / "metadata.json").read_text()
    doc = json.loads(text)
    assert list(doc)[:5] == list(SEED_KEYS)
    assert type(doc["epoch"]) is int and type(doc["global_step"]) is int
    assert type(doc["best_loss"]) is float
    assert doc["rng_state"] == MAX_U64 and type(doc["rng_state"]) is int
    assert all(type(v) is float for v in doc["optimizer_state"])
    # the literal text: integers are never written as 1.0, two-space indentation
    assert '\n  "epoch": 5,\n  "global_step": 1000,\n  "best_loss": 0.42,\n' in text
    assert '"rng_state": 18446744073709551615' in text
    assert "NaN" not in text and "Infinity" not in text


def test_integer_best_loss_is_written_as_a_float(tmp_path: Path) -> None:
    path = Checkpoint(epoch=0, global_step=1, best_loss=1).save(tmp_path / "checkpoint-1")
    assert '"best_loss": 1.0' in (path / "metadata.json").read_text()


def test_extra_keys_are_kept_on_load_and_save(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-7"
    folder.mkdir()
    doc = json.loads(SEED_PRETTY)
    doc["global_step"] = 7
    doc["lr"] = 0.001
    doc["tags"] = ["a", "b"]
    (folder / "metadata.json").write_text(json.dumps(doc, indent=2))
    loaded = Checkpoint.load(folder)
    assert loaded.extra == {"lr": 0.001, "tags": ["a", "b"]}
    loaded.save(tmp_path / "copy" / "checkpoint-7")
    again = json.loads((tmp_path / "copy" / "checkpoint-7" / "metadata.json").read_text())
    assert again["lr"] == 0.001 and again["tags"] == ["a", "b"]
    assert list(again)[:5] == list(SEED_KEYS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epoch", -1), ("global_step", 2**64), ("rng_state", -5), ("epoch", 1.5)],
)
def test_writing_refuses_what_the_seed_could_not_read(
    tmp_path: Path, field: str, value: object
) -> None:
    values: dict[str, object] = {"epoch": 1, "global_step": 1, "best_loss": 0.5}
    values[field] = value
    with pytest.raises(ValueError, match=f"{field} must be an integer in 0..2\\^64-1"):
        Checkpoint(**values).save(tmp_path / "checkpoint-1")  # type: ignore[arg-type]
    assert not (tmp_path / "checkpoint-1").exists()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_writing_refuses_non_finite_losses(tmp_path: Path, value: float) -> None:
    with pytest.raises(ValueError, match="best_loss must be a finite number"):
        Checkpoint(epoch=1, global_step=1, best_loss=value).save(tmp_path / "checkpoint-1")
    with pytest.raises(ValueError, match=r"optimizer_state\[1\] must be finite"):
        Checkpoint(epoch=1, global_step=1, best_loss=0.1, optimizer_state=[0.0, value]).save(
            tmp_path / "checkpoint-1"
        )
    assert not (tmp_path / "checkpoint-1").exists()


def _doc(**changes: object) -> bytes:
    doc: dict[str, object] = {
        "epoch": 1,
        "global_step": 10,
        "best_loss": 0.5,
        "optimizer_state": [0.1],
        "rng_state": 7,
    }
    doc.update(changes)
    return json.dumps(doc).encode()


BAD = [
    (_doc(global_step=-1), "key 'global_step' must be an integer in 0..2^64-1, got negative -1"),
    (_doc(global_step=1.5), "key 'global_step' must be an integer in 0..2^64-1, got float 1.5"),
    (_doc(global_step=10.0), "key 'global_step' must be an integer in 0..2^64-1, got float 10.0"),
    (_doc(epoch="3"), "key 'epoch' must be an integer in 0..2^64-1, got string"),
    (_doc(epoch=True), "key 'epoch' must be an integer in 0..2^64-1, got boolean"),
    (_doc(epoch=None), "key 'epoch' must be an integer in 0..2^64-1, got null"),
    (
        b'{"epoch":1,"global_step":18446744073709551616,"best_loss":0.5,"optimizer_state":[]}',
        "key 'global_step' must be an integer in 0..2^64-1, got an integer past 2^64-1",
    ),
    (
        b'{"epoch":1,"global_step":1,"best_loss":0.5,"optimizer_state":[],"rng_state":18446744073709551616}',
        "key 'rng_state' must be an integer in 0..2^64-1, got an integer past 2^64-1",
    ),
    (_doc(rng_state=0.5), "key 'rng_state' must be an integer in 0..2^64-1, got float 0.5"),
    (
        _doc(best_loss=None),
        "key 'best_loss' must be a finite number, got null (the seed crate cannot read null here)",
    ),
    (_doc(best_loss="0.5"), "key 'best_loss' must be a finite number, got string"),
    (
        _doc(optimizer_state={"a": 1}),
        "key 'optimizer_state' must be an array of numbers, got object",
    ),
    (_doc(optimizer_state=[0.1, "x"]), "key 'optimizer_state'[1] must be a number, got string"),
    (_doc(optimizer_state=[0.1, None]), "key 'optimizer_state'[1] must be a number, got null"),
    (b'{"epoch":1,"global_step":1,"best_loss":NaN,"optimizer_state":[]}', "not valid JSON"),
    (b'{"epoch":1,"global_step":1,"best_loss":Infinity,"optimizer_state":[]}', "not valid JSON"),
    (b'{"epoch":1,"global_step":1,"best_loss":1e400,"optimizer_state":[]}', "not valid JSON"),
    (b'{"epoch":1,"global_step":1,"best_loss":0.5,"optimizer_state":[0.1,', "not valid JSON"),
    (b"", "the file is empty"),
    (b"[1, 2]", "expected a JSON object, got array"),
    (b'"text"', "expected a JSON object, got string"),
    (b'{"epoch":1,"global_step":1,"best_loss":0.5}', "missing key 'optimizer_state'"),
    (b'{"global_step":1,"best_loss":0.5,"optimizer_state":[]}', "missing key 'epoch'"),
    (_doc(ckpt={"saved_at": "yesterday"}), "key 'ckpt.saved_at' is not RFC 3339: 'yesterday'"),
    (_doc(ckpt={"loss": "low"}), "key 'ckpt.loss' must be a finite number, got string"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_reading_refuses_invalid_metadata_naming_file_and_key(data: bytes, message: str) -> None:
    with pytest.raises(InvalidCheckpointError) as info:
        decode_metadata(data, "run/checkpoint-10/metadata.json")
    text = str(info.value)
    assert text.startswith("invalid metadata in run/checkpoint-10/metadata.json: ")
    assert message in text
    assert "\n" not in text


floats = st.floats(allow_nan=False, allow_infinity=False)
u64 = st.integers(min_value=0, max_value=MAX_U64)


@settings(max_examples=150, deadline=None)
@given(
    epoch=u64,
    step=u64,
    best=floats,
    state=st.lists(floats, max_size=20),
    rng=st.none() | u64,
    loss=st.none() | floats,
)
def test_round_trip_property(
    epoch: int, step: int, best: float, state: list[float], rng: int | None, loss: float | None
) -> None:
    meta = Metadata(epoch, step, best, state, rng, loss=loss, extra={"note": "x"})
    data = encode_metadata(meta)
    back = decode_metadata(data, "m.json")
    assert (back.epoch, back.global_step, back.best_loss) == (epoch, step, best)
    assert back.optimizer_state == state and back.rng_state == rng and back.loss == loss
    assert back.extra == {"note": "x"}
    doc = orjson.loads(data)
    assert list(doc)[:5] == list(SEED_KEYS)
    assert all(type(doc[k]) is int for k in ("epoch", "global_step"))


class _Float64(float):
    """Stands in for NumPy's float64: a float subclass that orjson does not encode itself."""


def _reference_state(values: list[object]) -> list[float]:
    """normalize_optimizer_state written plainly, item by item: what the fast path must match."""
    out = []
    for index, item in enumerate(values):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise ValueError(f"optimizer_state[{index}] must be a number")
        out.append(float(item))
    for index, item in enumerate(out):
        if not math.isfinite(item):
            raise ValueError(f"optimizer_state[{index}] must be finite")
    return out


state_items = (
    st.floats()  # NaN and both infinities included
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.none()
    | st.text(max_size=3)
    | st.floats(allow_nan=False).map(_Float64)
    | st.sampled_from([1e308, -1e308])  # finite values whose sum overflows
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(state_items, max_size=12))
def test_state_check_agrees_with_the_plain_item_by_item_check(values: list[object]) -> None:
    meta = Metadata(1, 1, 0.5, list(values), None)
    try:
        expected = _reference_state(values)
    except ValueError as exc:
        with pytest.raises(ValueError) as info:
            encode_metadata(meta)
        assert str(info.value).startswith(str(exc))  # same index, same reason
        return
    data = encode_metadata(meta)
    assert data == encode_metadata(Metadata(1, 1, 0.5, expected, None))
    assert decode_metadata(data, "m.json").optimizer_state == expected


def test_float_subclasses_are_kept_and_written_as_plain_floats() -> None:
    values = [_Float64(0.25), 1.5, _Float64(-3.0)]
    assert normalize_optimizer_state(values) is values  # no copy of a million-value state
    data = encode_metadata(Metadata(1, 1, 0.5, values, None))
    assert data == encode_metadata(Metadata(1, 1, 0.5, [0.25, 1.5, -3.0], None))
    with pytest.raises(ValueError, match=r"optimizer_state\[1\] must be finite"):
        normalize_optimizer_state([_Float64(1.0), _Float64(math.nan)])


def test_an_integer_too_large_for_a_float_is_refused_by_index() -> None:
    with pytest.raises(ValueError, match=r"optimizer_state\[1\] is an integer of 1329 bits"):
        normalize_optimizer_state([0.5, 10**400])


def test_reading_converts_integers_and_refuses_booleans_in_the_state() -> None:
    assert decode_metadata(_doc(optimizer_state=[1, 0.5, -2]), "m.json").optimizer_state == [
        1.0,
        0.5,
        -2.0,
    ]
    with pytest.raises(InvalidCheckpointError, match=r"'optimizer_state'\[2\] must be a number"):
        decode_metadata(_doc(optimizer_state=[0.5, 1, True]), "m.json")
