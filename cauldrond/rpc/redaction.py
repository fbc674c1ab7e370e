"""What a paired device may not see: the daemon's absolute paths. The owner's own clients get replies as they
are; for a device token every string in a reply is rewritten so the data directory reads ``<data_dir>`` and the
models directory ``<models_dir>`` (which also hides the home directory and user name inside them). It works on
the whole reply, so a path a method adds later is covered too."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 40


class PathRedactor:
    def __init__(self, replacements: dict[str, str]) -> None:
        # Longest first, so a models folder inside the data directory reads <models_dir>, not <data_dir>/models.
        self._pairs = sorted(((path, label) for path, label in replacements.items() if path), key=lambda p: -len(p[0]))

    def text(self, value: str) -> str:
        for path, label in self._pairs:
            if path in value:
                value = value.replace(path, label)
        return value

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > MAX_DEPTH:
            return value
        if isinstance(value, dict):
            return {self(key, depth + 1): self(item, depth + 1) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self(item, depth + 1) for item in value]
        return value
