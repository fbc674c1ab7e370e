"""cauldronctl's LAN commands against a real daemon: pair (both sides), devices, --daemon NAME over mDNS."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from cauldrond.daemon import Daemon
from tests.conftest import token_of, url_of
from tests.lan.conftest import access_of, lan_url, mdns_name


@pytest.fixture
def env(tmp_path: Path, lan_daemon: Daemon) -> dict[str, str]:
    return {
        "CAULDRON_KNOWN_DAEMONS": str(tmp_path / "client" / "known_daemons.json"),
        "CAULDRON_MDNS_INTERFACES": "127.0.0.1",  # never browse beyond this machine
        "CAULDRON_URL": url_of(lan_daemon),
        "CAULDRON_TOKEN": token_of(lan_daemon),
    }


async def cauldronctl(env: dict[str, str], *args: str) -> Result:
    # CliRunner.invoke runs asyncio.run; keep it off the test's own loop.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, catch_exceptions=False)


async def test_pair_on_both_sides_then_talk_by_mdns_name(lan_daemon: Daemon, env: dict[str, str]) -> None:
    shown = await cauldronctl(env, "pair")
    assert shown.exit_code == 0, shown.output
    code = re.search(r"pairing code: (\w{8})", shown.output)
    assert code is not None and "certificate:" in shown.output

    remote = {k: v for k, v in env.items() if k not in ("CAULDRON_URL", "CAULDRON_TOKEN")}
    paired = await cauldronctl(remote, "pair", lan_url(lan_daemon), code.group(1), "--name", "laptop")
    assert paired.exit_code == 0, paired.output
    assert "pinned" in paired.output
    assert (await asyncio.to_thread(Path(env["CAULDRON_KNOWN_DAEMONS"]).stat)).st_mode & 0o777 == 0o600

    found = await cauldronctl(remote, "--json", "discover", "--timeout", "2")
    (listing,) = [d for d in json.loads(found.output) if d["name"] == mdns_name(lan_daemon)]
    assert listing["fingerprint"] == access_of(lan_daemon).tls.fingerprint  # type: ignore[union-attr]

    status = await cauldronctl(remote, "--daemon", mdns_name(lan_daemon), "--json", "status")
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["api_version"] == 1

    devices = await cauldronctl(env, "--json", "devices", "list")
    (device,) = json.loads(devices.output)["devices"]
    assert device["name"] == "laptop"
    revoked = await cauldronctl(env, "devices", "revoke", str(device["id"]))
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    refused = await cauldronctl(remote, "--daemon", mdns_name(lan_daemon), "status")
    assert refused.exit_code == 1 and "refused the token" in refused.output


async def test_devices_commands_refuse_a_device_token(lan_daemon: Daemon, env: dict[str, str]) -> None:
    code = re.search(r"pairing code: (\w{8})", (await cauldronctl(env, "pair")).output)
    assert code is not None
    remote = {k: v for k, v in env.items() if k not in ("CAULDRON_URL", "CAULDRON_TOKEN")}
    await cauldronctl(remote, "pair", lan_url(lan_daemon), code.group(1))
    result = await cauldronctl(remote, "--daemon", mdns_name(lan_daemon), "devices", "list")
    assert result.exit_code == 1 and "forbidden" in result.output
