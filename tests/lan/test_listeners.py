"""The listeners: loopback HTTP alone by default; a LAN port already taken fails the start cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from cauldrond.daemon import Daemon
from tests.conftest import make_settings, url_of


async def test_without_lan_there_is_no_tls_listener_and_no_ca(daemon: Daemon) -> None:
    assert daemon.frontend is not None and daemon.frontend.lan_port is None
    assert not daemon.settings.tls_dir.exists()
    async with aiohttp.ClientSession() as session:
        assert (await session.get(url_of(daemon) + "/pair/ca.pem")).status == 404


async def test_a_taken_lan_port_fails_the_start_and_the_daemon_still_stops(tmp_path: Path, models_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(tmp_path / "data", models_dir, lan=True, lan_host="127.0.0.1", lan_port=port)
        daemon = Daemon(settings)
        with pytest.raises(OSError):
            await daemon.start()
        await daemon.stop()
    assert daemon.frontend is None
