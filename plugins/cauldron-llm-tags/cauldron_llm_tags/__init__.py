"""Shadow Cauldron plugin that asks a vision LLM (Ollama or OpenAI-compatible) to describe, tag and score images."""

from cauldron_llm_tags.clients import LlmRequestError
from cauldron_llm_tags.reply import ReplyError, TagResult, parse_tags_reply
from cauldron_llm_tags.settings import LlmTagsConfigError, LlmTagsSettings, load_llm_tags_settings

__all__ = [
    "LlmRequestError",
    "LlmTagsConfigError",
    "LlmTagsSettings",
    "ReplyError",
    "TagResult",
    "load_llm_tags_settings",
    "parse_tags_reply",
]
