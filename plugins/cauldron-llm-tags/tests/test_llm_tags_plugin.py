"""The plugin as the daemon sees it: entry point, pluggy registration, off until configured, bounded concurrency."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from pathlib import Path
from typing import Any

import cauldron_llm_tags.plugin
import pluggy
import pytest
from cauldron_llm_tags.plugin import cauldron_process_image
from cauldron_llm_tags.settings import LlmTagsConfigError
from llm_tags_fakes import GOOD_ANSWER, FakeLLM

from cauldrond.config import Settings
from cauldrond.plugins import hookspecs
from cauldrond.plugins.manager import ENTRY_POINT_GROUP, PROJECT_NAME


def settings_for(tmp_path: Path, **table: Any) -> Settings:
    return Settings(data_dir=tmp_path, plugin_settings={"llm-tags": table} if table else {})


def test_entry_point_is_installed() -> None:
    # Needs `pip install -e plugins/cauldron-llm-tags`; the daemon finds plugins only through this entry point.
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert found.get("llm-tags") == "cauldron_llm_tags.plugin"
    assert importlib.metadata.version("cauldron-llm-tags") == "0.1.0"


async def test_hook_runs_through_pluggy(llm: FakeLLM, png_file: Path, tmp_path: Path) -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(cauldron_llm_tags.plugin, name="llm-tags")
    [pending] = manager.hook.cauldron_process_image(
        image={"id": "i", "file": str(png_file)}, settings=settings_for(tmp_path, url=llm.url)
    )
    assert inspect.iscoroutine(pending)
    result = await pending
    assert result["tags"] == "lighthouse, coast, dusk, red"


async def test_unconfigured_returns_none_without_a_request(llm: FakeLLM, png_file: Path, tmp_path: Path) -> None:
    image = {"id": "i", "file": str(png_file)}
    assert await cauldron_process_image(image, settings_for(tmp_path)) is None
    assert await cauldron_process_image(image, settings_for(tmp_path, model="llava", timeout=5)) is None
    # Off means off even for an image whose file is missing: nothing is read and nothing is sent.
    assert await cauldron_process_image({"id": "j", "file": str(tmp_path / "nope.png")}, settings_for(tmp_path)) is None
    assert llm.attempts == 0


async def test_environment_turns_it_on(
    llm: FakeLLM, png_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAULDRON_LLM_TAGS_URL", llm.url)
    monkeypatch.setenv("CAULDRON_LLM_TAGS_BACKEND", "openai")
    monkeypatch.setenv("CAULDRON_LLM_TAGS_MODEL", "qwen2-vl")
    monkeypatch.setenv("CAULDRON_LLM_TAGS_API_KEY", "k-123")
    result = await cauldron_process_image({"id": "i", "file": str(png_file)}, settings_for(tmp_path))
    assert result is not None and result["model"] == "qwen2-vl"
    assert llm.received[0].path == "/v1/chat/completions"
    assert llm.received[0].headers["Authorization"] == "Bearer k-123"


async def test_invalid_config_is_an_error_for_the_runtime_to_record(png_file: Path, tmp_path: Path) -> None:
    with pytest.raises(LlmTagsConfigError, match="'backend'"):
        await cauldron_process_image({"id": "i", "file": str(png_file)}, settings_for(tmp_path, backend="gemini"))


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_concurrency_is_bounded_across_calls(llm: FakeLLM, png_file: Path, tmp_path: Path, limit: int) -> None:
    llm.mode = "hold"  # no reply until released: calls pile up at the server as far as the bound lets them
    settings = settings_for(tmp_path, url=llm.url, model="m", max_concurrency=limit)
    calls = asyncio.gather(*(cauldron_process_image({"id": str(i), "file": str(png_file)}, settings) for i in range(6)))
    try:
        for _ in range(600):  # poll up to 30 s for the calls to reach the server
            if llm.in_flight >= limit:
                break
            await asyncio.sleep(0.05)
        assert llm.in_flight == limit, "the calls overlap up to the limit, and no further"
    finally:
        llm.released.set()
    results = await asyncio.wait_for(calls, timeout=30)
    # GOOD_ANSWER's tags lower-cased and de-duplicated, its quality as text.
    tagged = {"description": GOOD_ANSWER["description"], "tags": "lighthouse, coast, dusk, red", "quality": "7"}
    assert results == [{**tagged, "model": "m"}] * 6
    assert llm.attempts == 6
    assert llm.max_in_flight == limit
