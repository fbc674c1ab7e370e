"""AUTOMATIC1111's infotext: the text A1111 writes into a PNG's ``parameters`` chunk and shows under an image.

The format (A1111's ``modules/infotext_utils.py``, ``parse_generation_parameters``)::

    <prompt, possibly over several lines>
    Negative prompt: <negative prompt, possibly over several lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, Model: v1-5

The last line holds ``key: value`` pairs separated by ``, ``; it counts as the parameters line only when it holds
at least three pairs (otherwise it is part of the prompt). A value that contains a comma, a colon or a line break
is written as a JSON string (``Lora hashes: "a: 1, b: 2"``). Lines are stripped; the prompt ends at the first line
that starts with ``Negative prompt:``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

NEGATIVE_PREFIX = "Negative prompt:"
# A1111 writes keys as a word character followed by word characters, spaces, hyphens and slashes.
_KEY_EXTRA = frozenset(" -/")
MIN_PAIRS = 3


@dataclass(frozen=True)
class Infotext:
    prompt: str
    negative_prompt: str
    # The parameters line's pairs in the order written; a key written twice keeps its last value, as in A1111.
    fields: dict[str, str] = field(default_factory=dict)
    # Parts of the parameters line that are not ``key: value`` pairs.
    unreadable: list[str] = field(default_factory=list)


def parse_infotext(text: str) -> Infotext:
    """Split infotext into prompt, negative prompt and the parameters line's fields (all values as text)."""
    *lines, last = text.strip().split("\n")
    pairs, unreadable = parse_pairs(last)
    if len(pairs) < MIN_PAIRS:
        lines.append(last)
        pairs, unreadable = [], []
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        (negative if in_negative else prompt).append(line)
    return Infotext("\n".join(prompt), "\n".join(negative), dict(pairs), unreadable)


def parse_pairs(line: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The ``key: value`` pairs of one line, and the comma-separated parts that are not such a pair (A1111 skips
    those too)."""
    pairs: list[tuple[str, str]] = []
    unreadable: list[str] = []
    pos, end = 0, len(line)
    while pos < end:
        pair, after = _pair_at(line, pos)
        if pair is None:
            comma = line.find(",", pos)
            after = end if comma < 0 else comma + 1
            if line[pos:after].strip(" ,"):
                unreadable.append(line[pos:after].strip(" ,"))
        else:
            pairs.append(pair)
        pos = after
    return pairs, unreadable


def _pair_at(line: str, pos: int) -> tuple[tuple[str, str] | None, int]:
    """The pair that starts at ``pos`` and the position after its comma, or (None, pos) if none starts there."""
    end = len(line)
    colon = line.find(":", pos)
    if colon < 0:
        return None, pos
    key = line[pos:colon].strip()
    if not _is_key(key):
        return None, pos
    start = colon + 1
    while start < end and line[start] == " ":
        start += 1
    if start < end and line[start] == '"':
        closing = _closing_quote(line, start)
        if closing is None:
            return None, pos
        try:
            value = json.loads(line[start : closing + 1])
        except json.JSONDecodeError:
            return None, pos
        after = closing + 1
        while after < end and line[after] == " ":
            after += 1
        if after < end and line[after] != ",":
            return None, pos
        return (key, str(value)), after + 1
    comma = line.find(",", start)
    comma = end if comma < 0 else comma
    return (key, line[start:comma].strip()), comma + 1


def _is_key(key: str) -> bool:
    return bool(key) and _is_word(key[0]) and all(_is_word(c) or c in _KEY_EXTRA for c in key[1:])


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _closing_quote(line: str, start: int) -> int | None:
    pos = start + 1
    while pos < len(line):
        if line[pos] == "\\":
            pos += 2
            continue
        if line[pos] == '"':
            return pos
        pos += 1
    return None
