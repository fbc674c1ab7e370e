"""A daemon started with extra plugins (real plugin objects, registered as entry points' objects are)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from cauldrond.daemon import Daemon
from cauldrond.plugins.runtime import PluginSource
from tests.conftest import make_settings, token_of, url_of

StartDaemon = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Daemon, Client]]]


@pytest.fixture
def start_daemon(tmp_path: Path, models_dir: Path) -> StartDaemon:
    @contextlib.asynccontextmanager
    async def start(extra: Sequence[PluginSource] = (), **settings: Any) -> AsyncIterator[tuple[Daemon, Client]]:
        # Only the built-in provider and the test's own plugins: other installed plugins must not change results.
        settings.setdefault("plugins", ",".join(["diffusers", *(plugin.name for plugin in extra)]))
        daemon = Daemon(make_settings(tmp_path / "data", models_dir, **settings), extra_plugins=tuple(extra))
        await daemon.start()
        try:
            async with Client(url_of(daemon), token_of(daemon)) as client:
                yield daemon, client
        finally:
            await daemon.stop()

    return start
