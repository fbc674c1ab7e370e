"""The one error an experiment spec raises; its own module so values, axes and cells can all raise it."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """The spec is invalid; ``field`` and ``value`` name the axis or cell at fault."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value

    def to_data(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value}
