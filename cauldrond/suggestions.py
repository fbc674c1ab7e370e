"""Did-you-mean hints for names a user types: samplers, schedules, models, axes.

A name that differs only in case, spaces or punctuation ("DPM++2M", "dpm++ 2m") is what was meant, and the only
suggestion; otherwise difflib's closest matches. Errors carry the suggestions and the RPC method that lists every
choice in their ``data`` (``{"suggestions": [...], "choices": "samplers.list"}``), so a client can say it in
its own words (``cauldronctl samplers``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_SUGGESTIONS = 3
CUTOFF = 0.6  # difflib's default: below it suggestions are mostly noise


def _squashed(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum() or ch == "+")


def close_matches(value: str, choices: Iterable[str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The choices ``value`` most likely meant, best first; empty when none is close."""
    options = list(dict.fromkeys(choices))
    squashed = _squashed(value)
    same = [choice for choice in options if squashed and _squashed(choice) == squashed]
    if same:  # only spelling differs: that is what was meant, the near misses would only distract
        return same[:limit]
    found: list[str] = []
    by_folded = {choice.casefold(): choice for choice in options}
    for folded in difflib.get_close_matches(value.casefold(), list(by_folded), n=limit, cutoff=CUTOFF):
        if by_folded[folded] not in found:
            found.append(by_folded[folded])
    return found[:limit]


def did_you_mean(suggestions: list[str]) -> str:
    """``"did you mean 'DPM++ 2M'?"``, ``"did you mean 'a' or 'b'?"``, or ``""``."""
    if not suggestions:
        return ""
    quoted = [repr(s) for s in suggestions]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"did you mean {options}?"


@dataclass(frozen=True)
class UnknownName:
    """``unknown sampler 'DPM++2M'``, the names it may have meant, and the RPC method that lists them all."""

    problem: str
    suggestions: list[str]
    choices: str | None  # None where no method lists them; the message then lists them itself

    def message(self) -> str:
        parts = [self.problem, did_you_mean(self.suggestions)]
        return "; ".join(part for part in parts if part) + (f" ({self.choices} lists them)" if self.choices else "")

    def error_data(self) -> dict[str, Any]:
        """The keyword arguments of SpecError (and the keys of an RPC error's ``data``) that carry the hints."""
        return {"suggestions": self.suggestions, "choices": self.choices, "problem": self.problem}


def unknown(kind: str, value: str, options: Iterable[str], choices: str | None, where: str = "") -> UnknownName:
    """``unknown(kind="sampler", value="DPM++2M", options=names, choices="samplers.list")``; ``where`` prefixes
    the problem, e.g. ``"axis 'sampler': "``."""
    return UnknownName(f"{where}unknown {kind} {value[:200]!r}", close_matches(value, options), choices)
