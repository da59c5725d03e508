"""The shell completion scripts in completions/: generated from the app (`make completions`),
never stale, each the right shell's, and the bash one completing for real in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import CKPT_BIN, REPO

SHELLS = {
    # shell: (file, what only that shell's script holds)
    "bash": ("ckpt.bash", "complete -o default -F _ckpt_completion ckpt"),
    "zsh": ("ckpt.zsh", "#compdef ckpt"),
    "fish": ("ckpt.fish", "complete --command ckpt"),
}


def generated(shell: str) -> str:
    env = dict(os.environ, _CKPT_COMPLETE=f"source_{shell}")
    done = subprocess.run([str(CKPT_BIN)], capture_output=True, text=True, env=env, check=True)
    return done.stdout


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_scripts_are_not_stale(shell: str) -> None:
    name, _ = SHELLS[shell]
    committed = (REPO / "completions" / name).read_text()
    assert committed == generated(shell), f"completions/{name} is stale: run `make completions`"


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_each_file_holds_its_own_shell_s_script(shell: str) -> None:
    name, marker = SHELLS[shell]
    text = (REPO / "completions" / name).read_text()
    assert marker in text
    for other, (_, other_marker) in SHELLS.items():
        if other != shell:
            assert other_marker not in text, f"{name} holds the {other} script"
    assert f"_CKPT_COMPLETE=complete_{shell}" in text


def complete_in_bash(*words: str) -> list[str]:
    """What bash offers after `words` (the last is the word being completed), with the
    committed script sourced into a real bash and its completion function called the way
    bash's programmable completion calls it."""
    array = " ".join(f"'{w}'" for w in words)
    script = (
        f"source {REPO / 'completions' / 'ckpt.bash'}\n"
        f"COMP_WORDS=({array})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f'$(complete -p ckpt | sed -E "s/.* -F ([^ ]+) .*/\\1/") ckpt\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = dict(os.environ, PATH=f"{CKPT_BIN.parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


bash_only = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@bash_only
def test_bash_completes_subcommands() -> None:
    assert complete_in_bash("ckpt", "l") == ["latest", "list", "load"]
    assert complete_in_bash("ckpt", "pr") == ["prune"]
    every = complete_in_bash("ckpt", "")
    assert {"save", "load", "latest", "list", "prune", "verify"} <= set(every)


@bash_only
def test_bash_completes_option_names() -> None:
    assert complete_in_bash("ckpt", "list", "runs/x", "--s") == ["--sort"]
    keep = complete_in_bash("ckpt", "prune", "--keep-")
    assert keep == [
        "--keep-last",
        "--keep-best",
        "--keep-every",
        "--keep-within",
        "--keep-daily",
        "--keep-weekly",
    ]
    assert "--dry-run" in complete_in_bash("ckpt", "prune", "--")


@bash_only
def test_bash_completes_field_names_and_sort_keys() -> None:
    fields = complete_in_bash("ckpt", "load", "runs/x/checkpoint-1", "--field", "")
    assert fields == [
        "epoch",
        "global_step",
        "best_loss",
        "optimizer_state",
        "rng_state",
        "loss",
        "saved_at",
        "manifest",
        "path",
    ]
    assert complete_in_bash("ckpt", "latest", "runs/x", "-f", "glo") == ["global_step"]
    assert complete_in_bash("ckpt", "list", "runs/x", "--sort", "") == [
        "step",
        "loss",
        "age",
        "size",
    ]


def test_makefile_asks_for_each_shell_by_name() -> None:
    """Typer's --show-completion ignores its SHELL argument (and prints nothing under make's
    /bin/sh), so the target must name each shell through the completion variable."""
    makefile = (REPO / "Makefile").read_text()
    for shell, (name, _) in SHELLS.items():
        assert f"_CKPT_COMPLETE=source_{shell} $(CKPT) > completions/{name}" in makefile
