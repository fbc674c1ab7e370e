"""Settings: the [plugins.llm-tags] table, environment overrides, and refusals that name the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cauldron_llm_tags.settings import LlmTagsConfigError, LlmTagsSettings, load_llm_tags_settings

from cauldrond.config import load_settings


def test_defaults_are_off() -> None:
    settings = load_llm_tags_settings({}, {})
    assert settings == LlmTagsSettings()
    assert not settings.enabled
    assert (settings.timeout, settings.retries, settings.max_concurrency, settings.max_image_edge) == (30.0, 2, 2, 768)


def test_table_from_the_daemon_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cauldron.toml"
    config.write_text(
        '[cauldrond]\nport = 7861\n\n[plugins.llm-tags]\nurl = "http://127.0.0.1:11434/"\nmodel = "llava:13b"\n'
        "timeout = 12\nretries = 0\nmax_concurrency = 3\n"
    )
    daemon_settings = load_settings(config_file=config, environ={})
    settings = load_llm_tags_settings(daemon_settings.plugin_config("llm-tags"), {})
    assert settings.enabled
    assert settings.url == "http://127.0.0.1:11434"
    assert (settings.model, settings.timeout, settings.retries, settings.max_concurrency) == ("llava:13b", 12.0, 0, 3)


def test_environment_overrides_the_table() -> None:
    environ = {
        "CAULDRON_LLM_TAGS_URL": "https://llm.example:8443",
        "CAULDRON_LLM_TAGS_MODEL": "gpt-4o-mini",
        "CAULDRON_LLM_TAGS_API_KEY": "sk-secret",
        "CAULDRON_LLM_TAGS_BACKEND": "OpenAI",
    }
    settings = load_llm_tags_settings({"url": "http://127.0.0.1:1", "model": "llava"}, environ)
    assert (settings.url, settings.model, settings.api_key, settings.backend) == (
        "https://llm.example:8443",
        "gpt-4o-mini",
        "sk-secret",
        "openai",
    )
    assert "sk-secret" not in repr(settings)


def test_empty_url_in_environment_turns_the_plugin_off() -> None:
    settings = load_llm_tags_settings({"url": "http://127.0.0.1:11434"}, {"CAULDRON_LLM_TAGS_URL": ""})
    assert not settings.enabled


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"url": "ftp://host"}, "'url' must be an http"),
        ({"url": "http://"}, "'url' must be an http"),
        ({"url": "http://h:1/?x=1"}, "without a query"),
        ({"url": "http://user:pw@h:1"}, "must not hold credentials"),
        ({"backend": "claude"}, "'backend' must be one of ollama, openai"),
        ({"url": "http://h:1", "backend": "openai"}, "'model' is required with backend 'openai'"),
        ({"timeout": 0}, "'timeout' .* between"),
        ({"timeout": "soon"}, "'timeout' .* must be float"),
        ({"retries": 2.5}, "'retries' .* must be an integer"),
        ({"retries": 11}, "'retries' .* between 0 and 10"),
        ({"retries": True}, "'retries' .* got a boolean"),
        ({"max_concurrency": 0}, "'max_concurrency'"),
        ({"max_image_edge": 10_000}, "'max_image_edge'"),
        ({"backoff": 5, "max_backoff": 1}, "'max_backoff' must not be smaller"),
        ({"url": 5}, "'url' .* must be a string"),
        ({"temperature": 0.1}, "unknown setting 'temperature'"),
    ],
)
def test_invalid_settings_name_the_setting(table: dict[str, Any], message: str) -> None:
    with pytest.raises(LlmTagsConfigError, match=message):
        load_llm_tags_settings(table, {})


def test_openai_without_url_needs_no_model() -> None:
    assert not load_llm_tags_settings({"backend": "openai"}, {}).enabled
