"""The providers that plugins registered, and which one serves a given model."""

from __future__ import annotations

import logging

import pluggy

from cauldrond.config import Settings
from cauldrond.providers.base import Provider, ProviderError

log = logging.getLogger(__name__)


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    @classmethod
    def from_plugins(cls, plugins: pluggy.PluginManager, settings: Settings) -> ProviderRegistry:
        registry = cls()
        plugins.hook.cauldron_register_providers(register=registry.register, settings=settings)
        return registry

    def register(self, provider: Provider) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"{provider!r} does not implement the Provider interface")
        if provider.name in self._providers:
            raise ValueError(f"a provider named {provider.name!r} is already registered")
        self._providers[provider.name] = provider
        log.info("provider registered: %s", provider.name)

    def __bool__(self) -> bool:
        return bool(self._providers)

    @property
    def names(self) -> list[str]:
        return list(self._providers)

    def all(self) -> list[Provider]:
        return list(self._providers.values())

    @property
    def default(self) -> Provider:
        if not self._providers:
            raise ProviderError("no provider is registered (is the diffusers plugin installed?)")
        return next(iter(self._providers.values()))

    def for_model(self, model: str) -> Provider:
        """The provider that lists ``model``; the default provider for anything unlisted (e.g. hub ids), which
        then gives its own clear error if it cannot load it."""
        for provider in self._providers.values():
            if any(info.name == model for info in provider.list_models()):
                return provider
        return self.default
