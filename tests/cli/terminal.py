"""Running the real ``cauldronctl`` in a pseudo-terminal of a given size, and reading what it drew."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

# CSI sequences (cursor moves, erase, colours) and OSC sequences (titles, links): what a terminal does not print.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]")


def visible_lines(raw: str) -> list[str]:
    """Every stretch of text the terminal shows on one row: split at newlines and carriage returns (a redraw
    starts at column 0), escape sequences removed."""
    text = _ESCAPES.sub("", raw)
    return [segment for line in text.split("\n") for segment in line.split("\r")]


def newlines(raw: str) -> int:
    """Rows the output scrolled: one per line feed (the pty turns each "\\n" into "\\r\\n")."""
    return raw.count("\n")


# A shell that starts a job in the background (`make test &`, `nohup`) leaves SIGINT ignored, and an ignored
# signal stays ignored across exec: Python then never installs its Ctrl-C handler and the pty tests' SIGINT would
# be lost. A user's interactive terminal has the default handler, so the child gets it back first.
_AS_AT_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'cauldron_client'; runpy.run_module('cauldron_client', run_name='__main__', alter_sys=True)"
)


@dataclass
class Terminal:
    """``cauldronctl ARGS`` with stdin, stdout and stderr on a pty of ``columns`` x ``rows``."""

    args: Sequence[str]
    columns: int
    rows: int = 24
    output: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
        env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _AS_AT_A_TERMINAL, *self.args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self._master = master

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def _read(self, timeout: float) -> bool:
        """Read what is available within ``timeout``; False once the child closed the terminal."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: every writer of the pty is gone
            return False
        self.output += chunk
        return bool(chunk)

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match is not None:
                return match
            if not self._read(0.2):
                break
        raise AssertionError(f"{pattern!r} not shown within {timeout} s; output so far:\n{self.text}")

    def finish(self, timeout: float = 180.0) -> int:
        """Read until the child exits and its output is drained; its exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            if self.proc.poll() is not None and not select.select([self._master], [], [], 0)[0]:
                break
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        finally:
            self.close()

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):  # already closed by an earlier finish()
            os.close(self._master)
