"""Shared fixtures: the tiny model (built once per run), an in-process daemon on a free loopback port, and a
connected client. Everything is real: SQLite files in tmp dirs, WebSockets, diffusers on the tiny model."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cauldron_client import Client

from cauldrond.config import Settings
from cauldrond.daemon import Daemon
from cauldrond.models.tiny import create_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Every Ray cluster a test starts (in this process, or a daemon's or `ray start`'s that inherit this) keeps to
# 127.0.0.1, as the daemon's private cluster does (cauldrond/scaleout/cluster.py); set before any import of Ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# Small and fast on 2 CPU cores; the tiny model is random so quality is not the point.
FAST = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 2, "sampler": "Euler"}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    create_tiny_model(folder)
    return folder


@pytest.fixture(scope="session")
def sdxl_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir holding only tiny-sdxl (the SDXL layout; built once per run, when a test asks for it)."""
    from cauldrond.models.tiny_sdxl import create_tiny_sdxl_model

    folder = tmp_path_factory.mktemp("sdxl-models")
    create_tiny_sdxl_model(folder)
    return folder


def make_settings(data_dir: Path, models_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "port": 0,
        "models_dir": models_dir,
        "device": "cpu",
        "max_batch_size": 4,
        # Fixed batches, so tests that count them see max_batch_size; tests/engine/test_auto_batch_size.py turns
        # the measurement on.
        "auto_batch_size": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def daemon(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    running = Daemon(make_settings(tmp_path / "data", models_dir))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def url_of(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.bound_port}"


def token_of(daemon: Daemon) -> str:
    return daemon.settings.token_path.read_text().strip()


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(url_of(daemon), token_of(daemon)) as connected:
        yield connected
