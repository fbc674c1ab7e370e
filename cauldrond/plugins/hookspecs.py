"""Hook specifications. Every hook is prefixed ``cauldron_``, named with a verb, and documented in
docs/plugins.md (a test fails when one is not). Collecting hooks take a ``register(...)`` callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cauldrond.config import Settings
    from cauldrond.plugins.interfaces import Exporter, Importer, RpcMethod
    from cauldrond.providers.base import Provider

hookspec = pluggy.HookspecMarker("cauldron")
hookimpl = pluggy.HookimplMarker("cauldron")


@hookspec
def cauldron_register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    """Register image providers by calling ``register(provider)`` once per provider.

    ``settings`` carries the models directory, device override and pickle policy a provider should honour.
    """


@hookspec
def cauldron_register_rpc_methods(register: Callable[[RpcMethod], None], settings: Settings) -> None:
    """Register RPC methods by calling ``register(RpcMethod(...))``. Names are namespaced by plugin:
    ``"<namespace>.<verb>"``, where the namespace is the plugin's (entry point's) name with ``-`` written ``_``; a
    name outside it, or one already taken, is refused and the plugin is skipped."""


@hookspec
def cauldron_register_exporters(register: Callable[[Exporter], None], settings: Settings) -> None:
    """Register export formats for images and experiments by calling ``register(Exporter(...))``."""


@hookspec
def cauldron_register_importers(register: Callable[[Importer], None], settings: Settings) -> None:
    """Register importers that turn another tool's files into generation params: ``register(Importer(...))``."""


@hookspec
def cauldron_process_image(image: Mapping[str, Any], settings: Settings) -> Mapping[str, str] | None:
    """Post-process one finished image and return annotations ``{key: value}`` to store for it (or None).

    ``image`` is the ``images.get`` record (``file`` is the PNG's absolute path). Called after the image is
    committed, off the GPU path, with a timeout and bounded concurrency; may be ``async def``. A failure or
    timeout is recorded for this image and plugin and never delays a generation."""


@hookspec
def cauldron_check_configuration(settings: Settings) -> str | None:
    """Say whether the plugin can do its work with these settings: None when it can, otherwise one sentence a user
    can act on (``"tagging is not configured: set url in [plugins.llm-tags]"``). Called once after loading; a
    plugin that is not configured stays loaded, is shown so by ``plugins.list``, and gets no images to process."""


@hookspec
def cauldron_startup(daemon: Any) -> None:
    """Called once after the daemon has started its store, plugins and engine, before it serves."""


@hookspec
def cauldron_shutdown(daemon: Any) -> None:
    """Called once when the daemon stops: after the web server and engine have stopped, before the store closes."""
