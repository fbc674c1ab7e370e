"""Loading plugins one by one, so that one that raises at import or at registration is skipped, listed as failed
with its error, and the daemon still serves; and the per-plugin status that ``plugins.list`` shows."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from cauldrond.config import Settings
from cauldrond.plugins.catalogue import Catalogue, Staging
from cauldrond.plugins.manager import ENTRY_POINT_GROUP, get_plugin_manager
from cauldrond.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)

BUILTIN_PROVIDER_PLUGIN = "diffusers"
COLLECTING_HOOKS = (
    "cauldron_register_providers",
    "cauldron_register_rpc_methods",
    "cauldron_register_exporters",
    "cauldron_register_importers",
)
CONFIGURATION_HOOK = "cauldron_check_configuration"
# An async registration, startup or shutdown hook that takes longer than this is treated as failed.
LIFECYCLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PluginSource:
    """Something that loads into a plugin object: an entry point, or (for tests) any zero-argument loader."""

    name: str
    load: Callable[[], object]
    version: str | None = None


@dataclass
class PluginStatus:
    name: str
    version: str | None
    status: str  # loaded | failed | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    # From cauldron_check_configuration: what is missing before the plugin can work; None when nothing is.
    not_configured: str | None = None
    # Post-processing outcomes since the daemon started.
    processed: int = 0
    failed: int = 0
    timed_out: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "hooks": list(self.hooks),
            "configured": self.not_configured is None,
            "not_configured": self.not_configured,
            "postprocess": {
                "ok": self.processed,
                "failed": self.failed,
                "timeout": self.timed_out,
                "last_error": self.last_error,
            },
        }


def entry_point_sources(group: str = ENTRY_POINT_GROUP) -> list[PluginSource]:
    """Every installed entry point of ``group``; this distribution's own (the built-ins) first, then by name."""
    sources = []
    for entry_point in metadata.entry_points(group=group):
        dist = entry_point.dist
        # Built-ins are this package's own modules (whatever the distribution is called).
        builtin = entry_point.value.split(":")[0].split(".")[0] == __name__.split(".")[0]
        sources.append((not builtin, entry_point.name, entry_point, dist))
    sources.sort(key=lambda item: (item[0], item[1]))
    return [PluginSource(name, ep.load, dist.version if dist else None) for _, name, ep, dist in sources]


def restriction(settings: Settings) -> set[str] | None:
    """The names ``settings.plugins`` allows, or None when every installed plugin may load."""
    names = {name.strip() for name in settings.plugins.split(",") if name.strip()}
    return names or None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def call_impl(impl: pluggy.HookImpl, kwargs: dict[str, Any], timeout: float | None) -> Any:
    """Call one hook implementation with the arguments it declares; await it if it is async."""
    result = impl.function(*[kwargs[name] for name in impl.argnames])
    if inspect.isawaitable(result):
        return await asyncio.wait_for(_awaited(result), timeout)
    return result


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class PluginRuntime:
    """The loaded plugins: the pluggy manager (only plugins that loaded cleanly stay registered in it), their
    status, the providers they registered and the catalogue of their exporters, importers and RPC methods."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manager = get_plugin_manager(load_entry_points=False)
        self.statuses: dict[str, PluginStatus] = {}
        self.providers = ProviderRegistry()
        self.catalogue = Catalogue()

    def describe(self) -> list[dict[str, Any]]:
        return [status.to_dict() for status in self.statuses.values()]

    def status_of(self, plugin: str) -> PluginStatus | None:
        return self.statuses.get(plugin)

    def hookimpls(self, hook: str) -> list[pluggy.HookImpl]:
        # In registration order, which is load order (pluggy's own calls would run them last-registered-first).
        caller: pluggy.HookCaller = getattr(self.manager.hook, hook)
        return list(caller.get_hookimpls())

    def fail(self, plugin: str, error: str) -> None:
        """Mark ``plugin`` failed and take it out of the manager, so none of its hooks run again."""
        status = self.statuses.get(plugin)
        if status is not None:
            status.status = "failed"
            status.error = error
        if self.manager.has_plugin(plugin):
            self.manager.unregister(name=plugin)

    # -- loading ------------------------------------------------------------------------------------------------

    async def load(self, sources: Sequence[PluginSource], reserved_methods: Collection[str] = ()) -> None:
        allowed = restriction(self.settings)
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                log.error("plugin %r is installed twice; the second one is skipped", source.name)
                continue
            seen.add(source.name)
            status = PluginStatus(source.name, source.version, "loaded")
            self.statuses[source.name] = status
            if allowed is not None and source.name not in allowed:
                status.status = "disabled"
                status.error = "not listed in the plugins setting (CAULDRON_PLUGINS)"
                log.info("plugin %s not loaded: it is not in the plugins setting", source.name)
                continue
            if await self._load_one(source, status, reserved_methods):
                log.info("plugin loaded: %s %s (%s)", source.name, source.version or "", ", ".join(status.hooks))
        self._warn_about_restriction(allowed, seen)

    async def _load_one(self, source: PluginSource, status: PluginStatus, reserved: Collection[str]) -> bool:
        try:
            plugin = source.load()
        except Exception as exc:
            log.error("plugin %s skipped: it raised at import: %s", source.name, _one_line(exc), exc_info=True)
            self.fail(source.name, f"import failed: {_one_line(exc)}")
            return False
        try:
            self.manager.register(plugin, name=source.name)
        except Exception as exc:
            log.error("plugin %s skipped: its hooks are invalid: %s", source.name, _one_line(exc))
            self.fail(source.name, f"registration refused: {_one_line(exc)}")
            return False
        callers = self.manager.get_hookcallers(plugin) or []
        status.hooks = sorted(caller.name for caller in callers)
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        # Wrappers would be called as plain functions by the post-processor; nothing here needs them.
        wrapped = [
            caller.name
            for caller in callers
            for impl in caller.get_hookimpls()
            if impl.plugin_name == source.name and (impl.hookwrapper or impl.wrapper)
        ]
        if unknown or wrapped:
            error = (
                f"implements unknown hook(s) {', '.join(sorted(unknown))}"
                if unknown
                else f"uses hook wrappers, which cauldron hooks do not support: {', '.join(sorted(wrapped))}"
            )
            log.error("plugin %s skipped: it %s", source.name, error)
            self.fail(source.name, error)
            return False
        staging = Staging(source.name, self.catalogue, self.providers, reserved)
        for hook in COLLECTING_HOOKS:
            for impl in self.hookimpls(hook):
                if impl.plugin_name != source.name:
                    continue
                kwargs = {"register": staging.callback(hook), "settings": self.settings}
                try:
                    await call_impl(impl, kwargs, LIFECYCLE_TIMEOUT_S)
                except Exception as exc:
                    log.error("plugin %s skipped: %s raised: %s", source.name, hook, _one_line(exc), exc_info=True)
                    self.fail(source.name, f"{hook} raised {_one_line(exc)}")
                    return False
        staging.commit()
        status.not_configured = await self._check_configuration(source.name)
        if status.not_configured is not None:
            log.warning("plugin %s is loaded but not configured: %s", source.name, status.not_configured)
        return True

    async def _check_configuration(self, plugin: str) -> str | None:
        """The plugin's own word on its settings; a check that raises means the settings are wrong."""
        for impl in self.hookimpls(CONFIGURATION_HOOK):
            if impl.plugin_name != plugin:
                continue
            try:
                result = await call_impl(impl, {"settings": self.settings}, LIFECYCLE_TIMEOUT_S)
            except Exception as exc:
                return f"its settings are invalid: {_one_line(exc)}"
            if result is not None:
                return " ".join(str(result).split())[:500] or "not configured"
        return None

    def unconfigured(self, hook: str) -> list[dict[str, str]]:
        """Loaded plugins implementing ``hook`` that are not configured: ``[{"plugin", "not_configured"}]``."""
        return [
            {"plugin": status.name, "not_configured": status.not_configured}
            for status in self.statuses.values()
            if status.status == "loaded" and status.not_configured is not None and hook in status.hooks
        ]

    def is_configured(self, plugin: str) -> bool:
        status = self.statuses.get(plugin)
        return status is None or status.not_configured is None

    def _warn_about_restriction(self, allowed: set[str] | None, installed: set[str]) -> None:
        if allowed is None:
            return
        for name in sorted(allowed - installed):
            log.warning("the plugins setting names %r, which is not installed", name)
        if BUILTIN_PROVIDER_PLUGIN not in allowed and not self.providers:
            log.warning(
                "the plugins setting excludes the built-in %r provider and no other plugin registered one: "
                "nothing can generate images",
                BUILTIN_PROVIDER_PLUGIN,
            )

    # -- lifecycle hooks ----------------------------------------------------------------------------------------

    async def startup(self, daemon: Any) -> None:
        """``cauldron_startup`` for every loaded plugin; one that raises is marked failed and unregistered."""
        for impl in self.hookimpls("cauldron_startup"):
            try:
                await call_impl(impl, {"daemon": daemon}, LIFECYCLE_TIMEOUT_S)
            except Exception as exc:
                log.error("plugin %s failed at startup: %s", impl.plugin_name, _one_line(exc), exc_info=True)
                self.fail(impl.plugin_name, f"cauldron_startup raised {_one_line(exc)}")

    async def shutdown(self, daemon: Any) -> None:
        """``cauldron_shutdown`` for every loaded plugin; failures are logged and the others still run."""
        for impl in self.hookimpls("cauldron_shutdown"):
            try:
                await call_impl(impl, {"daemon": daemon}, LIFECYCLE_TIMEOUT_S)
            except Exception as exc:
                log.error("plugin %s failed at shutdown: %s", impl.plugin_name, _one_line(exc), exc_info=True)


async def load_plugins(
    settings: Settings,
    *,
    reserved_methods: Collection[str] = (),
    extra_plugins: Sequence[PluginSource] = (),
    load_entry_points: bool = True,
) -> PluginRuntime:
    """Load every installed ``cauldron`` entry point (as the plugins setting allows) and then ``extra_plugins``.

    ``reserved_methods`` are the built-in RPC method names a plugin may not take."""
    runtime = PluginRuntime(settings)
    sources = [*(entry_point_sources() if load_entry_points else []), *extra_plugins]
    await runtime.load(sources, reserved_methods)
    return runtime
