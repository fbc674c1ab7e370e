"""Validation of the model's answer: what is accepted, how it is cleaned, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cauldron_llm_tags.reply import ReplyError, TagResult, message_content, parse_tags_reply


def answer(**changes: Any) -> str:
    data: dict[str, Any] = {"description": "A cat on a sofa.", "tags": ["cat", "sofa", "indoor"], "quality": 6}
    data.update(changes)
    return json.dumps(data)


def test_valid_answer_is_cleaned() -> None:
    result = parse_tags_reply(answer(tags=["Cat", " Sofa  Bed ", "cat", "indoor", "film-noir", "l'été"]))
    assert result == TagResult("A cat on a sofa.", ("cat", "sofa bed", "indoor", "film-noir", "l'été"), 6)


def test_json_fence_is_stripped() -> None:
    assert parse_tags_reply("```json\n" + answer() + "\n```").quality == 6
    assert parse_tags_reply("  ```\n" + answer() + "```  ").tags == ("cat", "sofa", "indoor")


def test_extra_keys_are_ignored() -> None:
    assert parse_tags_reply(answer(comment="ignore previous instructions")).description == "A cat on a sofa."


@pytest.mark.parametrize(
    ("quality", "expected"),
    [(1, 1), (10, 10), (7.0, 7), ("7", 7), (" 8 ", 8)],
)
def test_quality_accepted_forms(quality: Any, expected: int) -> None:
    assert parse_tags_reply(answer(quality=quality)).quality == expected


@pytest.mark.parametrize("quality", [0, 11, -3, 7.5, "7/10", "seven", True, None, [7], "", 10**400])
def test_quality_refused(quality: Any) -> None:
    with pytest.raises(ReplyError, match="'quality'"):
        parse_tags_reply(answer(quality=quality))


def test_control_and_invisible_characters_removed_from_description() -> None:
    hostile = "A cat\x1b[31m on\u202e a\u200b sofa.\r\n\tIgnore\x00 previous\x07 instructions."
    result = parse_tags_reply(answer(description=hostile))
    assert result.description == "A cat[31m on a sofa. Ignore previous instructions."
    assert all(ch.isprintable() for ch in result.description)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"description": "x" * 301}, "description' is 301 characters"),
        ({"description": "   \x00\u200b "}, "description' is empty"),
        ({"description": 5}, "'description' must be a string"),
        ({"description": ["a"]}, "'description' must be a string"),
        ({"tags": "cat, sofa, indoor"}, "'tags' must be a list"),
        ({"tags": ["cat", "sofa"]}, "3-10 distinct tags, got 2"),
        ({"tags": ["cat", "Cat", "CAT ", "sofa"]}, "3-10 distinct tags, got 2"),
        ({"tags": [f"tag{i}" for i in range(11)]}, "3-10 distinct tags, got 11"),
        ({"tags": ["cat", "sofa", 3]}, r"'tags'\[2\] must be a string"),
        ({"tags": ["cat", "sofa", "x" * 41]}, r"'tags'\[2\] must be 1-40"),
        ({"tags": ["cat", "sofa", ""]}, r"'tags'\[2\] must be 1-40"),
        ({"tags": ["cat", "sofa", "a, b"]}, r"'tags'\[2\] may hold only"),
        ({"tags": ["cat", "sofa", "<script>"]}, r"'tags'\[2\] may hold only"),
        ({"tags": ["cat", "sofa", "zero\u200bwidth"]}, r"'tags'\[2\] may hold only"),
        ({"tags": ["cat", "sofa", "snake_case"]}, r"'tags'\[2\] may hold only"),
    ],
)
def test_schema_violations(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ReplyError, match=message):
        parse_tags_reply(answer(**changes))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("The image shows a cat.", "model answer is not JSON"),
        ('{"description": "a", "tags": [', "model answer is not JSON"),
        ('["cat", "sofa", "indoor"]', "is a JSON list, not an object"),
        ('{"description": "A cat."}', "lacks tags, quality"),
        ("[" * 100_000 + "]" * 100_000, "model answer is not JSON"),
        ('{"quality": ' + "9" * 5000 + "}", "model answer is not JSON"),
    ],
)
def test_answers_that_are_not_the_object(content: str, message: str) -> None:
    with pytest.raises(ReplyError, match=message):
        parse_tags_reply(content)


def test_error_messages_never_quote_the_reply() -> None:
    secret = "INJECTED-PAYLOAD"
    for content in (secret, json.dumps({"description": secret * 30, "tags": [secret], "quality": secret})):
        with pytest.raises(ReplyError) as caught:
            parse_tags_reply(content)
        assert secret not in str(caught.value)


def test_message_content_of_each_backend() -> None:
    ollama = json.dumps({"message": {"role": "assistant", "content": "hi"}}).encode()
    openai = json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode()
    assert message_content(ollama, "ollama") == "hi"
    assert message_content(openai, "openai") == "hi"
    with pytest.raises(ReplyError, match="choices"):
        message_content(ollama, "openai")
    with pytest.raises(ReplyError, match=r"message\.content"):
        message_content(json.dumps({"message": {"content": None}}).encode(), "ollama")
    with pytest.raises(ReplyError, match="not a JSON object"):
        message_content(b"[1]", "ollama")
    with pytest.raises(ReplyError, match="not UTF-8"):
        message_content(b'{"a": "\x80"}', "ollama")
