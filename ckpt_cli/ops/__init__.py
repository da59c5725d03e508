"""The operations, each written once against the storage and layout interfaces.

- `scan.py`: every entry of a run directory, classified (list, prune, verify build on it)
- `latest.py`: the highest complete step, from one listing and a handful of marker reads
- `load.py`: one checkpoint, read in full and validated
- `save.py`: save, seal, replace and `--move`, then the keep rules
- `prune.py`: plan with the pure retention engine, then carry out through the backend
- `verify.py`: the metadata and the files against the manifest
- `expand.py`: globs and `--recursive`

An operation gets its backend from `storage.backend_for` once, at its entry, and never asks
which one it has; it reads folders through `layouts`.
"""
