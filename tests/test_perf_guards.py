"""Performance guards that count rather than time: what `ckpt latest` imports, how many
metadata.json files it opens among 10,000 checkpoints, how many bytes `list` reads of a large
one; and the property that list's partial read of a large metadata.json agrees with the full
parse (`make bench` does the timing, never the tests)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckpt_cli.core.errors import InvalidCheckpointError
from ckpt_cli.core.format import ManifestEntry, Metadata, encode_metadata
from ckpt_cli.core.namings import NAMINGS
from ckpt_cli.core.ordering import _highest_fast as _highest_name
from ckpt_cli.core.ordering import _key, order
from ckpt_cli.layouts.ckpt import summary_metadata
from ckpt_cli.ops.load import read_metadata
from ckpt_cli.ops.scan import scan
from ckpt_cli.storage.local import LocalBackend

from .test_process import _count_metadata_opens


def _descending_steps(names: list[str]) -> list[tuple[int, str]]:
    return list(order(names).descending())


def _candidates(names: list[str]) -> list[tuple[int, str]]:
    """The plain per-name order that the fast one must equal: every name that says a step in
    some naming, highest first, a step's own spelling before zero-padded ones."""
    found = {}
    for name in names:
        for naming in NAMINGS:
            match = naming.pattern.fullmatch(name)
            if match is not None and naming.pattern.groups:
                found.setdefault(name, int(match.group(1)))
    return sorted(((step, name) for name, step in found.items()), key=_key)


def read_summary(folder: Path) -> Metadata:
    """What list reads of a folder's metadata.json (a folder without one: as a full read)."""
    found = summary_metadata(LocalBackend(), folder, None)
    return read_metadata(folder) if found is None else found[0]


#: a state that makes metadata.json larger than what is simply read whole (64 KiB)
BIG_STATE = [i / 7 for i in range(6000)]


def _write_run(run_dir: Path, count: int) -> None:
    template = '{\n  "epoch": 0,\n  "global_step": %d,\n  "best_loss": 0.5,\n  "optimizer_state": [],\n  "rng_state": null\n}'  # noqa: E501
    for index in range(count):
        step = index * 10
        folder = f"{run_dir}/checkpoint-{step}"
        os.mkdir(folder)
        with open(f"{folder}/metadata.json", "w") as handle:
            handle.write(template % step)


def test_latest_opens_one_metadata_file_among_ten_thousand(run_dir: Path) -> None:
    _write_run(run_dir, 10_000)
    count, out = _count_metadata_opens(run_dir, "latest", str(run_dir))
    assert out == f"{run_dir / 'checkpoint-99990'}\n"
    assert count == 1


def test_latest_imports_no_renderer_hashing_or_retention(run_dir: Path) -> None:
    _write_run(run_dir, 3)
    code = (
        "import sys\n"
        "from ckpt_cli.cli import app\n"
        "try:\n"
        f"    app(['latest', {str(run_dir)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == f"{run_dir / 'checkpoint-20'}\n"
    modules = set(done.stderr.rsplit("MODULES ", 1)[1].split())
    ours = {m for m in modules if m.startswith("ckpt_cli")}
    assert ours == {
        "ckpt_cli",
        # the command line: every command is registered, none of their work is imported
        "ckpt_cli.cli",
        "ckpt_cli.cli.app",
        "ckpt_cli.cli.coercion",  # keeps Typer from importing pydantic (~150 ms)
        "ckpt_cli.cli.output",
        "ckpt_cli.cli.params",
        "ckpt_cli.cli.read_commands",
        "ckpt_cli.cli.write_commands",
        # the core that latest needs: no retention engine, no durations, no manifest
        "ckpt_cli.core",
        "ckpt_cli.core.errors",
        "ckpt_cli.core.format",
        # the layouts' namings as plain data, and the order of a listing by them
        "ckpt_cli.core.namings",
        "ckpt_cli.core.ordering",
        "ckpt_cli.core.paths",  # tells a URL from a path; fsspec is imported only for URLs
        "ckpt_cli.core.records",
        # one layout (ckpt's), without its partial reader of large files
        "ckpt_cli.layouts",
        "ckpt_cli.layouts.ckpt",
        # one operation, and the local backend without its commit, deletion or listing data
        "ckpt_cli.ops",
        "ckpt_cli.ops.latest",
        "ckpt_cli.storage",
        "ckpt_cli.storage.base",
        "ckpt_cli.storage.local",
    }
    assert not {m for m in modules if m == "rich" or m.startswith("rich.")}
    assert "filelock" not in modules
    assert not {m for m in modules if m.split(".")[0] in ("fsspec", "s3fs", "botocore", "pydantic")}


def _rchar() -> int:
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_list_reads_the_ends_of_large_metadata_files_only(run_dir: Path) -> None:
    manifest = [ManifestEntry("model.bin", 4, "0" * 64)]
    for step in (10, 20, 30):
        folder = run_dir / f"checkpoint-{step}"
        folder.mkdir()
        meta = Metadata(1, step, 0.5, [i / 3 for i in range(50_000)], 7, 0.25, None, manifest)
        meta.saved_at = "2026-01-01T00:00:00.000000Z"
        (folder / "metadata.json").write_bytes(encode_metadata(meta))
    size = (run_dir / "checkpoint-10" / "metadata.json").stat().st_size
    assert size > 900_000
    before = _rchar()
    records = scan(run_dir)
    read = _rchar() - before
    assert [(r.status, r.epoch, r.loss) for r in records] == [("valid", 1, 0.25)] * 3
    assert read / 3 <= 24 * 1024  # 4 KiB head + 16 KiB tail, whatever the state's size


# ---- the partial read agrees with the full parse -------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('ab]["{}:,\\ \n"optimizer_state'), max_size=30),
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_extra_key = st.sampled_from(
    ["note", "optimizer_state_v2", "x]", 'q"', "ema", "rng", "a", "ckpt_old", "lr"]
)


@st.composite
def documents(draw: Any) -> tuple[dict[str, Any], str]:
    """A metadata document: the seed keys (mostly valid), ckpt's block or not, extra keys,
    in ckpt's order or shuffled; and how to write it."""
    doc: dict[str, Any] = {
        "epoch": draw(st.integers(0, 2**64 - 1) | st.sampled_from([-1, 1.5, "3", None])),
        "global_step": draw(st.integers(0, 2**64 + 5)),
        "best_loss": draw(st.floats(allow_nan=False, allow_infinity=False) | st.just(None)),
        "optimizer_state": BIG_STATE,
        "rng_state": draw(st.none() | st.integers(0, 2**64 - 1) | st.just("x")),
    }
    for key in draw(st.lists(_extra_key, max_size=3, unique=True)):
        doc[key] = draw(_value)
    if draw(st.booleans()):
        doc["ckpt"] = {
            "format": 1,
            "saved_at": draw(st.sampled_from(["2026-01-01T00:00:00.000000Z", "yesterday", 5])),
            "loss": draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
            "manifest": draw(st.sampled_from([[], [{"path": "m.bin", "size": 1}], "x"])),
        }
    if draw(st.booleans()):
        keys = draw(st.permutations(list(doc)))
        doc = {key: doc[key] for key in keys}
    if draw(st.booleans()):
        del doc["rng_state"]
    style = draw(st.sampled_from(["ckpt", "seed", "compact"]))
    return doc, style


def _dump(doc: dict[str, Any], style: str) -> bytes:
    if style == "seed":  # serde_json::to_string_pretty: two spaces, no trailing newline
        return json.dumps(doc, indent=2).encode()
    if style == "compact":
        return json.dumps(doc, separators=(",", ":")).encode()
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    except TypeError:  # an integer past 64 bits (orjson's limit): the seed's layout instead
        return json.dumps(doc, indent=2).encode()


def _outcome(read: Any, folder: Path) -> tuple[str, Any]:
    try:
        meta = read(folder)
    except InvalidCheckpointError as exc:
        return "error", str(exc)
    meta.optimizer_state = []
    return "ok", meta


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.integers(0, 10**9))
def test_summary_agrees_with_full_parse(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[dict[str, Any], str], cut: int
) -> None:
    doc, style = case
    data = _dump(doc, style)
    folder = tmp_path_factory.mktemp("ckpt") / "checkpoint-1"
    folder.mkdir()
    for content in (data, data[: cut % len(data)]):  # whole, and truncated anywhere
        (folder / "metadata.json").write_bytes(content)
        assert _outcome(read_summary, folder) == _outcome(read_metadata, folder)


def test_summary_of_tricky_large_files(tmp_path: Path) -> None:
    big = [0.5] * 6000
    cases = [
        # a nested "optimizer_state" before the real one, and brackets in strings
        {"x": {"optimizer_state": [1]}, "epoch": 1, "global_step": 2, "best_loss": 0.5,
         "optimizer_state": big, "s": "]", "rng_state": 3, "ckpt": {"loss": 0.1}},
        # the key's text inside a string first
        {"note": '"optimizer_state": [', "epoch": 1, "global_step": 2, "best_loss": 0.5,
         "optimizer_state": big, "rng_state": 3},
        # a large numeric array after rng_state, and ckpt's block before the state
        {"ckpt": {"loss": 0.2}, "epoch": 1, "global_step": 2, "best_loss": 0.5,
         "optimizer_state": big, "rng_state": 3, "ema": big},
        # a wrong type deep in the state: list reads it whole (not ckpt's layout) and sees it
        {"epoch": 1, "global_step": 2, "best_loss": 0.5, "optimizer_state": [*big, None],
         "rng_state": 3},
    ]  # fmt: skip
    for index, doc in enumerate(cases):
        folder = tmp_path / f"checkpoint-{index}"
        folder.mkdir()
        for style in ("ckpt", "seed", "compact"):
            (folder / "metadata.json").write_bytes(_dump(doc, style))
            assert _outcome(read_summary, folder) == _outcome(read_metadata, folder)


def _step_names(pads: list[int]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda step, pad: f"checkpoint-{step:0{pad}d}",
        st.one_of(st.integers(0, 12), st.integers(0, 120), st.integers(0, 10**21)),
        st.sampled_from(pads),
    )


_JUNK = st.text(alphabet="checkpoint-0123456789\u0661x. ", max_size=14)
#: the other layouts' namings, and names that hold parts of them
_OTHER = st.builds(
    lambda form, step, pad: form.format(f"{step:0{pad}d}"),
    st.sampled_from(
        [
            "global_step{}",
            "iter_{}",
            "checkpoint_{}",
            "step-{}",
            "{}",
            "ckpt_{}",
            "epoch=1-step={}.ckpt",
            "step={}-v1.ckpt",
            "last.ckpt",
            "{}.orbax-checkpoint-tmp",
            "x_{}a",
            "global_step{}.bak",
        ]
    ),
    st.one_of(st.integers(0, 120), st.integers(0, 10**12)),
    st.sampled_from([0, 0, 3, 7]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_step_names([0]), _step_names([0]), _JUNK), unique=True, max_size=40),
    st.lists(st.one_of(_step_names([0, 0, 0, 2, 5]), _JUNK), unique=True, max_size=12),
)
def test_descending_steps_is_the_sorted_candidates(plain: list[str], padded: list[str]) -> None:
    """find_latest's fast order equals the plain per-name sort, with and without zero-padded
    names (a listing never holds "/", an empty name or the same name twice)."""
    for names in (plain, list(dict.fromkeys(plain + padded))):
        names = [name for name in names if name]
        assert list(_descending_steps(names)) == _candidates(names)
        top = _highest_name(names) if order(names).simple else None
        if top is not None:  # the shortcut, when it answers, gives the first of the full order
            assert _candidates(names)[0][1] == top


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_step_names([0, 0, 3]), _OTHER, _JUNK), unique=True, max_size=40))
def test_every_layouts_order_is_the_sorted_candidates(names: list[str]) -> None:
    """With every layout's namings mixed in one listing (padded or not), the lazy merge of
    the per-prefix orders equals the plain per-name sort."""
    names = [name for name in names if name and "/" not in name]
    assert _descending_steps(names) == _candidates(names)


@pytest.mark.parametrize(
    ("names", "top"),
    [
        # a longer name wins, whatever its first digit
        (["checkpoint-9", "checkpoint-95", "checkpoint-100", "logs"], "checkpoint-100"),
        # names of the same length that sort above or between the step names
        (["checkpoint-1000000", "trainer_state.json", "checkpoint-0999999"], "checkpoint-1000000"),
        (["checkpoint-1000000", "trainer_state.json", "checkpoint-9999999"], "checkpoint-9999999"),
        (["checkpoint-1500", "checkpoint-9.bak", "checkpoint-12a4"], None),
        # longer names that are not step names are passed over
        (
            ["checkpoint-12", ".checkpoint-99.staging-abc", "zzzzzzzzzzzzzzzzzzzzzz"],
            "checkpoint-12",
        ),
        # a padded name in the longest group: the full order decides
        (["checkpoint-0100", "checkpoint-99"], None),
        (["logs", "checkpoint-", "checkpoint-x"], None),
        ([], None),
    ],
)
def test_highest_name_shortcut(names: list[str], top: str | None) -> None:
    assert _highest_name(names) == top
    if names:
        assert list(_descending_steps(names)) == _candidates(names)


def _layout_cases() -> list[Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import cases_layouts
    finally:
        sys.path.pop(0)
    return list(cases_layouts.CASES)


@pytest.mark.parametrize("case", _layout_cases(), ids=lambda case: case.layout)
def test_latest_on_100k_entries_of_each_layout_reads_at_most_3_markers(
    case: Any, tmp_path: Path
) -> None:
    """DESIGN.md: one listing plus a handful of marker reads. Entries named in the layout's
    way, the top three copies of the real framework's checkpoint (the rest empty): 100,000
    under `make stress`, 2,000 in `make test` (the same code path; 60,000 folders would cost
    `make test` minutes of mkdir and removal on a slow disk)."""
    run = tmp_path / "run"
    run.mkdir()
    source = case.source_path
    count = 100_000 if os.environ.get("CKPT_STRESS") else 2_000
    for i in range(1, count + 1):
        target = run / case.name(i * 10)
        if i > count - 3:
            (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
        elif source.is_dir():
            os.mkdir(target)
        else:
            target.touch()
    code = (
        "import sys\n"
        "opened = []\n"
        "def hook(event, args):\n"
        f"    if event == 'open' and str(args[0]).startswith({str(run) + '/'!r}):\n"
        "        opened.append(str(args[0]))\n"
        "sys.addaudithook(hook)\n"
        "from ckpt_cli.cli import app\n"
        "try:\n"
        f"    app(['latest', {str(run)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('OPENED ' + repr(opened))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == f"{run / case.name(count * 10)}\n", done.stderr
    opened = ast.literal_eval(done.stderr.rsplit("OPENED ", 1)[1])
    shutil.rmtree(run)  # not left for pytest's own clean-up of old runs
    assert len({path.rsplit("/", 1)[-1] for path in opened}) <= 3, opened


@settings(max_examples=300, deadline=None)
@given(st.one_of(_step_names([0, 3]), _OTHER, _JUNK), st.sampled_from(["dir", "file"]))
def test_the_namings_shortcuts_agree_with_every_pattern(name: str, shape: str) -> None:
    """namings_of's `checkpoint-<N>` shortcut and the pointer gate find what the patterns do."""
    from ckpt_cli.core.namings import POINTERS, may_be_pointer, namings_of

    every = [n for n in NAMINGS if n.shape == shape and n.pattern.fullmatch(name)]
    assert namings_of(name, shape) == every  # type: ignore[arg-type]
    if any(pattern.fullmatch(name) for _, pattern in POINTERS):
        assert may_be_pointer(name)


def test_the_pointer_gate_lets_every_pointer_through() -> None:
    from ckpt_cli.core.namings import POINTERS, may_be_pointer

    for name in ("latest", "latest_checkpointed_iteration.txt", "last.ckpt", "last-v12.ckpt"):
        assert any(pattern.fullmatch(name) for _, pattern in POINTERS) and may_be_pointer(name)
