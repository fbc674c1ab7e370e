"""The systemd unit, the launchd agent and the placeholder page: parsed, checked and, for the unit,
verified by systemd itself."""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import pwd
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import platformdirs.macos
import platformdirs.unix
import pytest

from cauldrond.config import default_data_dir

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "cauldrond.service"
SYSTEMD_README = ROOT / "systemd" / "README.md"
PLIST = ROOT / "launchd" / "com.shadowcauldron.cauldrond.plist"
LAUNCHD_README = ROOT / "launchd" / "README.md"
INDEX = ROOT / "pwa" / "index.html"
MANIFEST = ROOT / "pwa" / "manifest.webmanifest"

# The placeholder conventions documented in the two READMEs.
UNIT_CAULDROND = "%h/.local/bin/cauldrond"
UNIT_DATA_DIR = "%h/.local/share/shadow-cauldron"
MAC_HOME = "/Users/USERNAME"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


# --- systemd ------------------------------------------------------------------------------------------


def parse_unit(text: str) -> configparser.ConfigParser:
    # systemd allows repeated keys (Environment=, ExecStartPre=); interpolation would choke on %h.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # unit keys are case-sensitive
    parser.read_string(text)
    return parser


@pytest.fixture(scope="module")
def service() -> configparser.SectionProxy:
    return parse_unit(UNIT.read_text())["Service"]


def test_unit_execstart_runs_cauldrond_with_data_dir(service: configparser.SectionProxy) -> None:
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == UNIT_CAULDROND
    assert argv[1:] == ["--data-dir", UNIT_DATA_DIR]


def test_unit_working_directory_is_the_data_dir_and_is_created_first(
    service: configparser.SectionProxy,
) -> None:
    # "-": the first start must not fail before ExecStartPre has created the directory.
    assert service["WorkingDirectory"] == "-" + UNIT_DATA_DIR
    pre = shlex.split(service["ExecStartPre"])
    assert pre[0] == "mkdir"
    assert "-p" in pre
    assert pre[pre.index("-m") + 1] == "0700"
    assert pre[-1] == UNIT_DATA_DIR


def test_unit_restart_and_stop_policy(service: configparser.SectionProxy) -> None:
    # The daemon sends READY=1 once it serves, so `systemctl start` returns only then.
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"] == "5"
    assert service["KillSignal"] == "SIGTERM"
    # The daemon exits within 10 s of SIGTERM; the stop timeout must leave it that long, and not much more.
    assert 10 < int(service["TimeoutStopSec"]) <= 30
    assert service["StandardOutput"] == "journal"


def test_unit_hardening_leaves_the_gpu_visible(service: configparser.SectionProxy) -> None:
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    for breaks_gpu_or_data in ("PrivateDevices", "ProtectHome", "MemoryDenyWriteExecute", "DevicePolicy"):
        assert breaks_gpu_or_data not in service


def test_unit_installs_into_the_user_session() -> None:
    assert parse_unit(UNIT.read_text())["Install"]["WantedBy"] == "default.target"


def test_unit_data_dir_is_the_daemons_default_on_linux(
    service: configparser.SectionProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cauldronctl looks for the token in the default data dir; the service must keep its data there.
    home = "/home/someone"
    monkeypatch.setenv("HOME", home)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = platformdirs.unix.Unix(default_data_dir().name, appauthor=False).user_data_dir
    assert UNIT_DATA_DIR.replace("%h", home) == expected


def test_systemd_readme_documents_the_placeholders() -> None:
    readme = SYSTEMD_README.read_text()
    assert f"`{UNIT_CAULDROND}`" in readme
    assert f"`{UNIT_DATA_DIR}`" in readme
    assert "User=" in readme


def run_verify(unit_text: str, tmp_path: Path, *, home: Path, user_mode: bool) -> list[str]:
    """Run `systemd-analyze verify` on the unit text; return the output lines that concern this unit.

    A clean unit produces no such lines. Lines about the environment (a container without a running
    systemd) never name our file, so they cannot make the check pass or fail by accident.
    """
    assert SYSTEMD_ANALYZE is not None
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    unit = unit_dir / UNIT.name
    unit.write_text(unit_text)
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # The user manager resolves %h from $HOME and keeps its state under $XDG_RUNTIME_DIR.
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime_dir)}
    argv = [SYSTEMD_ANALYZE, "verify", *(["--user"] if user_mode else []), str(unit)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    ours = [line for line in lines if UNIT.name in line]
    if proc.returncode != 0 and not ours:
        pytest.skip(f"systemd-analyze cannot run here: {' | '.join(lines)}")
    return ours


def fake_home(tmp_path: Path) -> Path:
    """A home directory with an executable where the unit expects cauldrond."""
    home = tmp_path / "home"
    script = home / ".local" / "bin" / "cauldrond"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return home


@needs_systemd_analyze
def test_unit_passes_systemd_verify_as_a_user_unit(tmp_path: Path) -> None:
    assert run_verify(UNIT.read_text(), tmp_path, home=fake_home(tmp_path), user_mode=True) == []


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("original", "broken", "complaint"),
    [
        ("Restart=on-failure", "Restrat=on-failure", "Unknown key"),
        ("Restart=on-failure", "Restart=sometimes", "Failed to parse"),
        ("TimeoutStopSec=15", "TimeoutStopSec=fifteen", "Failed to parse"),
        ("KillSignal=SIGTERM", "KillSignal=SIGFOO", "Failed to parse"),
    ],
)
def test_systemd_verify_catches_a_broken_unit(tmp_path: Path, original: str, broken: str, complaint: str) -> None:
    # Proves the check above can fail: systemd-analyze exits 0 on these, only its output tells.
    text = UNIT.read_text()
    assert f"\n{original}\n" in text
    ours = run_verify(
        text.replace(f"\n{original}\n", f"\n{broken}\n"), tmp_path, home=fake_home(tmp_path), user_mode=True
    )
    assert any(complaint in line for line in ours), ours


@needs_systemd_analyze
def test_systemd_verify_catches_a_missing_executable(tmp_path: Path) -> None:
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    ours = run_verify(UNIT.read_text(), tmp_path, home=empty_home, user_mode=True)
    assert any("not executable" in line for line in ours), ours


@needs_systemd_analyze
def test_system_service_variant_from_the_readme_passes_verify(tmp_path: Path) -> None:
    # The same three edits as the sed command in systemd/README.md.
    home = fake_home(tmp_path)
    user = pwd.getpwuid(os.getuid()).pw_name
    text = UNIT.read_text().replace("%h", str(home))
    text = text.replace("\n[Service]\n", f"\n[Service]\nUser={user}\n", 1)
    text = text.replace("WantedBy=default.target", "WantedBy=multi-user.target")
    assert "%h" not in text
    assert run_verify(text, tmp_path, home=tmp_path / "nowhere", user_mode=False) == []
    service = parse_unit(text)["Service"]
    assert service["User"] == user
    assert shlex.split(service["ExecStart"])[0] == str(home / ".local" / "bin" / "cauldrond")


# --- launchd ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent() -> dict[str, Any]:
    with PLIST.open("rb") as handle:
        loaded: dict[str, Any] = plistlib.load(handle)
    return loaded


def test_plist_label_matches_file_name(agent: dict[str, Any]) -> None:
    assert agent["Label"] == PLIST.stem == "com.shadowcauldron.cauldrond"


def test_plist_runs_cauldrond_with_data_dir_as_working_directory(agent: dict[str, Any]) -> None:
    program, *args = agent["ProgramArguments"]
    assert program == f"{MAC_HOME}/.local/bin/cauldrond"
    assert args[0] == "--data-dir"
    data_dir = args[1]
    assert agent["WorkingDirectory"] == data_dir


def test_plist_data_dir_is_the_daemons_default_on_macos(agent: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", MAC_HOME)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = platformdirs.macos.MacOS(default_data_dir().name, appauthor=False).user_data_dir
    assert agent["ProgramArguments"][2] == expected


def test_plist_restarts_on_failure_and_stops_in_time(agent: dict[str, Any]) -> None:
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProcessType"] == "Standard"
    timeout = agent["ExitTimeOut"]
    assert isinstance(timeout, int)
    assert 10 < timeout <= 30
    assert agent["Umask"] == 0o077


def test_plist_logs_under_library_logs(agent: dict[str, Any]) -> None:
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert Path(agent[key]).parent == Path(f"{MAC_HOME}/Library/Logs/shadow-cauldron")
    assert agent["StandardOutPath"] != agent["StandardErrorPath"]


def test_plist_installer_substitution_leaves_no_placeholder(tmp_path: Path) -> None:
    # The installer's documented step: replace the /Users/USERNAME prefix with the real home everywhere.
    home = tmp_path / "Users" / "alice smith"
    installed = plistlib.loads(PLIST.read_bytes().replace(MAC_HOME.encode(), str(home).encode()))
    program, flag, data_dir = installed["ProgramArguments"]
    assert flag == "--data-dir"
    paths = [
        program,
        data_dir,
        *(installed[key] for key in ("WorkingDirectory", "StandardOutPath", "StandardErrorPath")),
    ]
    for path in paths:
        assert "USERNAME" not in path
        assert Path(path).is_relative_to(home)
    assert f"`{MAC_HOME}`" in LAUNCHD_README.read_text()


# --- placeholder web page -------------------------------------------------------------------------------

VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class PageChecker(HTMLParser):
    """Collects what the tests look at and records tags that do not nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.decl: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.decl = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "style":
            self.styles.append(data)
        else:
            self.text.append(data)


@pytest.fixture(scope="module")
def page() -> PageChecker:
    checker = PageChecker()
    checker.feed(INDEX.read_text(encoding="utf-8"))
    checker.close()
    return checker


def test_page_is_well_formed(page: PageChecker) -> None:
    assert page.decl is not None and page.decl.lower() == "doctype html"
    assert page.errors == []
    assert page.stack == []
    html = [attrs for tag, attrs in page.tags if tag == "html"]
    assert html == [{"lang": "en"}]
    assert any(tag == "meta" and attrs.get("charset") == "utf-8" for tag, attrs in page.tags)
    assert any(tag == "title" for tag, _ in page.tags)


def test_page_is_mobile_friendly(page: PageChecker) -> None:
    viewports = [attrs["content"] for tag, attrs in page.tags if tag == "meta" and attrs.get("name") == "viewport"]
    assert len(viewports) == 1
    assert "width=device-width" in viewports[0]


def test_page_loads_nothing_from_elsewhere(page: PageChecker) -> None:
    """The app's page loads only its own files (the CSP allows nothing else) and carries no inline style."""
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "action", "data"):
            value = attrs.get(name, "")
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
        if tag == "script":
            assert attrs.get("src", "").startswith("/app/"), attrs
        if tag == "link" and attrs.get("rel") == "stylesheet":
            assert attrs.get("href", "").startswith("/app/css/"), attrs
    assert not "".join(page.styles).strip(), "inline <style> is refused by the app's CSP"


def test_page_points_to_cauldronctl_without_javascript(page: PageChecker) -> None:
    text = " ".join("".join(page.text).split())
    assert "Shadow Cauldron" in text
    assert "cauldronctl" in text


def test_manifest_is_valid_and_linked(page: PageChecker) -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["name"] == "Shadow Cauldron"
    assert manifest["start_url"] == "/"
    links = [attrs["href"] for tag, attrs in page.tags if tag == "link" and attrs.get("rel") == "manifest"]
    assert links == ["/" + MANIFEST.name]
