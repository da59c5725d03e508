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
