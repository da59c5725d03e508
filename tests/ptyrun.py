"""Run a command in a real pseudo-terminal, for what only a terminal shows (prompts, tables)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence


def run_in_pty(
    args: Sequence[str],
    answer: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    columns: int = 120,
) -> tuple[int, str]:
    """Run `args` with stdin, stdout and stderr on a pty; type `answer` when output appears.

    Returns the exit code and everything the terminal showed (stdout and stderr together).
    """
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES="40")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    process = subprocess.Popen(
        list(args), stdin=slave, stdout=slave, stderr=slave, env=full_env, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    answered = answer is None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if not answered and b"?" in b"".join(chunks):
                    os.write(master, answer or b"")
                    answered = True
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return code, b"".join(chunks).decode("utf-8", "replace")
