"""Hostile input: what someone's tool, a full disk or a bad day can leave in a run directory.

For every case: `load` and `verify` exit 3 (bad data) or 4 (file system) with one line that
names the file and the problem; `latest` skips it with a warning and returns the valid
checkpoint below it; `list` shows it with its status; `prune` deletes exactly what its rule
says and nothing else; and nothing prints a traceback or an internal error. Each case runs
in-process (fast, through the same click command `ckpt` runs) and, for `load`, through the
real `ckpt` script; all the cases together also go through the real script in one run
directory, once with Python's strict UTF-8 output (as under a `en_US.UTF-8` locale).

Cases that are odd but not invalid (a name/metadata step mismatch, two folders for one step,
a symlinked checkpoint) load fine by design (DESIGN.md: warn, never guess) and say so below.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ckpt_cli import Checkpoint
from ckpt_cli.core.records import MAX_U64

from .conftest import CKPT_BIN
from .faults import ckpt_in_process as run_ckpt

PAYLOAD = b"weights"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def base_doc(step: int) -> dict[str, Any]:
    return {
        "epoch": 1,
        "global_step": step,
        "best_loss": 0.5,
        "optimizer_state": [0.1, 0.2],
        "rng_state": 7,
        "ckpt": {
            "format": 1,
            "saved_at": "2026-01-01T00:00:00.000000Z",
            "manifest": [{"path": "w.bin", "size": len(PAYLOAD), "sha256": SHA}],
        },
    }


def real_ckpt(*args: object, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`ckpt ARGS` as a separate process, the installed script."""
    done = subprocess.run(
        [
            os.fsencode(CKPT_BIN),
            *(os.fsencode(a if isinstance(a, str | Path) else str(a)) for a in args),
        ],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    decode = lambda b: b.decode("utf-8", "backslashreplace")  # noqa: E731
    return done.returncode, decode(done.stdout), decode(done.stderr)


def no_crash(stderr: str) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr


def one_error_line(stderr: str) -> str:
    no_crash(stderr)
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("ckpt: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


# ---- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One hostile thing at step `step` of a run that also holds valid checkpoints 1 and 2.

    `build(run, step)` makes it and returns the path to give `load` and `verify`.
    """

    id: str
    build: Callable[[Path, int], Path]
    code: int  # load's exit code
    says: str  # in load's error line
    verify_code: int | None = None  # verify's exit code, when not `code`
    listed: str | None = "corrupt"  # its status in `list --json`; None: not listed
    warns: bool = True  # `latest` skips it with a warning naming it
    deleted: tuple[str, ...] = ("checkpoint-1",)  # what `prune --keep-last 1` deletes
    together: bool = True  # also goes into the one run directory of all cases
    latest: str = "checkpoint-2"  # what `latest` returns
    step: int = 9
    also_listed: tuple[str, ...] = ()  # other valid entries it brings along


def metadata(data: bytes | Callable[[int], bytes]) -> Callable[[Path, int], Path]:
    def build(run: Path, step: int) -> Path:
        folder = run / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "w.bin").write_bytes(PAYLOAD)
        (folder / "metadata.json").write_bytes(data(step) if callable(data) else data)
        return folder

    return build


def doc_with(change: Callable[[dict[str, Any]], None]) -> Callable[[int], bytes]:
    def data(step: int) -> bytes:
        doc = base_doc(step)
        change(doc)
        return json.dumps(doc, indent=2).encode()

    return data


def replaced(old: str, new: str) -> Callable[[int], bytes]:
    def data(step: int) -> bytes:
        raw = json.dumps(base_doc(step))
        assert old in raw
        return raw.replace(old, new, 1).encode()

    return data


def valid_json(step: int) -> bytes:
    return json.dumps(base_doc(step), indent=2).encode()


def special_metadata(make: Callable[[Path], None]) -> Callable[[Path, int], Path]:
    def build(run: Path, step: int) -> Path:
        folder = run / f"checkpoint-{step}"
        folder.mkdir()
        make(folder / "metadata.json")
        return folder

    return build


def named(
    name: Callable[[int], bytes],
    data: Callable[[int], bytes] = valid_json,
    step_in_doc: Callable[[int], int] = lambda s: s,
) -> Callable[[Path, int], Path]:
    def build(run: Path, step: int) -> Path:
        folder = os.fsencode(run) + b"/" + name(step)
        os.mkdir(folder)
        with open(folder + b"/w.bin", "wb") as handle:
            handle.write(PAYLOAD)
        with open(folder + b"/metadata.json", "wb") as handle:
            handle.write(data(step_in_doc(step)))
        return Path(os.fsdecode(folder))

    return build


def payload_change(change: Callable[[Path, Path], None]) -> Callable[[Path, int], Path]:
    """A checkpoint saved by ckpt (its manifest right), whose payload was then changed."""

    def build(run: Path, step: int) -> Path:
        source = run.parent / f"w-{step}.bin"
        source.write_bytes(PAYLOAD)
        folder = Checkpoint(epoch=1, global_step=step, best_loss=0.5, rng_state=7).save(
            run / f"checkpoint-{step}", payloads=[source]
        )
        change(folder, run.parent)
        return folder

    return build


def payload_case(what: str, change: Callable[[Path, Path], None]) -> Case:
    return Case(
        what,
        payload_change(change),
        0,
        "",
        verify_code=3,
        listed="valid",
        warns=False,
        latest="checkpoint-9",
        deleted=("checkpoint-1", "checkpoint-2"),
        together=False,
    )


def _mkfifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path)


def _to_text(path: Path) -> None:
    (path.parent / "notes.txt").write_text("not json at all\n")
    path.symlink_to("notes.txt")


def _file_for_folder(run: Path, step: int) -> Path:
    path = run / f"checkpoint-{step}"
    path.write_text("I am a file")
    return path


def _symlinked_checkpoint(run: Path, step: int) -> Path:
    real = run.parent / f"real-{step}"
    real.mkdir()
    folder = metadata(valid_json)(real, step)
    (run / f"checkpoint-{step}").symlink_to(folder, target_is_directory=True)
    return run / f"checkpoint-{step}"


def _folder_link_loop(run: Path, step: int) -> Path:
    path = run / f"checkpoint-{step}"
    path.symlink_to(path.name)
    return path


def _two_folders(run: Path, step: int) -> Path:
    metadata(valid_json)(run, step)
    padded = run / f"checkpoint-{step:08d}"
    padded.mkdir()
    (padded / "w.bin").write_bytes(PAYLOAD)
    (padded / "metadata.json").write_bytes(valid_json(step))
    return padded


def _non_utf8_payload(folder: Path, _: Path) -> None:
    with open(os.fsencode(folder) + b"/extra-\xff.bin", "wb") as handle:
        handle.write(b"x")


def _to_symlink(folder: Path, outside: Path) -> None:
    (name,) = [p for p in folder.iterdir() if p.name != "metadata.json"]
    target = outside / "decoy.bin"
    target.write_bytes(PAYLOAD)
    name.unlink()
    name.symlink_to(target)


def _missing(folder: Path, _: Path) -> None:
    for path in folder.iterdir():
        if path.name != "metadata.json":
            path.unlink()


def _content(folder: Path, _: Path) -> None:
    for path in folder.iterdir():
        if path.name != "metadata.json":
            path.write_bytes(PAYLOAD.upper())


def _size(folder: Path, _: Path) -> None:
    for path in folder.iterdir():
        if path.name != "metadata.json":
            path.write_bytes(PAYLOAD * 2)


def _extra(folder: Path, _: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "stowaway.bin").write_bytes(b"?")


def _manifest_path(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["ckpt"]["manifest"][0]["path"] = path

    return change


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        del doc[key]

    return change


def _saved_at(value: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["ckpt"]["saved_at"] = value

    return change


BIG = str(2**64)
CASES = [
    Case("empty file", metadata(b""), 3, "the file is empty"),
    Case("only whitespace", metadata(b" \n\t\n"), 3, "the file is empty"),
    Case("truncated", metadata(lambda s: valid_json(s)[:40]), 3, "not valid JSON"),
    Case("trailing garbage", metadata(lambda s: valid_json(s) + b"}{"), 3, "not valid JSON"),
    Case("binary", metadata(bytes(range(256)) * 4), 3, "not valid JSON"),
    Case(
        "byte-order mark", metadata(lambda s: b"\xef\xbb\xbf" + valid_json(s)), 3, "not valid JSON"
    ),
    Case("100,000-deep arrays", metadata(b"[" * 100_000 + b"]" * 100_000), 3, "not valid JSON"),
    Case(
        "100,000-deep objects",
        metadata(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        3,
        "not valid JSON",
    ),
    Case("a JSON array", metadata(b"[1, 2, 3]"), 3, "expected a JSON object"),
    Case("NaN", metadata(replaced('"best_loss": 0.5', '"best_loss": NaN')), 3, "not valid JSON"),
    Case(
        "Infinity",
        metadata(replaced('"best_loss": 0.5', '"best_loss": Infinity')),
        3,
        "not valid JSON",
    ),
    Case(
        "-Infinity in the state",
        metadata(replaced("[0.1, 0.2]", "[0.1, -Infinity]")),
        3,
        "not valid JSON",
    ),
    Case(
        "1e400", metadata(replaced('"best_loss": 0.5', '"best_loss": 1e400')), 3, "not valid JSON"
    ),
    Case(
        "global_step past 2^64-1",
        metadata(replaced('"epoch": 1', f'"epoch": {BIG}')),
        3,
        "key 'epoch' must be an integer in 0..2^64-1, got an integer past 2^64-1",
    ),
    Case(
        "rng_state 10^30",
        metadata(replaced('"rng_state": 7', '"rng_state": ' + "1" + "0" * 30)),
        3,
        "key 'rng_state' must be an integer in 0..2^64-1",
    ),
    Case(
        "float step",
        metadata(lambda s: replaced(f'"global_step": {s}', f'"global_step": {s}.0')(s)),
        3,
        "key 'global_step' must be an integer in 0..2^64-1, got float",
    ),
    Case("negative epoch", metadata(doc_with(_set("epoch", -1))), 3, "got negative -1"),
    Case("missing best_loss", metadata(doc_with(_drop("best_loss"))), 3, "missing key 'best_loss'"),
    Case(
        "duplicate key",
        metadata(lambda s: valid_json(s)[:-1] + b', "global_step": 3}'),
        3,
        "duplicate key 'global_step'",
    ),
    Case(
        "saved_at out of range",
        metadata(doc_with(_saved_at("0001-01-01T00:00:00+14:00"))),
        3,
        "key 'ckpt.saved_at'",
    ),
    Case(
        "saved_at without a zone",
        metadata(doc_with(_saved_at("2026-01-01T00:00:00"))),
        3,
        "key 'ckpt.saved_at' is not RFC 3339",
    ),
    Case(
        "manifest path ../x",
        metadata(doc_with(_manifest_path("../x"))),
        3,
        "key 'ckpt.manifest[0].path' leaves the checkpoint folder: '../x'",
    ),
    Case(
        "manifest path absolute",
        metadata(doc_with(_manifest_path("/etc/passwd"))),
        3,
        "key 'ckpt.manifest[0].path' leaves the checkpoint folder: '/etc/passwd'",
    ),
    Case(
        "manifest path a/../../x",
        metadata(doc_with(_manifest_path("a/../../x"))),
        3,
        "leaves the checkpoint folder",
    ),
    Case(
        "manifest path with NUL",
        metadata(doc_with(_manifest_path("w.bin\x00x"))),
        3,
        "key 'ckpt.manifest[0].path'",
    ),
    Case(
        "metadata.json is a folder", special_metadata(lambda p: p.mkdir()), 3, "it is a directory"
    ),
    Case("metadata.json links to a text file", special_metadata(_to_text), 3, "not valid JSON"),
    Case(
        "metadata.json links to itself",
        special_metadata(_symlink_loop),
        4,
        "Too many levels of symbolic links",
    ),
    Case(
        "metadata.json links to nothing",
        special_metadata(lambda p: p.symlink_to("gone")),
        3,
        "a symlink to nothing",
    ),
    Case("metadata.json is a FIFO", special_metadata(_mkfifo), 3, "not a regular file"),
    Case(
        "metadata.json links to /dev/zero",
        special_metadata(lambda p: p.symlink_to("/dev/zero")),
        3,
        "not a regular file",
    ),
    Case(
        "no metadata.json",
        special_metadata(lambda p: None),
        3,
        "incomplete checkpoint",
        listed="incomplete",
    ),
    Case("a file where the folder should be", _file_for_folder, 4, "not a directory", listed=None),
    Case(
        "checkpoint folder links to itself",
        _folder_link_loop,
        4,
        "Too many levels of symbolic links",
        listed="symlink",
    ),
    Case(
        "step past 2^64 in the name and metadata",
        named(lambda s: f"checkpoint-{MAX_U64 + s}".encode(), step_in_doc=lambda s: MAX_U64 + s),
        3,
        "past 2^64-1",
    ),
    Case(
        "non-UTF-8 folder name",
        named(lambda s: f"checkpoint-{s}".encode() + b"\xff", data=lambda s: b"{not json"),
        3,
        "not valid JSON",
        listed=None,
        warns=False,
    ),
    # payload checks: metadata fine (latest does not hash payloads), files not
    *(
        payload_case(what, change)
        for what, change in (
            ("payload replaced by a symlink", _to_symlink),
            ("payload missing", _missing),
            ("payload content changed", _content),
            ("payload size changed", _size),
            ("extra payload file", _extra),
            ("extra file with a non-UTF-8 name", _non_utf8_payload),
        )
    ),
    # odd but valid: a warning, never a guess
    Case(
        "name and metadata disagree on the step",
        metadata(lambda s: valid_json(5)),
        0,
        "",
        listed="valid",
        latest="checkpoint-9",
        deleted=("checkpoint-1",),  # checkpoint-2 is the newest save
        together=False,
    ),
    Case(
        "checkpoint-7 and checkpoint-00000007",
        _two_folders,
        0,
        "",
        listed="valid",
        warns=False,
        latest="checkpoint-7",
        step=7,
        also_listed=("checkpoint-7",),
        # 2 is the newest save; --keep-last counts steps, and both spell step 7
        deleted=("checkpoint-1",),
        together=False,
    ),
    Case(
        "a symlinked checkpoint",
        _symlinked_checkpoint,
        0,
        "",
        listed="symlink",
        together=False,
    ),
]


def wrong_types() -> list[tuple[str, Any, str]]:
    """(field, wrong value, the key the error must name) for every field and every JSON type
    that field must not have."""
    samples = {
        "string": "7",
        "boolean": True,
        "null": None,
        "array": [7],
        "object": {"a": 7},
        "float": 7.5,
        "negative": -7,
    }
    rules = {
        "epoch": set(),
        "global_step": set(),
        "rng_state": {"null"},
        "best_loss": {"float", "negative"},
        "optimizer_state": {"array"},
        "optimizer_state[0]": {"float", "negative"},
        "ckpt": {"object", "null"},
        "ckpt.loss": {"float", "negative", "null"},
        "ckpt.saved_at": {"null"},
        "ckpt.manifest": {"null"},
        "ckpt.manifest[0]": set(),
        "ckpt.manifest[0].path": {"string"},
        "ckpt.manifest[0].size": set(),
        "ckpt.manifest[0].sha256": {"null", "string"},
    }
    return [
        (key, value, key.split("[")[0])
        for key, allowed in rules.items()
        for kind, value in samples.items()
        if kind not in allowed
    ]


def _put(doc: dict[str, Any], key: str, value: Any) -> None:
    parts = key.replace("[0]", ".0").split(".")
    target: Any = doc
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value


TYPE_CASES = [
    Case(
        f"{key} = {json.dumps(value)}",
        metadata(doc_with(lambda doc, key=key, value=value: _put(doc, key, value))),
        3,
        f"key '{named_key}",
    )
    for key, value, named_key in wrong_types()
]


# ---- running them ------------------------------------------------------------------------------


def _valid_run(run: Path) -> None:
    run.parent.mkdir(parents=True, exist_ok=True)
    weights = run.parent / "w0.bin"
    weights.write_bytes(PAYLOAD)
    for step in (1, 2):
        Checkpoint(epoch=0, global_step=step, best_loss=1.0 / step, rng_state=step).save(
            run / f"checkpoint-{step}", payloads=[weights]
        )


def _entries(run: Path) -> set[str]:
    return {os.fsdecode(name) for name in os.listdir(os.fsencode(run)) if name != b".ckpt.lock"}


def check_case(case: Case, tmp: Path) -> None:
    run = tmp / "run"
    _valid_run(run)
    target = case.build(run, case.step)
    name = target.name

    code, _, err = run_ckpt("load", target)
    if case.code:
        line = one_error_line(err)
        assert code == case.code, err
        assert case.says in line and name.split("\udcff")[0] in line, line
    else:
        no_crash(err)
        assert code == 0, err
    code, out, err = run_ckpt("verify", target)
    assert code == (case.verify_code if case.verify_code is not None else case.code), (out, err)
    if code:
        one_error_line(err)

    code, out, err = run_ckpt("latest", run)
    no_crash(err)
    assert code == 0, err
    assert out.strip() == str(run / case.latest), (out, err)
    if case.warns:
        assert name.split("\udcff")[0] in err and "warning" in err, err
    else:
        assert "warning" not in err, err

    code, out, err = run_ckpt("list", run, "--json")
    no_crash(err)
    assert code == 0, err
    statuses = {entry["name"]: entry["status"] for entry in json.loads(out)}
    shown = {n: s for n, s in statuses.items() if n not in ("checkpoint-1", "checkpoint-2")}
    expected = {} if case.listed is None else {name.replace("\udcff", "\\xff"): case.listed}
    expected.update(dict.fromkeys(case.also_listed, "valid"))
    assert shown == expected, statuses

    before = _entries(run)
    code, out, err = run_ckpt("prune", run, "--keep-last", 1, "--yes")
    no_crash(err)
    assert code == 0, err
    assert before - _entries(run) == set(case.deleted), out


@pytest.mark.parametrize("case", CASES + TYPE_CASES, ids=lambda c: c.id)
def test_hostile_case(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40 and len(TYPE_CASES) >= 60


def test_load_through_the_real_script(tmp_path: Path) -> None:
    """Each file-level case's `load`, as a separate `ckpt` process."""
    jobs = []
    for index, case in enumerate(c for c in CASES if c.code):
        run = tmp_path / f"r{index}"
        run.mkdir()
        jobs.append((case, case.build(run, 9)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: real_ckpt("load", job[1]), jobs))
    for (case, _target), (code, _, err) in zip(jobs, results, strict=True):
        line = one_error_line(err)
        assert code == case.code and case.says in line, (case.id, err)


@pytest.mark.parametrize("encoding", ["default", "strict UTF-8"])
def test_all_cases_in_one_run_through_the_real_script(tmp_path: Path, encoding: str) -> None:
    """Every case at its own step of one run directory whose own name is not UTF-8 either."""
    run = Path(os.fsdecode(os.fsencode(tmp_path) + b"/run-\xff"))
    _valid_run(run)
    cases = [c for c in CASES + TYPE_CASES if c.together]
    names = [case.build(run, 100 + index).name for index, case in enumerate(cases)]
    env = {"PYTHONIOENCODING": "utf-8:strict"} if encoding != "default" else {}

    code, out, err = real_ckpt("latest", run, env=env)
    no_crash(err)
    assert code == 0 and out.strip().endswith("checkpoint-2"), (out, err)
    warned = [n for n, c in zip(names, cases, strict=True) if c.warns]
    assert all(n.split("\udcff")[0] in err for n in warned), err

    code, out, err = real_ckpt("list", run, "--json", env=env)
    no_crash(err)
    assert code == 0, err
    statuses = {e["status"] for e in json.loads(out)}
    assert statuses == {"valid", "corrupt", "incomplete", "symlink"}

    code, out, err = real_ckpt("verify", run, env=env)
    no_crash(err)
    assert code == 4, err  # the worst of 3 (data) and 4 (file system)
    # verify goes through what scan calls checkpoints: not the file, the link, the odd name
    assert out.count("FAILED") == len([c for c in cases if c.listed in ("corrupt", "incomplete")])

    before = _entries(run)
    code, out, err = real_ckpt("prune", run, "--keep-last", 1, "--yes", env=env)
    no_crash(err)
    assert code == 0, err
    assert before - _entries(run) == {"checkpoint-1"}


# ---- what save is given ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "says"),
    [
        ("..", 2, "not a file name that can go into a checkpoint"),
        (".", 2, "not a file name that can go into a checkpoint"),
        ("/", 2, "not a file name that can go into a checkpoint"),
        ("RUN", 2, "holds the run directory"),
        ("PARENT", 2, "holds the run directory"),
        ("FIFO", 2, "not a regular file or a folder"),
        ("NON-UTF-8", 3, "not valid UTF-8"),
        ("metadata.json", 2, "reserved by ckpt"),
        ("missing.bin", 4, "no such payload file"),
    ],
)
def test_save_refuses_payloads_that_cannot_go_into_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str, code: int, says: str
) -> None:
    run = tmp_path / "run"
    _valid_run(run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metadata.json").write_text("{}")
    os.mkfifo(tmp_path / "FIFO")
    with open(os.fsencode(tmp_path) + b"/w-\xff.bin", "wb") as handle:
        handle.write(b"x")
    argument = {
        "RUN": str(run),
        "PARENT": str(tmp_path),
        "NON-UTF-8": os.fsdecode(os.fsencode(tmp_path) + b"/w-\xff.bin"),
    }.get(payload, payload)
    got, _, err = real_ckpt("save", run, "--step", 5, "--loss", 1, argument)
    line = one_error_line(err)
    assert got == code and says in line, err
    assert _entries(run) == {"checkpoint-1", "checkpoint-2"}


def test_payload_paths_outside_are_copied_in_by_their_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`../x` and absolute paths name files to copy; inside the checkpoint they are `x`."""
    run = tmp_path / "runs" / "run"
    _valid_run(run)
    (tmp_path / "runs" / "x.bin").write_bytes(b"up")
    (tmp_path / "abs.bin").write_bytes(b"absolute")
    monkeypatch.chdir(run)
    code, out, err = real_ckpt(
        "save", ".", "--step", 5, "--loss", 1, "../x.bin", tmp_path / "abs.bin"
    )
    assert code == 0, err
    assert sorted(p.name for p in (run / "checkpoint-5").iterdir()) == [
        "abs.bin",
        "metadata.json",
        "x.bin",
    ]
    assert (tmp_path / "runs" / "x.bin").read_bytes() == b"up"


def test_sealing_a_folder_with_a_non_utf8_file_name_fails_cleanly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _valid_run(run)
    folder = run / "checkpoint-5"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/shard-\xff.bin", "wb") as handle:
        handle.write(b"x")
    code, _, err = real_ckpt("save", run, "--step", 5, "--loss", 1)
    line = one_error_line(err)
    assert code == 3 and "not valid UTF-8" in line and "shard-" in line, err
    assert not (folder / "metadata.json").exists()
    assert _entries(run) == {"checkpoint-1", "checkpoint-2", "checkpoint-5"}


@pytest.mark.parametrize("what", ["missing", "a file"])
def test_a_run_directory_that_is_not_one(tmp_path: Path, what: str) -> None:
    run = tmp_path / "run"
    if what == "a file":
        run.write_text("x")
    says = "no such run directory" if what == "missing" else "not a directory"
    for args in (
        ["latest", run],
        ["list", run],
        ["verify", run],
        ["prune", run, "--keep-last", 1, "--yes"],
    ):
        code, _, err = run_ckpt(*args)
        line = one_error_line(err)
        assert code == 4 and str(run) in line and says in line, (args, err)
    code, _, err = run_ckpt("load", run / "checkpoint-1")
    line = one_error_line(err)
    assert code == 4 and str(run / "checkpoint-1") in line, err
    code, _, err = run_ckpt("save", run / "sub", "--step", 1, "--loss", 1)
    assert code == 4 if what == "a file" else code == 0, err
    no_crash(err)


def test_verify_reports_every_problem_of_a_checkpoint(tmp_path: Path) -> None:
    """One checkpoint, five problems: verify names each (stdout) and fails once (exit 3)."""
    payload = tmp_path / "payload"
    (payload / "sub").mkdir(parents=True)
    for name in ("a.bin", "b.bin", "c.bin", "d.bin", "sub/e.bin"):
        (payload / name).write_bytes(name.encode() * 100)
    folder = Checkpoint(epoch=0, global_step=1, best_loss=0.5).save(
        tmp_path / "run" / "checkpoint-1", payloads=[payload]
    )
    files = folder / "payload"
    (files / "a.bin").unlink()
    (files / "b.bin").write_bytes(b"B" * 500)  # same size, other bytes
    (files / "c.bin").write_bytes(b"short")
    (files / "d.bin").unlink()
    (files / "d.bin").symlink_to(tmp_path / "payload" / "d.bin")  # the same bytes, via a link
    (files / "sub" / "f.bin").write_bytes(b"new")
    code, out, err = real_ckpt("verify", folder)
    assert code == 3, err
    assert out.splitlines() == [
        f"FAILED  {folder}: payload/a.bin: missing",
        f"FAILED  {folder}: payload/b.bin: content changed (sha256 differs)",
        f"FAILED  {folder}: payload/c.bin: size changed (500 -> 5)",
        f"FAILED  {folder}: payload/d.bin: replaced by a symlink (not followed)",
        f"FAILED  {folder}: payload/sub/f.bin: extra (not in the manifest)",
    ]
    assert err == f"ckpt: error: {folder}: payload/a.bin: missing\n"
