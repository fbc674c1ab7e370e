"""Settings of the plugin: the ``[plugins.llm-tags]`` TOML table, then CAULDRON_LLM_TAGS_* environment overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "CAULDRON_LLM_TAGS_"
# Only these come from the environment: the endpoint and its secret are what differ between machines.
ENV_KEYS = ("url", "model", "api_key", "backend")
BACKENDS = ("ollama", "openai")
DEFAULT_OLLAMA_MODEL = "llava"


class LlmTagsConfigError(ValueError):
    """A setting of the plugin is invalid; the message names the setting and where it came from."""


@dataclass(frozen=True)
class LlmTagsSettings:
    url: str = ""  # server root, e.g. http://127.0.0.1:11434; empty keeps the plugin off
    backend: str = "ollama"
    model: str = DEFAULT_OLLAMA_MODEL
    # repr=False keeps the key out of logs and error messages that format the settings.
    api_key: str = field(default="", repr=False)
    timeout: float = 30.0  # seconds per HTTP attempt
    retries: int = 2  # further attempts after a transport error, timeout, 429 or 5xx
    backoff: float = 0.5  # first retry delay in seconds; doubles each retry, with jitter
    max_backoff: float = 8.0
    max_concurrency: int = 2
    max_image_edge: int = 768
    max_reply_bytes: int = 256 * 1024

    @property
    def enabled(self) -> bool:
        return bool(self.url)


# name -> (type, minimum, maximum); bounds keep a typo from turning into an hour-long wait or a huge upload.
_NUMBERS: dict[str, tuple[type, float, float]] = {
    "timeout": (float, 0.01, 600.0),
    "retries": (int, 0, 10),
    "backoff": (float, 0.0, 60.0),
    "max_backoff": (float, 0.0, 300.0),
    "max_concurrency": (int, 1, 64),
    "max_image_edge": (int, 64, 4096),
    "max_reply_bytes": (int, 1024, 16 * 1024 * 1024),
}
_STRINGS = ("url", "backend", "model", "api_key")


def _number(name: str, value: Any, source: str) -> int | float:
    kind, low, high = _NUMBERS[name]
    if isinstance(value, bool):
        raise LlmTagsConfigError(f"setting {name!r} from {source} must be a number, got a boolean")
    try:
        number: int | float = int(value) if kind is int else float(value)
    except (TypeError, ValueError) as exc:
        raise LlmTagsConfigError(f"setting {name!r} from {source} must be {kind.__name__}, got {value!r}") from exc
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise LlmTagsConfigError(f"setting {name!r} from {source} must be an integer, got {value!r}")
    if not (math.isfinite(number) and low <= number <= high):
        raise LlmTagsConfigError(f"setting {name!r} from {source} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _string(name: str, value: Any, source: str) -> str:
    if not isinstance(value, str):
        raise LlmTagsConfigError(f"setting {name!r} from {source} must be a string")
    return value.strip()


def _check_url(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LlmTagsConfigError(f"setting 'url' must be an http:// or https:// URL, got {url!r}")
    if parts.username or parts.password:
        # The URL appears in error messages; a credential belongs in api_key, which never does.
        raise LlmTagsConfigError("setting 'url' must not hold credentials; use 'api_key'")
    if parts.query or parts.fragment:
        raise LlmTagsConfigError("setting 'url' must be the server's root URL, without a query or fragment")
    return url.rstrip("/")


def load_llm_tags_settings(table: Mapping[str, Any], environ: Mapping[str, str]) -> LlmTagsSettings:
    """Read the ``[plugins.llm-tags]`` table, then let ``CAULDRON_LLM_TAGS_{URL,MODEL,API_KEY,BACKEND}`` override it."""
    values: dict[str, Any] = {}
    for name, value in table.items():
        source = "[plugins.llm-tags]"
        if name in _NUMBERS:
            values[name] = _number(name, value, source)
        elif name in _STRINGS:
            values[name] = _string(name, value, source)
        else:
            raise LlmTagsConfigError(f"unknown setting {name!r} in {source}")
    for name in ENV_KEYS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = environ[env_name].strip()

    values["url"] = _check_url(values.get("url", ""))
    backend = values.get("backend", "ollama").lower()
    if backend not in BACKENDS:
        raise LlmTagsConfigError(f"setting 'backend' must be one of {', '.join(BACKENDS)}, got {backend!r}")
    values["backend"] = backend
    model = values.get("model", "")
    if not model:
        if backend == "openai" and values["url"]:
            # No model name is common to OpenAI-compatible servers; guessing one only produces a 404 per image.
            raise LlmTagsConfigError("setting 'model' is required with backend 'openai'")
        model = DEFAULT_OLLAMA_MODEL
    values["model"] = model
    if values.get("max_backoff", 8.0) < values.get("backoff", 0.5):
        raise LlmTagsConfigError("setting 'max_backoff' must not be smaller than 'backoff'")
    return LlmTagsSettings(**values)
