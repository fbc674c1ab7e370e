"""A daemon with the LAN listener on: HTTPS and mDNS bound to 127.0.0.1 only, so nothing leaves this machine."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from cauldrond.daemon import Daemon
from cauldrond.web.access import Access
from tests.conftest import make_settings, token_of, url_of


@pytest.fixture
async def lan_daemon(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    settings = make_settings(
        tmp_path / "data",
        models_dir,
        lan=True,
        lan_host="127.0.0.1",
        lan_port=0,
        instance_name=f"lan-test-{os.getpid()}",
    )
    running = Daemon(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def mdns_name(daemon: Daemon) -> str:
    """Unique per test process, so parallel test runs on one machine never find each other's daemon."""
    return daemon.settings.instance_name


def access_of(daemon: Daemon) -> Access:
    assert daemon.frontend is not None
    return daemon.frontend.access


def lan_url(daemon: Daemon) -> str:
    assert daemon.frontend is not None and daemon.frontend.lan_port
    return f"https://127.0.0.1:{daemon.frontend.lan_port}"


def trusting_context(daemon: Daemon) -> ssl.SSLContext:
    """A client context that trusts the daemon's CA the way a phone that installed it does."""
    tls = access_of(daemon).tls
    assert tls is not None
    return ssl.create_default_context(cadata=tls.pin_pem.decode("ascii"))


async def local_call(daemon: Daemon, method: str, **params: Any) -> Any:
    async with Client(url_of(daemon), token_of(daemon)) as client:
        return await client.call(method, **params)
