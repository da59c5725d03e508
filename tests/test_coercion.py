"""The coercion shortcut (ckpt_cli/coercion.py) returns exactly what Typer's pydantic adapter
returns, or hands the value over, for every parameter of the app."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import typer
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt_cli.cli import app, coercion

_coercion = pytest.importorskip("typer._coercion")


def _params() -> list[tuple[Any, Any, Any]]:
    root = typer.main.get_command(app)
    coercion.install(root, ["-h", "--help"])
    found = []

    def walk(command: Any) -> None:
        ctx = typer.Context(command)
        for param in [*command.params, command.get_help_option(ctx)]:
            found.append((ctx, param, _coercion.build_runtime_param(param.type_descriptor)))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(root)
    return found


PARAMS = _params()


def outcome(runtime: Any, value: Any, ctx: Any, param: Any) -> tuple[str, Any]:
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # the adapter's error, with its wording
        return "error", f"{type(exc).__name__}: {exc}"
    return "value", (type(result), result)


def check(value: Any) -> None:
    for ctx, param, full in PARAMS:
        shortcut = param._runtime_param
        assert isinstance(shortcut, coercion.Shortcut), param.name
        multi = param.multiple or param.nargs == -1
        if multi and not isinstance(value, tuple):
            value = (value,)
        assert outcome(shortcut, value, ctx, param) == outcome(full, value, ctx, param), (
            param.name,
            value,
        )


EDGES = [
    "",
    "0",
    "00",
    "007",
    "1",
    "10",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.5",
    "1.",
    ".5",
    "1e3",
    "1_000",
    "9" * 15,
    "9" * 16,
    "inf",
    "nan",
    "abc",
    "０",
    "١",
    "step",
    "true",
    "s3://b/r",
]


@pytest.mark.parametrize("value", [None, 0, 1, 300.0, 0.5, True, False, *EDGES])
def test_shortcut_agrees_with_typer_on_edges(value: Any) -> None:
    check(value)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.text(max_size=12), st.from_regex(r"[0-9]{1,17}(\.[0-9]{0,17})?", fullmatch=True))
)
def test_shortcut_agrees_with_typer_on_any_string(value: str) -> None:
    check(value)


def test_common_commands_do_not_import_pydantic(tmp_path: Any) -> None:
    """Deterministic guard: latest, list, load and a prune by a plain rule start without it."""
    run = tmp_path / "run"
    ckpt = [sys.executable, "-m", "ckpt_cli"]
    subprocess.run([*ckpt, "save", str(run), "--step", "1", "--loss", "1"], check=True)
    probe = (
        "import sys, runpy; sys.argv = ['ckpt', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('ckpt_cli', run_name='__main__')\n"
        "finally:\n    sys.stderr.write('PYDANTIC %s' % ('pydantic' in sys.modules))\n"
    )
    for args in (
        ["latest", str(run)],
        ["list", "--json", str(run)],
        ["load", str(run / "checkpoint-1"), "--json"],
        ["prune", str(run), "--keep-last", "3", "--yes", "--lock-timeout", "5"],
        ["--help"],
    ):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stderr.endswith("PYDANTIC False"), (args, done.stderr)


def test_bad_values_still_get_typers_error(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ckpt_cli", "prune", str(tmp_path), "--keep-last", "x"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "'--keep-last'" in done.stderr and "valid integer" in done.stderr, done.stderr
