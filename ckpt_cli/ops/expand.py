"""Which run directories a `prune` names: paths, quoted shell globs and, with `--recursive`,
every run directory below them, on any backend (globs of a URL are expanded on its store)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..core.errors import CkptError, CkptFileSystemError
from ..core.paths import Location, ObjectPath
from ..storage import backend_for

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_run_dirs(
    patterns: Sequence[str], recursive: bool = False, warn: Warn = _ignore
) -> tuple[list[Location], list[CkptError]]:
    """Run directories named by paths and quoted shell globs (and, with `recursive`, every run
    directory below them), in order and without repeats; plus an error per glob that matched
    nothing. A plain path is passed through, so that a missing one fails where it is used."""
    targets: list[Location] = []
    failures: list[CkptError] = []
    for pattern in patterns:
        try:
            backend, where = backend_for(pattern)
            spelled = str(where) if pattern.startswith("file://") else pattern
            if _has_magic(where.path if isinstance(where, ObjectPath) else spelled):
                matches = backend.glob(spelled)
                if not matches:
                    raise CkptFileSystemError(f"{pattern}: no run directory matches")
            else:
                matches = [where]
            for path in matches:
                # a local path that is no directory fails where it is used, with its own error
                if not recursive or (
                    backend.real_folders and backend.state(path, follow=True) != "dir"
                ):
                    targets.append(path)
                    continue
                found = backend.run_dirs_below(path)
                if not found:
                    warn(f"{path}: no run directory below it")
                targets.extend(found)
        except CkptError as exc:
            failures.append(exc)
    return list(dict.fromkeys(targets)), failures
