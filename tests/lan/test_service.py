"""Service install: the generated systemd unit and LaunchAgent, written for real into a temporary home; only
the systemctl/launchctl calls are replaced by a recorder (this machine runs no user service manager)."""

from __future__ import annotations

import os
import plistlib
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from cauldron_client.service import ServiceManager

from cauldrond.notify import notify


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        return 0


def manager(tmp_path: Path, platform: str, recorder: Recorder) -> ServiceManager:
    return ServiceManager(
        home=tmp_path / "home", data_dir=tmp_path / "home" / "data", platform=platform, runner=recorder, uid=501
    )


def test_systemd_unit_is_generated_installed_twice_harmlessly_and_uninstalled(tmp_path: Path) -> None:
    recorder = Recorder()
    service = manager(tmp_path, "linux", recorder)
    service.install()
    unit = service.path
    assert unit == tmp_path / "home" / ".config" / "systemd" / "user" / "cauldrond.service"
    text = unit.read_text()
    data = tmp_path / "home" / "data"
    assert f"ExecStart={sys.executable} -m cauldrond --data-dir {data}\n" in text
    assert f"ExecStartPre=mkdir -p -m 0700 {data}\n" in text and f"WorkingDirectory=-{data}\n" in text
    directives = [line for line in text.splitlines() if not line.startswith("#")]
    assert "Type=notify" in directives and not any("%h" in line for line in directives)
    assert data.is_dir() and data.stat().st_mode & 0o777 == 0o700
    assert recorder.calls == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "cauldrond.service"],
        ["systemctl", "--user", "try-restart", "cauldrond.service"],
    ]
    recorder.calls.clear()
    assert service.install()[0].startswith("unchanged")
    assert (
        unit.read_text() == text and ["systemctl", "--user", "try-restart", "cauldrond.service"] not in recorder.calls
    )

    (data / "cauldron.sqlite3").write_bytes(b"keep me")
    service.uninstall()
    assert not unit.exists() and (data / "cauldron.sqlite3").read_bytes() == b"keep me"
    assert ["systemctl", "--user", "disable", "--now", "cauldrond.service"] in recorder.calls


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_generated_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    service = manager(tmp_path, "linux", Recorder())
    service.install()
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(service.path)], capture_output=True, text=True, check=False
    )
    problems = [line for line in result.stderr.splitlines() if "cauldrond.service" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_launch_agent_is_generated_and_bootstrapped(tmp_path: Path) -> None:
    recorder = Recorder()
    service = manager(tmp_path, "darwin", recorder)
    service.install()
    home = tmp_path / "home"
    assert service.path == home / "Library" / "LaunchAgents" / "com.shadowcauldron.cauldrond.plist"
    plist = plistlib.loads(service.path.read_bytes())
    data = str(home / "data")
    assert plist["Label"] == "com.shadowcauldron.cauldrond"
    assert plist["ProgramArguments"] == [sys.executable, "-m", "cauldrond", "--data-dir", data]
    assert plist["WorkingDirectory"] == data and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"] == str(home / "Library/Logs/shadow-cauldron/cauldrond.err.log")
    assert "USERNAME" not in service.path.read_text() and (home / "Library/Logs/shadow-cauldron").is_dir()
    assert recorder.calls == [
        ["launchctl", "bootout", "gui/501/com.shadowcauldron.cauldrond"],
        ["launchctl", "bootstrap", "gui/501", str(service.path)],
    ]
    service.install()  # again: boots the old one out first, so bootstrap never meets a loaded job
    assert recorder.calls[-2][1] == "bootout"
    service.uninstall()
    assert not service.path.exists() and (home / "data").is_dir()


def test_readiness_reaches_the_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert server.recv(64) == b"READY=1"
    assert not notify("READY=1", {})  # not under systemd: nothing to do


async def test_the_daemon_notifies_once_it_serves(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cauldrond.daemon import Daemon
    from tests.conftest import make_settings

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        daemon = Daemon(make_settings(tmp_path / "data", models_dir))
        await daemon.start()
        try:
            assert server.recv(64) == b"READY=1"  # already there when start() returns
        finally:
            await daemon.stop()
    assert os.environ["NOTIFY_SOCKET"] == path
