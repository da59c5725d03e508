"""The `ckpt` command line: the only part of ckpt that imports typer and rich.

- `app.py`: the Typer app, the one place errors become a stderr line and an exit code
- `read_commands.py`: latest, list, load, verify; `write_commands.py`: save, prune
- `params.py`: the shared options, declared once; `coercion.py`: Typer without pydantic
- `views.py`: what the commands show as plain data (JSON, pipe text, the loss chart)
- `render.py`: rich tables and progress bars, loaded only for a terminal
- `output.py`: stdout for data, stderr for the rest
"""

from . import read_commands, write_commands  # noqa: F401 - they register the commands
from .app import app, main

__all__ = ["app", "main"]
