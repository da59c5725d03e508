"""The `ckpt` command line's frame: the Typer app, its error handling and shared helpers.

Errors from the core (`CkptError`) and from argument parsing become one line on stderr,
`ckpt: error: ...`, and DESIGN.md's exit code, in one place: `CkptGroup.main`. The commands
live in `read_commands.py` and `write_commands.py`, each parse, one call to `ckpt_cli.ops`,
render; only what a command needs is imported, inside it: `ckpt latest` in a job script loads
neither the retention engine nor rich. No `from __future__ import annotations` in the command
modules: Typer reads the command signatures on every run, and string annotations cost it a
compile and an eval of each one, three times over (about 8 ms of a `ckpt latest`).
"""

import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from .. import __version__
from ..core.errors import CkptError, PartialFailureError, UsageError
from ..core.format import Metadata, metadata_to_json
from ..core.paths import Location
from . import coercion, output

#: exit code of a bug in ckpt (EX_SOFTWARE), apart from DESIGN.md's 0-5
INTERNAL_ERROR = 70

_debug = os.environ.get("CKPT_DEBUG", "") not in ("", "0")
#: rows `ckpt list` shows on a terminal unless --limit or --all says otherwise
TERMINAL_ROWS = 20


class CkptGroup(TyperGroup):
    """The app's command group: maps every error to one stderr line and an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # no pydantic import for values that need no coercion
        coercion.install(self, self.context_settings.get("help_option_names", ["--help"]))
        try:
            result = super().main(
                args=args,
                prog_name=prog_name or "ckpt",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except CkptError as exc:
            if _debug:
                _print_traceback()
            output.error(str(exc))
            code = exc.exit_code
        except typer.Abort:  # the user answered no (or ^C/^D) at a prompt
            output.error("aborted, nothing deleted")
            code = 1
        except typer.TyperException as exc:  # click's usage errors, via Typer's own copy
            code = _report_usage_error(exc)
        except BrokenPipeError:
            # the reader of our stdout went away (`ckpt list | head`): not an error of ours
            sys.stderr.close()
            code = 0
        except KeyboardInterrupt:
            code = 130
        except Exception as exc:  # a bug: still one line, unless --debug asks for more
            if _debug:
                _print_traceback()
            output.error(f"internal error: {exc.__class__.__name__}: {exc} (run with --debug)")
            # not 1: a job script must not read a crash as "no checkpoint, start from scratch"
            code = INTERNAL_ERROR
        if not standalone_mode:
            return code
        sys.exit(code)


class PlainArgument(TyperArgument):
    """An argument shown as a person writes it: `RUN_DIR...` in the usage line and the
    Arguments section, where Typer 0.29 shows `{RUN_DIR}` and `RUN_DIR <list[str]>`."""

    def _shown(self) -> str:
        name = self.metavar or (self.name or "").upper()
        return name + ("..." if self.nargs != 1 else "")

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self._shown() if self.required else f"[{self._shown()}]"]

    def get_help_record(self, ctx: Any) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        return None if record is None else (self._shown(), record[1])


class CkptCommand(TyperCommand):
    """Every ckpt command: its arguments shown plainly (`PlainArgument`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = PlainArgument


def _print_traceback() -> None:
    import traceback  # only for --debug: 6 ms of every start otherwise

    traceback.print_exc()


def _report_usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stderr.write(ctx.get_help() + "\n")
        return 2
    message = exc.format_message()
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    output.error(message)
    return int(getattr(exc, "exit_code", 2))


app = typer.Typer(
    cls=CkptGroup,
    name="ckpt",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        output.data(f"ckpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors (or set CKPT_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Save, find, inspect and prune the checkpoint-<step>/ folders of training runs.

    Exit codes: 0 ok, 1 nothing found, 2 usage error, 3 invalid checkpoint data,
    4 file-system error, 5 lock not acquired in time, 70 internal error (a bug in ckpt).
    """
    global _debug
    _debug = _debug or debug


def show_metadata(folder: Location, meta: Metadata, as_json: bool, field: str | None) -> None:
    """`load` and `latest --json/--field`: one checkpoint in full."""
    doc = metadata_to_json(meta, path=str(folder), status="valid")
    doc.setdefault("layout", "ckpt")
    if doc.get("save_index") is not None:
        # numbered by a save counter (Accelerate's `checkpoint_<i>`): no step can be read, as
        # `list` says; the format's integer (the counter) stays the Python API's
        doc["global_step"] = None
    if field is not None:
        if field not in doc:
            raise UsageError(f"--field: unknown field {field!r} (known: {', '.join(doc)})")
        output.data(output.field_text(doc[field]))
    elif as_json:
        output.json_document(doc)
    elif output.stdout_is_terminal():
        from .render import render_metadata

        render_metadata(doc)
    else:
        from .views import metadata_lines

        for line in metadata_lines(doc):
            output.data(line)


def checked(option: str, value: Any, check: Callable[[str, Any], Any]) -> None:
    try:
        check(option, value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def raise_failures(failures: Sequence[CkptError], what: str) -> None:
    """One failure is reported as itself; several as one line each, then a summary line."""
    if len(failures) == 1:
        raise failures[0]
    if failures:
        for exc in failures:
            output.error(str(exc))
        code = max(exc.exit_code for exc in failures)
        raise PartialFailureError(f"{len(failures)} {what} failed", code)


def _ignore_progress(_: Any) -> None:
    return None


@contextmanager
def byte_progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long byte work (copying, hashing), on a terminal only:
    nothing of it reaches a pipe or a log file."""
    if not output.stderr_is_terminal():
        yield _ignore_progress
        return
    from .render import byte_progress as bar

    with bar(description, total) as advance:
        yield advance


@contextmanager
def deletion_progress(description: str) -> Iterator[Callable[[Any], None]]:
    """Like `_byte_progress`, for folders deleted by a prune."""
    if not output.stderr_is_terminal():
        yield _ignore_progress
        return
    from .render import deletion_progress as bar

    with bar(description) as advance:
        yield advance


def copy_progress(payloads: Sequence[Path]) -> AbstractContextManager[Callable[[int], None]]:
    if not payloads or not output.stderr_is_terminal():
        return nullcontext(_ignore_progress)
    # A total only when every payload is a plain file (one stat each): walking a folder here,
    # before the save has checked its arguments, could mean walking `/` for a mistyped path.
    try:
        total: int | None = (
            sum(p.stat().st_size for p in payloads) if all(p.is_file() for p in payloads) else None
        )
    except OSError:
        total = None  # a missing payload is reported by the save itself
    return byte_progress("copying payload", total)


def main() -> None:
    """The console script `ckpt`."""
    # Paths are bytes on POSIX; one that is not UTF-8 must still print as itself, so that
    # RESUME=$(ckpt latest "$RUN") gets the real path, whatever the locale's encoding says.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    app()
