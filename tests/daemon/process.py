"""cauldrond as a real subprocess, for tests that kill or signal it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DaemonProcess:
    def __init__(self, data_dir: Path, models_dir: Path, *extra: str, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.models_dir = models_dir
        self.extra = extra
        self.env = dict(env or {})  # added to this process's environment (CAULDRON_* settings, PYTHONPATH)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-daemon.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def start(self, timeout: float = 60.0) -> None:
        # Fixed batches of 4, as tests/conftest.py's make_settings has them: a probe of batch sizes (auto_batch_size)
        # would change which jobs share a batch, which the crash-guard tests count on. A test may set it back.
        defaults = {
            "HF_HUB_OFFLINE": "1",
            "COVERAGE_PROCESS_START": "",
            "CAULDRON_AUTO_BATCH_SIZE": "false",
            "CAULDRON_MAX_BATCH_SIZE": "4",
        }
        env = {**os.environ, **defaults, **self.env}
        command = [
            sys.executable,
            "-m",
            "cauldrond",
            "--data-dir",
            str(self.data_dir),
            "--models-dir",
            str(self.models_dir),
            "--port",
            str(self.port),
            "--device",
            "cpu",
            *self.extra,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"cauldrond exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"cauldrond did not become healthy:\n{self.log.read_text()}")

    def wait_exit(self, timeout: float) -> int:
        """The exit status once the process ends by itself (e.g. a plugin killed it); raises on timeout."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
