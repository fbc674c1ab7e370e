"""Install cauldrond as a user service: a systemd user unit on Linux, a LaunchAgent on macOS.

The files are generated from the templates in ``systemd/`` and ``launchd/`` with this machine's interpreter
(``<python> -m cauldrond``) and data directory. Installing twice rewrites the same file and re-runs
idempotent service-manager commands; uninstalling removes the unit and leaves the data directory alone.
The service manager is called through ``runner`` (argv → exit status), so tests can record the commands
while the files are written for real.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess  # nosec B404 - fixed argv lists to systemctl/launchctl, never a shell
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Runner = Callable[[Sequence[str]], int]
UNIT_NAME = "cauldrond.service"
LABEL = "com.shadowcauldron.cauldrond"
_EXE_PLACEHOLDER = "%h/.local/bin/cauldrond"
_DATA_PLACEHOLDER = "%h/.local/share/shadow-cauldron"
_MAC_HOME = "/Users/USERNAME"


class ServiceError(Exception):
    """The service could not be installed (no template, unsupported platform)."""


def run_command(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), check=False).returncode  # nosec B603


def find_template(name: str) -> Path:
    """The template shipped with the source tree (``systemd/cauldrond.service``, ``launchd/...plist``)."""
    for root in Path(__file__).resolve().parents:
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise ServiceError(f"cannot find the template {name} next to this installation")


def default_command() -> list[str]:
    """The interpreter that runs this client, as ``python -m cauldrond``: the daemon lives in this environment."""
    return [sys.executable, "-m", "cauldrond"]


def _systemd_word(text: str) -> str:
    # systemd expands %-specifiers everywhere and splits on whitespace unless quoted.
    text = text.replace("%", "%%")
    return f'"{text}"' if any(ch.isspace() for ch in text) or '"' in text else text


def render_systemd_unit(template: str, command: Sequence[str], data_dir: Path) -> str:
    """The template with the console-script path replaced by ``command`` and the data dir by ``data_dir``, in
    the directives only (the comments keep describing the placeholders)."""
    exec_line = " ".join(_systemd_word(word) for word in command)
    lines = []
    for line in template.splitlines(keepends=True):
        if not line.lstrip().startswith(("#", ";")):
            line = line.replace(_EXE_PLACEHOLDER, exec_line).replace(_DATA_PLACEHOLDER, _systemd_word(str(data_dir)))
        lines.append(line)
    text = "".join(lines)
    if exec_line not in text:
        raise ServiceError(f"the unit template has no ExecStart with {_EXE_PLACEHOLDER}")
    return text


def render_launch_agent(template: bytes, command: Sequence[str], data_dir: Path, home: Path) -> bytes:
    plist = plistlib.loads(template)
    plist["ProgramArguments"] = [*command, "--data-dir", str(data_dir)]
    plist["WorkingDirectory"] = str(data_dir)
    for key in ("StandardOutPath", "StandardErrorPath"):
        plist[key] = str(plist[key]).replace(_MAC_HOME, str(home))
    return plistlib.dumps(plist)


@dataclass
class ServiceManager:
    home: Path
    data_dir: Path
    platform: str = sys.platform
    command: list[str] = field(default_factory=default_command)
    runner: Runner = run_command
    config_home: Path | None = None  # XDG_CONFIG_HOME; defaults to <home>/.config
    uid: int = field(default_factory=lambda: os.getuid() if hasattr(os, "getuid") else 0)

    @property
    def is_mac(self) -> bool:
        return self.platform == "darwin"

    @property
    def path(self) -> Path:
        if self.is_mac:
            return self.home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        return (self.config_home or self.home / ".config") / "systemd" / "user" / UNIT_NAME

    @property
    def log_dir(self) -> Path:
        return self.home / "Library" / "Logs" / "shadow-cauldron"

    def render(self) -> bytes:
        if self.is_mac:
            template = find_template("launchd/com.shadowcauldron.cauldrond.plist").read_bytes()
            return render_launch_agent(template, self.command, self.data_dir, self.home)
        if not self.platform.startswith("linux"):
            raise ServiceError(f"no user-service support for {self.platform}; run cauldrond yourself")
        unit = find_template("systemd/cauldrond.service").read_text(encoding="utf-8")
        return render_systemd_unit(unit, self.command, self.data_dir).encode("utf-8")

    def install(self) -> list[str]:
        """Write the unit and start it; returns what was done, for the user."""
        content = self.render()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        changed = not self.path.is_file() or self.path.read_bytes() != content
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, self.path)
        done = [f"{'wrote' if changed else 'unchanged'} {self.path}"]
        if self.is_mac:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            target = f"gui/{self.uid}"
            self.runner(["launchctl", "bootout", f"{target}/{LABEL}"])  # fails harmlessly when not loaded
            self._must(["launchctl", "bootstrap", target, str(self.path)])
            done.append(f"loaded {LABEL}; logs in {self.log_dir}")
        else:
            self._must(["systemctl", "--user", "daemon-reload"])
            self._must(["systemctl", "--user", "enable", "--now", UNIT_NAME])
            if changed:
                self._must(["systemctl", "--user", "try-restart", UNIT_NAME])
            done.append(f"enabled and started {UNIT_NAME}; logs: journalctl --user -u cauldrond")
        return done

    def uninstall(self) -> list[str]:
        """Stop and remove the unit; the data directory (database, images, token) stays."""
        done = []
        if self.is_mac:
            self.runner(["launchctl", "bootout", f"gui/{self.uid}/{LABEL}"])
        else:
            self.runner(["systemctl", "--user", "disable", "--now", UNIT_NAME])
        if self.path.is_file():
            self.path.unlink()
            done.append(f"removed {self.path}")
        if not self.is_mac:
            self.runner(["systemctl", "--user", "daemon-reload"])
        done.append(f"data left in {self.data_dir}")
        return done

    def status(self) -> int:
        if not self.path.is_file():
            return 3  # systemctl's "not running" status
        if self.is_mac:
            return self.runner(["launchctl", "print", f"gui/{self.uid}/{LABEL}"])
        return self.runner(["systemctl", "--user", "--no-pager", "status", UNIT_NAME])

    def _must(self, argv: Sequence[str]) -> None:
        code = self.runner(argv)
        if code != 0:
            raise ServiceError(f"`{shlex.join(argv)}` failed with status {code}")
