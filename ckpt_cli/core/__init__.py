"""The pure core: what ckpt knows, with no I/O and no framework.

- `format.py`: metadata.json both ways, the seed crate's keys and ckpt's own, validated
- `records.py`: a run directory's entries as plain data (`CheckpointRecord`), and their names
- `retention.py`: the retention engine: records and a policy in, keep/delete/skip out
- `manifest.py`: a checkpoint's files against the manifest recorded at save time
- `durations.py`, `paths.py` (a local path or a URL, as values), `errors.py`

Nothing here imports typer, rich, fsspec or a storage backend (`make lint` checks it).
"""
