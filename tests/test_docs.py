"""Every command has help text with an example and appears in the README (as sqlite-utils'
tests/test_docs.py checks its own)."""

from __future__ import annotations

import re

import pytest
import typer

from ckpt_cli.cli import app

from .conftest import REPO, invoke

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_commands_are_the_contract_s() -> None:
    assert set(COMMANDS) >= {"save", "load", "latest", "list", "prune", "verify"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example: ckpt " + command in result.stdout
    assert invoke(command, "-h").stdout == result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    readme = (REPO / "README.md").read_text()
    assert re.search(rf"^ckpt {command}\b|\bckpt {command} ", readme, re.MULTILINE), command


def test_root_help_lists_every_command_and_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert "5 lock not acquired in time" in result.stdout
    assert "70 internal error (a bug in ckpt)" in " ".join(result.stdout.split())


USAGE = {
    "save": "Usage: ckpt save [OPTIONS] RUN_DIR [PAYLOAD...]",
    "latest": "Usage: ckpt latest [OPTIONS] RUN_DIR",
    "list": "Usage: ckpt list [OPTIONS] RUN_DIR",
    "load": "Usage: ckpt load [OPTIONS] PATH",
    "prune": "Usage: ckpt prune [OPTIONS] RUN_DIR...",
    "verify": "Usage: ckpt verify [OPTIONS] PATH",
}


@pytest.mark.parametrize("command", COMMANDS)
def test_arguments_are_named_as_a_person_would(command: str) -> None:
    """`RUN_DIR...`, not Typer 0.29's `{RUN_DIR}` in the usage and `RUN_DIR <list[str]>` in
    the Arguments section."""
    text = invoke(command, "--help").stdout
    assert text.splitlines()[0] == USAGE[command]
    arguments = text.split("Arguments:\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in arguments.splitlines() if line[:3].strip()]
    assert (
        names == USAGE[command].split("[OPTIONS] ", 1)[1].replace("[", "").replace("]", "").split()
    )
    assert not re.search(r"<(str|int|list\[str\])>", arguments)
    assert "{" not in text.splitlines()[0]
