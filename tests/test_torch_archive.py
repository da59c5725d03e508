"""The reader of what `torch.save` wrote: a zip's end record, and a pickle's plain values read
from its opcodes without unpickling (layouts/torch_archive.py)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli.layouts.torch_archive import (
    OPAQUE,
    archive_record,
    end_record,
    plain_values,
    top_level,
)
from ckpt_cli.storage.local import LocalBackend

from .fixture_runs import FIXTURES

_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
_PLAIN = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_PLAIN, st.sampled_from([2, 3, 4, 5]))
def test_plain_data_reads_back_as_pickle_wrote_it(value: Any, protocol: int) -> None:
    assert plain_values(pickle.dumps(value, protocol=protocol)) == value


class _Code:
    """Something a pickle would construct by calling code."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("never called",))


def test_a_nested_dict_is_never_taken_for_the_top_level_one() -> None:
    data = pickle.dumps({"x": {"step": 5}, "step": 9}, 2)  # `}`, "step", 5, SETITEM nested
    assert top_level(data, frozenset(("step",))) == {"x": {"step": 5}, "step": 9}


def test_constructed_objects_stay_opaque_and_nothing_runs(capsys: pytest.CaptureFixture) -> None:
    data = pickle.dumps({"global_step": 7, "callback": _Code(), "items": [_Code(), 1]}, 2)
    found = plain_values(data)
    assert found == {"global_step": 7, "callback": OPAQUE, "items": [OPAQUE, 1]}
    assert capsys.readouterr().out == ""


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _PLAIN, min_size=1, max_size=8), st.data())
def test_stopping_at_the_wanted_keys_gives_their_values(value: dict[str, Any], data: Any) -> None:
    scalars = [k for k, v in value.items() if isinstance(v, (str, int, float, bytes, type(None)))]
    wanted = (
        frozenset(data.draw(st.lists(st.sampled_from(scalars), max_size=3)))
        if scalars
        else frozenset()
    )
    found = top_level(pickle.dumps(value, 2), wanted)
    assert found is not None
    assert {k: found[k] for k in wanted} == {k: value[k] for k in wanted}


def test_malformed_pickles_are_errors_not_crashes() -> None:
    data = pickle.dumps({"a": [1, 2, 3]}, 2)
    for cut in range(1, len(data) - 1):
        with pytest.raises(ValueError):
            plain_values(data[:cut])
    assert top_level(b"\x80\x02K\x01.") is None  # not a dict


def _blob(data: bytes) -> Any:
    class Blob:
        size = len(data)

        def read(self, start: int, end: int) -> bytes:
            return data[start:end]

        def read_all(self) -> bytes:
            return data

    return Blob()


def test_a_zip_is_whole_only_with_its_end_record() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"epoch": 1}, 2))
        archive.writestr("archive/data/0", b"\0" * 4000)
    data = buffer.getvalue()
    assert archive_record(_blob(data)) == (True, pickle.dumps({"epoch": 1}, 2))
    for cut in (len(data) - 1, len(data) // 2, 30, 0):
        assert end_record(_blob(data[:cut])) is None


def test_the_real_frameworks_records() -> None:
    backend = LocalBackend()
    lightning = FIXTURES / "lightning/metric-names/checkpoints/epoch=3-step=32-val_loss=0.2417.ckpt"
    deepspeed = FIXTURES / "deepspeed/zero2/global_step6/mp_rank_00_model_states.pt"
    for path, keys in (
        (lightning, ("epoch", "global_step", "pytorch-lightning_version")),
        (deepspeed, ("global_steps", "dp_world_size", "mp_world_size")),
    ):
        with backend.open_blob(Path(path)) as blob:
            whole, record = archive_record(blob)
        assert whole and record is not None
        full = top_level(record)
        assert full is not None
        early = top_level(record, frozenset(keys))
        assert early is not None
        assert {k: early[k] for k in keys} == {k: full[k] for k in keys}
    assert full["global_steps"] == 6 and full["dp_world_size"] == 1
