"""Documentation that must grow with the code: a new RPC method, CLI command, hook or setting that is not
documented fails here."""

from __future__ import annotations

import re
from pathlib import Path

import click
from cauldron_client.cli import cli

from cauldrond.config import Settings
from cauldrond.plugins import hookspecs
from cauldrond.rpc.methods import register_builtin_methods
from cauldrond.rpc.registry import MethodRegistry

ROOT = Path(__file__).resolve().parents[1]


def test_every_rpc_method_is_in_docs_rpc() -> None:
    registry = MethodRegistry()
    register_builtin_methods(registry)
    text = (ROOT / "docs" / "rpc.md").read_text()
    missing = [name for name in registry.names() if f"`{name}`" not in text]
    assert not missing, f"document these RPC methods in docs/rpc.md: {missing}"


def test_the_owners_methods_are_built_in_so_the_check_above_sees_them() -> None:
    # devices.*, pairing.* and the maintenance methods were once registered by the web frontend only, out of
    # sight of rpc.describe without it and of the check above.
    registry = MethodRegistry()
    register_builtin_methods(registry)
    owners = {"devices.list", "devices.revoke", "pairing.create_code", "pairing.create_login"}
    assert owners | {"backups.create", "images.verify"} <= set(registry.names())


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
    return paths


def test_every_cauldronctl_command_is_in_the_client_readme() -> None:
    text = (ROOT / "clients" / "README.md").read_text()
    missing = [path for path in command_paths(cli) if not re.search(rf"cauldronctl {re.escape(path)}\b", text)]
    assert not missing, f"document these cauldronctl commands in clients/README.md: {missing}"


def test_every_hook_is_documented() -> None:
    hooks = [name for name in dir(hookspecs) if name.startswith("cauldron_")]
    text = (ROOT / "docs" / "plugins.md").read_text()
    missing = [hook for hook in hooks if f"### `{hook}" not in text]
    assert hooks and not missing, f"document these hooks in docs/plugins.md, each under a ### heading: {missing}"


def test_every_setting_is_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text()
    # A row whose first cell is the setting's name, or a comma list of names that includes it.
    row = r"\| ({name}|[a-z_, ]*\b{name}\b[a-z_, ]*) \|"
    missing = [name for name in Settings.__dataclass_fields__ if not re.search(row.format(name=name), text)]
    assert not missing, f"document these settings in README.md: {missing}"
