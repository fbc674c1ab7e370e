"""What the collecting hooks registered: providers, RPC methods, exporters and importers, each with the plugin
that registered it.

A plugin's registrations are staged while its hook runs and committed only when every one of its collecting hooks
has returned, so a plugin that fails halfway leaves nothing behind."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from cauldrond.plugins.interfaces import Exporter, Importer, RpcMethod
from cauldrond.providers.base import Provider
from cauldrond.providers.registry import ProviderRegistry
from cauldrond.rpc.registry import METHOD_NAME

FORMAT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# experiments.export's own formats: an exporter may not shadow them, or `cauldronctl export --format` would be
# ambiguous.
BUILTIN_FORMATS = frozenset({"csv", "json"})


def namespace_of(plugin: str) -> str:
    """The RPC namespace of a plugin: its name in lower case with ``-`` as ``_`` (method names allow no ``-``)."""
    return plugin.lower().replace("-", "_").replace(".", "_")


@dataclass
class Catalogue:
    exporters: dict[str, tuple[str, Exporter]] = field(default_factory=dict)
    importers: dict[str, tuple[str, Importer]] = field(default_factory=dict)
    rpc_methods: dict[str, tuple[str, RpcMethod]] = field(default_factory=dict)

    def exporter(self, name: str) -> Exporter | None:
        found = self.exporters.get(name)
        return found[1] if found else None

    def importer(self, name: str) -> Importer | None:
        found = self.importers.get(name)
        return found[1] if found else None

    def describe_exporters(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "plugin": plugin,
                "description": exp.description,
                "experiments": exp.export_experiment is not None,
            }
            for name, (plugin, exp) in sorted(self.exporters.items())
        ]

    def describe_importers(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "plugin": plugin, "description": imp.description}
            for name, (plugin, imp) in sorted(self.importers.items())
        ]


class Staging:
    """One plugin's registrations while its collecting hooks run. Each ``register_*`` validates at once, so the
    plugin's own call raises (with a message naming what is wrong) and the plugin fails to load."""

    def __init__(self, plugin: str, catalogue: Catalogue, providers: ProviderRegistry, reserved: Collection[str]):
        self.plugin = plugin
        self._catalogue = catalogue
        self._providers = providers
        self._reserved = reserved
        self.providers: list[Provider] = []
        self.rpc_methods: list[RpcMethod] = []
        self.exporters: list[Exporter] = []
        self.importers: list[Importer] = []

    def callback(self, hook: str) -> Callable[[Any], None]:
        return {
            "cauldron_register_providers": self.register_provider,
            "cauldron_register_rpc_methods": self.register_rpc_method,
            "cauldron_register_exporters": self.register_exporter,
            "cauldron_register_importers": self.register_importer,
        }[hook]

    def register_provider(self, provider: Any) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"{provider!r} does not implement the Provider interface")
        taken = set(self._providers.names) | {p.name for p in self.providers}
        if provider.name in taken:
            raise ValueError(f"a provider named {provider.name!r} is already registered")
        self.providers.append(provider)

    def register_rpc_method(self, method: Any) -> None:
        if not isinstance(method, RpcMethod):
            raise TypeError(f"register() takes an RpcMethod, got {type(method).__name__}")
        prefix = namespace_of(self.plugin) + "."
        if not method.name.startswith(prefix) or not METHOD_NAME.match(method.name):
            raise ValueError(f"RPC method {method.name!r} must be named {prefix}<verb> (lower case, a-z0-9_)")
        if method.name in self._reserved or method.name in self._catalogue.rpc_methods:
            raise ValueError(f"RPC method {method.name!r} is already registered")
        if any(m.name == method.name for m in self.rpc_methods):
            raise ValueError(f"RPC method {method.name!r} is registered twice")
        if not (isinstance(method.params, type) and issubclass(method.params, BaseModel)):
            raise TypeError(f"RPC method {method.name!r}: params must be a pydantic BaseModel subclass")
        if not callable(method.handler):
            raise TypeError(f"RPC method {method.name!r}: handler is not callable")
        self.rpc_methods.append(method)

    def register_exporter(self, exporter: Any) -> None:
        if not isinstance(exporter, Exporter):
            raise TypeError(f"register() takes an Exporter, got {type(exporter).__name__}")
        self._check_format(exporter.name, "exporter", self._catalogue.exporters, [e.name for e in self.exporters])
        if exporter.name in BUILTIN_FORMATS:
            raise ValueError(f"exporter name {exporter.name!r} is a built-in export format")
        self.exporters.append(exporter)

    def register_importer(self, importer: Any) -> None:
        if not isinstance(importer, Importer):
            raise TypeError(f"register() takes an Importer, got {type(importer).__name__}")
        self._check_format(importer.name, "importer", self._catalogue.importers, [i.name for i in self.importers])
        self.importers.append(importer)

    @staticmethod
    def _check_format(name: str, kind: str, committed: Collection[str], staged: Collection[str]) -> None:
        if not isinstance(name, str) or not FORMAT_NAME.match(name):
            raise ValueError(f"{kind} name must be 1-40 characters of a-z 0-9 _ -, got {name!r}")
        if name in committed or name in staged:
            raise ValueError(f"an {kind} named {name!r} is already registered")

    def commit(self) -> None:
        for provider in self.providers:
            self._providers.register(provider)
        for method in self.rpc_methods:
            self._catalogue.rpc_methods[method.name] = (self.plugin, method)
        for exporter in self.exporters:
            self._catalogue.exporters[exporter.name] = (self.plugin, exporter)
        for importer in self.importers:
            self._catalogue.importers[importer.name] = (self.plugin, importer)
