"""Hook specifications. Every hook is prefixed ``cauldron_`` and documented in docs/plugins.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cauldrond.config import Settings
    from cauldrond.providers.base import Provider

hookspec = pluggy.HookspecMarker("cauldron")
hookimpl = pluggy.HookimplMarker("cauldron")


@hookspec
def cauldron_register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register image providers by calling ``register(provider)`` once per provider.

    ``settings`` carries the models directory, device override and pickle policy a provider should honour.
    """


@hookspec
def cauldron_startup(daemon: Any) -> None:
    """Called once after the daemon has started its store, plugins and engine, before it serves."""


@hookspec
def cauldron_shutdown(daemon: Any) -> None:
    """Called once when the daemon stops: after the web server and engine have stopped, before the store closes."""
