"""The one error an experiment spec raises; its own module so values, axes and cells can all raise it."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """The spec is invalid; ``field`` and ``value`` name the axis or cell at fault."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        suggestions: list[str] | None = None,
        choices: str | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        # For "did you mean": close names, the RPC method listing every choice, and the message without hints
        # (a client words the hints its own way, e.g. naming its command instead of the RPC method).
        self.suggestions = suggestions
        self.choices = choices
        self.problem = problem

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "value": self.value}
        if self.suggestions is not None:
            data["suggestions"] = list(self.suggestions)
        if self.choices is not None:
            data["choices"] = self.choices
        if self.problem is not None:
            data["problem"] = self.problem
        return data
