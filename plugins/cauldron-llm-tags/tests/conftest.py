"""Fixtures: the fake LLM server on a free loopback port, a tiny PNG, and an environment without our overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cauldron_llm_tags.settings import ENV_KEYS, ENV_PREFIX
from llm_tags_fakes import FakeLLM, start_fake
from PIL import Image, PngImagePlugin


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own CAULDRON_LLM_TAGS_URL must not point these tests at a real server.
    for name in ENV_KEYS:
        monkeypatch.delenv(ENV_PREFIX + name.upper(), raising=False)


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM()
    server = await start_fake(fake)
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "secret prompt text")
    Image.new("RGB", (16, 12), (200, 30, 30)).save(path, pnginfo=info)
    return path
